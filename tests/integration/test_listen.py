"""Listeners from Twisted endpoint strings: --listen tcp: and unix: (socket activation is in
test_socket_activation.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from tests.integration.conftest import TWISTD, wait_for_exit, wait_for_port

SANDBOX_SECRET = "default-secret-key"


def sandbox_token() -> str:
    from tests.conftest import make_token

    return make_token(secret=SANDBOX_SECRET)


def http_over(connect: socket.socket, request: bytes) -> tuple[int, dict]:
    """Send one HTTP/1.1 request on a connected socket; the status and the JSON body."""
    with connect as conn:
        conn.settimeout(10)
        conn.sendall(request)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def get_shows(host: str) -> bytes:
    body = b"{}"
    return (b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: " + host.encode() +
            b"\r\nConnection: close\r\nAuthorization: Bearer " + sandbox_token().encode() +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest_twisted.ensureDeferred
async def test_listen_tcp_endpoint_serves(tmp_path, twistd, client):
    """--listen tcp:0:interface=127.0.0.1 serves the API (REST_PORT then plays no part)."""
    process = twistd({}, "--sandbox", "--listen", "tcp:0:interface=127.0.0.1")
    port = await wait_for_port(process, tmp_path)
    response = await client(f"http://127.0.0.1:{port}").post(
        "/show.ShowInterface/GetShows", token=sandbox_token())
    assert response.status == 200
    assert response.json()["shows"]["shows"][0]["name"] == "testing"
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 15) == 0


@pytest_twisted.ensureDeferred
async def test_listen_on_a_unix_socket(tmp_path, twistd):
    """--listen unix:PATH serves HTTP on a Unix socket (behind nginx, say)."""
    path = tmp_path / "gw.sock"
    process = twistd({}, "--sandbox", "--listen", f"unix:{path}")
    deadline = time.monotonic() + 30
    while "listening on http+unix:" not in (tmp_path / "twistd.log").read_text():
        assert process.poll() is None and time.monotonic() < deadline
        await deferLater(reactor, 0.1, lambda: None)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.connect(str(path))
    status, body = await deferToThread(http_over, unix, get_shows("localhost"))
    assert status == 200 and body["shows"]["shows"][0]["name"] == "testing"
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 15) == 0


@pytest.mark.parametrize(("spec", "words"), [
    ("nonsense:1", "LISTEN: cannot use the endpoint 'nonsense:1'"),
    ("8448", "--listen: expected Twisted endpoint strings"),
])
def test_a_bad_endpoint_string_is_one_line(tmp_path, spec, words):
    """An endpoint Twisted does not know, or one without a type, exits 1 with one line."""
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "opencue-gateway", "--sandbox", "--listen", spec],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("JWT_")})
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"opencue-gateway: {words}"), lines


def test_twistd_is_run_by_the_command_workers_use():
    """The workers' twistd command exists and runs this installation's Twisted."""
    from opencue_gateway.workers import twistd_command

    command = twistd_command()
    result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and re.search(r"twistd \(the Twisted daemon\)", result.stdout)
    assert Path(command[0]).parent == Path(sys.executable).parent
