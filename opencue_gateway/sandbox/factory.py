"""One call that builds a sandbox Cuebot from the command-line options.

``python -m opencue_gateway.sandbox`` and the gateway's ``--sandbox`` mode
take the same options; both build their server here, so the two agree.
"""

from __future__ import annotations

from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.server import SandboxServer
from opencue_gateway.sandbox.simulate import Simulator

# The farm-size options, named as FarmSpec's fields.
SIZE_OPTIONS = ("shows", "jobs_per_show", "layers_per_job", "frames_per_layer", "hosts")


def sandbox_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    simulate: bool = False,
    tick_seconds: float = 1.0,
    speed: float = 1.0,
    failure_rate: float = 0.05,
) -> SandboxServer:
    """A sandbox server, not started.

    ``sizes`` holds the farm-size options given (any of :data:`SIZE_OPTIONS`):
    none gives the README's seed farm, any gives a generated farm, the others
    at :class:`~opencue_gateway.sandbox.generate.FarmSpec`'s defaults.  ``seed``
    makes the generated farm and the simulation reproducible; ``simulate``
    attaches a :class:`Simulator` that runs while the server does.
    """
    farm = Farm.generated(seed=seed, **sizes) if sizes else Farm.seeded()
    simulator = (
        Simulator(farm, seed=seed, tick_seconds=tick_seconds, speed=speed,
                  failure_rate=failure_rate)
        if simulate else None
    )
    return SandboxServer(host=host, port=port, farm=farm, simulator=simulator)
