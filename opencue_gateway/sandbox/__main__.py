"""Run the sandbox Cuebot from a shell: ``python -m opencue_gateway.sandbox --port 8443``.

It prints one line, ``sandbox Cuebot listening on HOST:PORT`` (the real port
when ``--port 0`` asks for a free one), and serves until SIGINT or SIGTERM,
then stops cleanly and exits 0.

``--preset readme`` (the default) is the README's seed, still: any of
``--shows``, ``--jobs-per-show``, ``--layers-per-job``, ``--frames-per-layer``
or ``--hosts`` adds a generated farm of that size (:mod:`.generate`; the
others keep their defaults).  ``--preset lively`` is the README's seed inside
a simulated studio with a few hours of history (:mod:`.lively`), which the
size flags resize.  ``--seed`` makes either reproducible.  ``--simulate``
makes the farm move (:mod:`.simulate`; always on with ``lively``):
``--tick-seconds`` of simulated time per tick, ``--speed`` simulated seconds
per wall second, ``--failure-rate`` of frames failing.  ``--log-root DIR``
puts the jobs' log directories under DIR and writes the simulated frames'
rqlogs there (:mod:`.rqlog`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from opencue_gateway.sandbox import lively
from opencue_gateway.sandbox.factory import PRESETS, SIZE_OPTIONS, sandbox_server
from opencue_gateway.sandbox.generate import FarmSpec
from opencue_gateway.sandbox.server import SandboxServer

# Cuebot's own gRPC port, so clients configured for a real Cuebot find the sandbox.
DEFAULT_PORT = 8443


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the address, farm-size and simulation flags."""
    parser = argparse.ArgumentParser(
        prog="python -m opencue_gateway.sandbox",
        description="Run an in-memory stand-in for OpenCue's Cuebot gRPC API.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="port to bind; 0 picks a free one (default: %(default)s, Cuebot's)",
    )
    parser.add_argument(
        "--preset", choices=PRESETS, default="readme",
        help="the farm to start with: readme, the README's entities, still; lively, the "
             "README's entities in a simulated studio with a few hours of history "
             "(default: %(default)s)",
    )
    defaults = FarmSpec()
    scale = parser.add_argument_group(
        "farm size (readme: any of these adds a generated farm; lively: they resize it)"
    )
    for name in SIZE_OPTIONS:
        scale.add_argument(
            f"--{name.replace('_', '-')}", type=_count, default=None,
            help=f"default: readme {getattr(defaults, name)} (when another size flag is "
                 f"given), lively {getattr(lively.SIZES, name)}",
        )
    parser.add_argument(
        "--seed", type=int, default=0,
        help="seed of the generated farm and of the simulation (default: %(default)s)",
    )
    simulation = parser.add_argument_group("simulation")
    simulation.add_argument(
        "--simulate", action="store_true", help="dispatch, run and finish frames as time passes"
    )
    simulation.add_argument(
        "--tick-seconds", type=_positive, default=1.0,
        help="simulated seconds per tick (default: %(default)s)",
    )
    simulation.add_argument(
        "--speed", type=_positive, default=1.0,
        help="simulated seconds per wall-clock second (default: %(default)s)",
    )
    simulation.add_argument(
        "--failure-rate", type=float, default=0.05,
        help="share of frame runs that fail (default: %(default)s)",
    )
    simulation.add_argument(
        "--log-root", metavar="DIR", default=None,
        help="put the jobs' log directories under DIR and write each simulated frame's "
             "rqlog there, as RQD would (default: no logs written)",
    )
    return parser.parse_args(argv)


def build_server(args: argparse.Namespace) -> SandboxServer:
    """The server the flags describe: seed or generated farm, simulated or not."""
    sizes = {name: getattr(args, name) for name in SIZE_OPTIONS if getattr(args, name) is not None}
    return sandbox_server(
        args.host, args.port, preset=args.preset, sizes=sizes, seed=args.seed,
        simulate=args.simulate, tick_seconds=args.tick_seconds, speed=args.speed,
        failure_rate=args.failure_rate, log_root=args.log_root,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit code."""
    args = parse_args(argv)
    try:
        server = build_server(args)
    except ValueError as error:
        print(f"python -m opencue_gateway.sandbox: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        """Wake the main thread so it can stop the server."""
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        print(f"sandbox Cuebot listening on {server.address}", flush=True)
        stop.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _count(text: str) -> int:
    """A farm size: a whole number, zero or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {text}")
    return value


def _positive(text: str) -> float:
    """A duration or rate above zero."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above zero, got {text}")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
