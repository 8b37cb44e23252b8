"""One call that builds a sandbox Cuebot from the command-line options.

``python -m opencue_gateway.sandbox`` and the gateway's ``--sandbox`` mode
take the same options; both build their server here, so the two agree.
Called with no options it builds the README's seed farm, still, which tests
rely on; ``preset="lively"`` builds the farm a first-time user should see
(:mod:`.lively`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from opencue_gateway.sandbox import lively
from opencue_gateway.sandbox.farm import DEFAULT_LOG_ROOT
from opencue_gateway.sandbox.generate import generated_farm
from opencue_gateway.sandbox.rqlog import FrameLogs
from opencue_gateway.sandbox.seed import seeded_farm
from opencue_gateway.sandbox.server import SandboxServer
from opencue_gateway.sandbox.simulate import Simulator

# The farm-size options, named as FarmSpec's fields.
SIZE_OPTIONS = ("shows", "jobs_per_show", "layers_per_job", "frames_per_layer", "hosts")
# The farms to start with: the README's entities, still (sizes add a generated farm);
# or the README's entities inside a simulated studio with a history (sizes resize it).
PRESETS = ("readme", "lively")


def sandbox_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    preset: str = "readme",
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    simulate: bool = False,
    tick_seconds: float = 1.0,
    speed: float = 1.0,
    failure_rate: float = 0.05,
    log_root: str | None = None,
) -> SandboxServer:
    """A sandbox server, not started.

    ``preset`` is one of :data:`PRESETS`.  ``sizes`` holds the farm-size
    options given (any of :data:`SIZE_OPTIONS`): with ``readme``, none gives
    the README's seed farm and any gives a generated farm, the others at
    :class:`~opencue_gateway.sandbox.generate.FarmSpec`'s defaults; with
    ``lively`` they resize the studio (the others at :data:`lively.SIZES`).
    ``seed`` makes the farm and the simulation reproducible (relative to the
    start); ``simulate`` attaches a :class:`Simulator` that runs while the
    server does (``lively`` always has one).  ``log_root`` puts the jobs' log
    directories under that directory and writes the simulated frames' rqlogs
    there (:mod:`.rqlog`); it is created if missing.  Raises ValueError for an
    unknown preset or a log root that cannot be created.
    """
    sizes = sizes or {}
    root = _log_root(log_root) if log_root else DEFAULT_LOG_ROOT
    logs = FrameLogs(root) if log_root else None
    settings = {"seed": seed, "tick_seconds": tick_seconds, "speed": speed,
                "failure_rate": failure_rate, "logs": logs}
    if preset == "lively":
        start = int(time.time())
        spec = dataclasses.replace(lively.SIZES, seed=seed, **sizes)
        farm = lively.build(spec, start, root)
        simulator = Simulator(farm, still_jobs=lively.STILL_JOBS, **settings)
        lively.bring_to_start(simulator, start)
    elif preset == "readme":
        farm = (generated_farm(seed=seed, log_root=root, **sizes) if sizes
                else seeded_farm(log_root=root))
        simulator = Simulator(farm, **settings) if simulate else None
    else:
        raise ValueError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    return SandboxServer(host=host, port=port, farm=farm, simulator=simulator)


def _log_root(path: str) -> str:
    """The log root as an absolute path, created if missing; ValueError if it cannot be."""
    root = Path(path).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"log root {path}: {error.strerror or error}") from None
    return str(root)
