"""The sandbox Cuebot: an in-memory stand-in for OpenCue's Cuebot gRPC API.

It is a real grpcio server, on loopback by default, so tests, demos
(``twistd -n opencue-gateway --sandbox``), dashboards under development and
benchmarks exercise the same gRPC bytes a real Cuebot exchanges.

* :class:`Farm` holds the farm (:mod:`.records`, :mod:`.admin_records`,
  :mod:`.depends`); ``seed.seeded_farm()`` is the README's example entities
  (:mod:`.seed`), ``generate.generated_farm(shows=..., jobs_per_show=...,
  layers_per_job=..., frames_per_layer=..., hosts=..., seed=...)`` adds a
  reproducible farm of any size (:mod:`.generate`, :class:`FarmSpec`).
* The handlers (one ``rpc_*`` module per service family, gathered by
  :mod:`.handlers`) implement every method CueWeb calls and the read methods
  of Cuebot's services, with Cuebot's semantics: what each change does to
  frames, stats, procs and depends, how search criteria filter and page
  (:mod:`.search`), and which status and text each failure gets
  (:mod:`.errors`).  Catalog methods not implemented answer UNIMPLEMENTED
  and name themselves.
* :class:`Simulator` makes the farm move: frames dispatch to idle hosts, run
  and end, deterministically for a seed (:mod:`.simulate`), and RQD's
  reports (a kill's outcome) arrive each tick; with :class:`~.rqlog.FrameLogs`
  it writes each frame's RQD-style log.
* Figures are Cuebot's (:mod:`.units`): memory in KB, times in epoch seconds
  relative to the sandbox's start.
* :func:`~.factory.sandbox_server` builds a server from the command-line
  options: the README's seed, still (no options), a generated farm, or the
  ``lively`` preset, the seed inside a studio simulated up to the start
  (:mod:`.lively`).

Run it with ``python -m opencue_gateway.sandbox --port 8443`` (see
:mod:`.__main__` for the preset, size, simulation and log flags) or the
``opencue-gateway-sandbox`` console script.
"""

from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.generate import FarmSpec
from opencue_gateway.sandbox.server import SandboxServer
from opencue_gateway.sandbox.simulate import Simulator

__all__ = ["Farm", "FarmSpec", "SandboxServer", "Simulator"]
