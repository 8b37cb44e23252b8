"""The real daemon: `twistd -n --pidfile= opencue-gateway` as a subprocess.

Start-up, one-line configuration errors, and a SIGTERM during an in-flight
call that must complete before the process exits 0.
"""

from __future__ import annotations

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
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

from tests.conftest import SECRET, make_token

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
STARTUP_SECONDS = 30


def run_twistd(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """Start the gateway under twistd with output captured to a file."""
    log = (tmp_path / "twistd.log").open("wb")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "CUEBOT_"))}
    full_env.update({"DRAIN_DELAY": "0s", "RATE_LIMIT_RPS": "0"})
    full_env.update(env)
    return subprocess.Popen(
        [*TWISTD, "-n", "--pidfile=", "opencue-gateway", "--rest-host", "127.0.0.1",
         "--rest-port", "0", *args],
        stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_path,
    )


async def wait_for_port(process: subprocess.Popen, tmp_path: Path) -> int:
    """Poll the log until the gateway says where it listens (bounded)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        match = LISTENING.search((tmp_path / "twistd.log").read_text(errors="replace"))
        if match:
            return int(match.group(1))
        assert process.poll() is None, (tmp_path / "twistd.log").read_text()
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("the gateway did not start in time")


async def wait_for_exit(process: subprocess.Popen, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        await deferLater(reactor, 0.05, lambda: None)
    if process.poll() is None:
        process.kill()
        process.wait()
        raise AssertionError("the gateway did not exit in time")
    return process.returncode


@pytest_twisted.ensureDeferred
async def test_sigterm_drains_in_flight_calls_and_exits_0(tmp_path, cuebot, start_gateway):
    """SIGTERM during a slow call: the call completes with 200, then the process exits 0."""
    cuebot.behave("/show.ShowInterface/GetShows", delay=1.5)
    process = run_twistd(tmp_path, {"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address})
    try:
        port = await wait_for_port(process, tmp_path)
        client = start_gateway(CUEBOT_ENDPOINT=cuebot.address)  # only for its HTTP client
        client.url = f"http://127.0.0.1:{port}"
        quick = await client.post("/show.ShowInterface/FindShow", '{"name": "x"}')
        assert quick.status == 200
        in_flight = ensureDeferred(client.post("/show.ShowInterface/GetShows"))
        await deferLater(reactor, 0.5, lambda: None)
        process.send_signal(signal.SIGTERM)
        response = await in_flight
        assert response.status == 200
        assert await wait_for_exit(process, 15) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "twistd.log").read_text()
    assert "SIGTERM received: draining" in log and "stopped" in log
    assert SECRET not in log


def test_missing_secret_exits_1_with_one_line(tmp_path):
    """Start-up without JWT_SECRET fails at once with a single line naming it."""
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "opencue-gateway"], capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("JWT_")},
        cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines == ["opencue-gateway: JWT_SECRET: required: set JWT_SECRET or JWT_SECRET_FILE "
                     "to the secret that signs client tokens"]


def test_bad_value_exits_1_naming_the_variable(tmp_path):
    """A malformed duration stops start-up with the variable and the accepted form."""
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "opencue-gateway"], capture_output=True, text=True,
        env={**os.environ, "JWT_SECRET": SECRET, "GRPC_TIMEOUT": "soon"}, cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip() == (
        "opencue-gateway: GRPC_TIMEOUT: expected a duration like 500ms, 30s, 5m or 1h, "
        "got 'soon'")


def test_port_in_use_exits_1_with_one_line(tmp_path):
    """A port already taken is one clear line and exit 1, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*TWISTD, "-n", "--pidfile=", "opencue-gateway", "--rest-host", "127.0.0.1",
             "--rest-port", str(port)], capture_output=True, text=True,
            env={**os.environ, "JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": "127.0.0.1:9"},
            cwd=tmp_path, timeout=60,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    # twistd's logging is up by now, so the line arrives through the log, once.
    assert output.count(f"opencue-gateway: REST_PORT: cannot listen on 127.0.0.1:{port}") == 1
    assert "Traceback" not in output


@pytest_twisted.ensureDeferred
async def test_sighup_rereads_the_secret_file(tmp_path, cuebot, start_gateway):
    """SIGHUP re-reads JWT_SECRET_FILE: new tokens pass, old ones stop; short secrets warn."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("short-old-secret\n")
    process = run_twistd(tmp_path, {"JWT_SECRET_FILE": str(secret_file),
                                    "CUEBOT_ENDPOINT": cuebot.address})
    try:
        port = await wait_for_port(process, tmp_path)
        client = start_gateway(CUEBOT_ENDPOINT=cuebot.address)
        client.url = f"http://127.0.0.1:{port}"
        old = make_token(secret="short-old-secret")
        assert (await client.post("/show.ShowInterface/GetShows", token=old)).status == 200
        secret_file.write_text("a-new-and-much-longer-secret-for-the-farm-0123456789\n")
        process.send_signal(signal.SIGHUP)
        await deferLater(reactor, 0.5, lambda: None)
        new = make_token(secret="a-new-and-much-longer-secret-for-the-farm-0123456789")
        assert (await client.post("/show.ShowInterface/GetShows", token=new)).status == 200
        assert (await client.post("/show.ShowInterface/GetShows", token=old)).status == 401
        process.send_signal(signal.SIGTERM)
        assert await wait_for_exit(process, 15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "twistd.log").read_text()
    assert "JWT_SECRET is shorter than 32 bytes" in log
    assert "SIGHUP: secret file and policy re-read" in log
    assert "short-old-secret" not in log


@pytest_twisted.ensureDeferred
async def test_sandbox_mode_prints_a_working_token(tmp_path, start_gateway):
    """`--sandbox` needs no Cuebot and no secret, and the token it logs works as printed."""
    process = run_twistd(tmp_path, {}, "--sandbox")
    try:
        port = await wait_for_port(process, tmp_path)
        log = (tmp_path / "twistd.log").read_text()
        token = re.search(r"export JWT_TOKEN=(\S+)", log).group(1)
        client = start_gateway(sandbox=True)
        client.url = f"http://127.0.0.1:{port}"
        response = await client.post("/show.ShowInterface/GetShows", token=token)
        assert response.status == 200
        assert response.json()["shows"]["shows"][0]["name"] == "testing"
        process.send_signal(signal.SIGTERM)
        assert await wait_for_exit(process, 15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest_twisted.ensureDeferred
async def test_drain_completes_50_in_flight_requests(tmp_path, cuebot, start_gateway):
    """SIGTERM with 50 calls in flight: /readyz fails, new requests are still served during
    DRAIN_DELAY, all 50 complete with 200, then connections are refused and the exit is 0."""
    cuebot.behave("/show.ShowInterface/GetShows", delay=2.0)
    process = run_twistd(tmp_path, {"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
                                    "DRAIN_DELAY": "1s", "SHUTDOWN_GRACE": "15s",
                                    "FAN_IN": "false"})
    try:
        port = await wait_for_port(process, tmp_path)
        client = start_gateway(CUEBOT_ENDPOINT=cuebot.address)
        client.url = f"http://127.0.0.1:{port}"
        assert (await client.request("GET", "/readyz", None)).status == 200
        in_flight = [ensureDeferred(client.post("/show.ShowInterface/GetShows"))
                     for _ in range(50)]
        await deferLater(reactor, 0.5, lambda: None)
        process.send_signal(signal.SIGTERM)
        await deferLater(reactor, 0.3, lambda: None)
        assert (await client.request("GET", "/readyz", None)).status == 503
        during = await client.post("/show.ShowInterface/FindShow", '{"name": "x"}')
        assert during.status == 200
        responses = [await d for d in in_flight]
        assert [r.status for r in responses] == [200] * 50
        assert await wait_for_exit(process, 20) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len([r for r in cuebot.received if r.path.endswith("/GetShows")]) == 50
