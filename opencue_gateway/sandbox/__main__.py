"""Run the sandbox Cuebot from a shell: ``python -m opencue_gateway.sandbox --port 8443``.

It prints one line, ``sandbox Cuebot listening on HOST:PORT`` (the real port
when ``--port 0`` asks for a free one), and serves until SIGINT or SIGTERM,
then stops cleanly and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from opencue_gateway.sandbox.server import SandboxServer

# Cuebot's own gRPC port, so clients configured for a real Cuebot find the sandbox.
DEFAULT_PORT = 8443


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read ``--host`` and ``--port``."""
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit code."""
    args = parse_args(argv)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        """Wake the main thread so it can stop the server."""
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = SandboxServer(host=args.host, port=args.port)
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
