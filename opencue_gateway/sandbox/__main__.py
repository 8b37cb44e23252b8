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

from opencue_gateway.config import SANDBOX_SETTINGS, ConfigError, sandbox_config
from opencue_gateway.sandbox.factory import sandbox_server
from opencue_gateway.sandbox.server import SandboxServer

PROG = "python -m opencue_gateway.sandbox"
# Cuebot's own gRPC port, so clients configured for a real Cuebot find the sandbox.
DEFAULT_PORT = 8443
# Run on its own, the sandbox starts still (tests, another gateway pointed at it); the
# gateway's --sandbox starts the lively farm.
DEFAULT_PRESET = "readme"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the address, and the sandbox's settings as the gateway declares them (config.py)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run an in-memory stand-in for OpenCue's Cuebot gRPC API.",
        epilog="Each setting can also be given by its variable; a flag wins.")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="port to bind; 0 picks a free one (default: %(default)s, Cuebot's)",
    )
    for item in SANDBOX_SETTINGS:
        if item.attribute == "enabled":
            continue
        text = item.help.removeprefix("sandbox: ").replace("`", "")
        default = DEFAULT_PRESET if item.attribute == "preset" else item.default
        if item.switch:
            parser.add_argument(f"--{item.flag}", action="store_true",
                                help=f"{text} [{item.variable}]")
        else:
            parser.add_argument(f"--{item.flag}", dest=item.attribute, default=None,
                                help=f"{text} [{item.variable}; default: {default or 'none'}]")
    return parser.parse_args(argv)


def build_server(args: argparse.Namespace) -> SandboxServer:
    """The server the flags describe; a bad value raises ConfigError naming its flag."""
    flags: dict[str, str | None] = {"enabled": "true"}
    for item in SANDBOX_SETTINGS[1:]:
        value = getattr(args, item.attribute)
        flags[item.attribute] = ("true" if value else None) if item.switch else value
    if flags["preset"] is None:
        flags["preset"] = DEFAULT_PRESET
    config = sandbox_config(flags)
    try:
        return sandbox_server(args.host, args.port, **config.server_options())
    except ValueError as error:
        raise ConfigError("--log-root", str(error)) from None


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit code."""
    args = parse_args(argv)
    try:
        server = build_server(args)
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
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


if __name__ == "__main__":
    raise SystemExit(main())
