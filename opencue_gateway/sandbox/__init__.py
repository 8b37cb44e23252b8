"""The sandbox Cuebot: an in-memory stand-in for OpenCue's Cuebot gRPC API.

It is a real grpcio server, on loopback by default, so tests, demos
(``twistd -n opencue-gateway --sandbox``) and benchmarks exercise the same
gRPC bytes a real Cuebot exchanges.  Its :class:`Farm` starts with the
README's example show, job, layer, frames, group, host, proc, owner and deed;
changes (pause, lock, eat, retry, kill, comments, new shows, ...) follow
Cuebot's semantics and show on the next read.  Failures carry the status
codes and wording a Cuebot client sees (:mod:`.errors`).  Every method of the
gateway's catalog is registered; those not implemented answer UNIMPLEMENTED
and name themselves.

Run it with ``python -m opencue_gateway.sandbox --port 8443`` or the
``opencue-gateway-sandbox`` console script.
"""

from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.server import SandboxServer

__all__ = ["Farm", "SandboxServer"]
