"""``python -m opencue_gateway.sandbox`` announces its address and stops cleanly on signals."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opencue_proto import show_pb2, show_pb2_grpc

from opencue_gateway.sandbox.__main__ import DEFAULT_PORT, parse_args
from tests.sandbox.sandbox_support import CALL_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^sandbox Cuebot listening on (127\.0\.0\.1:(\d+))$")
STARTUP_TIMEOUT = 30.0


@pytest.fixture
def sandbox_process() -> Iterator[subprocess.Popen[str]]:
    """The sandbox as a child process on a free port; killed if a test leaves it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "opencue_gateway.sandbox", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=CALL_TIMEOUT)
        process.stdout.close()


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first line the process prints, failing the test if none comes in time."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=STARTUP_TIMEOUT), "the sandbox printed nothing"
    return process.stdout.readline().rstrip("\n")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_prints_listening_line_serves_and_exits_zero(sandbox_process, stop_signal):
    """The process prints its real address, serves gRPC, and exits 0 on SIGTERM or SIGINT."""
    match = LISTENING.match(_first_line(sandbox_process))
    assert match is not None
    assert int(match.group(2)) > 0
    with grpc.insecure_channel(match.group(1)) as channel:
        stub = show_pb2_grpc.ShowInterfaceStub(channel)
        shows = stub.GetShows(show_pb2.ShowGetShowsRequest(), timeout=CALL_TIMEOUT).shows.shows
    assert [show.name for show in shows] == ["testing"]
    sandbox_process.send_signal(stop_signal)
    assert sandbox_process.wait(timeout=15) == 0


def test_defaults_are_loopback_and_cuebots_port():
    """Without arguments the sandbox binds 127.0.0.1 on Cuebot's port 8443."""
    args = parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", DEFAULT_PORT) == ("127.0.0.1", 8443)
