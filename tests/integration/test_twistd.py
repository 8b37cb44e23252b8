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

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

from tests.conftest import SECRET, make_token
from tests.integration.conftest import TWISTD, wait_for_exit, wait_for_port


@pytest_twisted.ensureDeferred
async def test_sigterm_drains_in_flight_calls_and_exits_0(tmp_path, twistd, cuebot, client):
    """SIGTERM during a slow call: the call completes with 200, then the process exits 0."""
    cuebot.behave("/show.ShowInterface/GetShows", delay=1.5)
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address})
    port = await wait_for_port(process, tmp_path)
    gateway = client(f"http://127.0.0.1:{port}")
    quick = await gateway.post("/show.ShowInterface/FindShow", '{"name": "x"}')
    assert quick.status == 200
    in_flight = ensureDeferred(gateway.post("/show.ShowInterface/GetShows"))
    await deferLater(reactor, 0.5, lambda: None)
    process.send_signal(signal.SIGTERM)
    response = await in_flight
    assert response.status == 200
    assert await wait_for_exit(process, 15) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
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
async def test_sighup_rereads_the_secret_file(tmp_path, twistd, cuebot, client):
    """SIGHUP re-reads JWT_SECRET_FILE: new tokens pass, old ones stop; short secrets warn."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("short-old-secret\n")
    process = twistd({"JWT_SECRET_FILE": str(secret_file),
                                    "CUEBOT_ENDPOINT": cuebot.address})
    port = await wait_for_port(process, tmp_path)
    gateway = client(f"http://127.0.0.1:{port}")
    old = make_token(secret="short-old-secret")
    assert (await gateway.post("/show.ShowInterface/GetShows", token=old)).status == 200
    secret_file.write_text("a-new-and-much-longer-secret-for-the-farm-0123456789\n")
    process.send_signal(signal.SIGHUP)
    await deferLater(reactor, 0.5, lambda: None)
    new = make_token(secret="a-new-and-much-longer-secret-for-the-farm-0123456789")
    assert (await gateway.post("/show.ShowInterface/GetShows", token=new)).status == 200
    assert (await gateway.post("/show.ShowInterface/GetShows", token=old)).status == 401
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 15) == 0
    log = (tmp_path / "twistd.log").read_text()
    assert "JWT_SECRET is shorter than 32 bytes" in log
    assert "SIGHUP: secret file, public key file and policy re-read" in log
    assert "short-old-secret" not in log


@pytest_twisted.ensureDeferred
async def test_sandbox_mode_prints_a_working_token(tmp_path, twistd, client):
    """`--sandbox` needs no Cuebot and no secret, and the token it logs works as printed."""
    process = twistd({}, "--sandbox")
    port = await wait_for_port(process, tmp_path)
    log = (tmp_path / "twistd.log").read_text()
    token = re.search(r"export JWT_TOKEN=(\S+)", log).group(1)
    gateway = client(f"http://127.0.0.1:{port}")
    response = await gateway.post("/show.ShowInterface/GetShows", token=token)
    assert response.status == 200
    assert response.json()["shows"]["shows"][0]["name"] == "testing"
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 15) == 0
    # The short development secret is reported once, by the gateway, not by PyJWT per token.
    log = (tmp_path / "twistd.log").read_text()
    assert "InsecureKeyLengthWarning" not in log


@pytest_twisted.ensureDeferred
async def test_sandbox_token_follows_the_configured_algorithm_and_role_claim(tmp_path, twistd,
                                                                              client):
    """The logged token passes this gateway's checks with JWT_ALGORITHMS=HS512 and a custom
    role claim (it was HS256 with a fixed `role` claim)."""
    process = twistd({"JWT_ALGORITHMS": "HS512", "JWT_ROLE_CLAIM": "groups"}, "--sandbox")
    port = await wait_for_port(process, tmp_path)
    token = re.search(r"export JWT_TOKEN=(\S+)", (tmp_path / "twistd.log").read_text()).group(1)
    response = await client(f"http://127.0.0.1:{port}").post("/show.ShowInterface/GetShows",
                                                              token=token)
    assert response.status == 200
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 15) == 0


@pytest_twisted.ensureDeferred
async def test_drain_completes_50_in_flight_requests(tmp_path, twistd, cuebot, client):
    """SIGTERM with 50 calls in flight: /readyz fails, new requests are still served during
    DRAIN_DELAY, all 50 complete with 200, then connections are refused and the exit is 0."""
    cuebot.behave("/show.ShowInterface/GetShows", delay=2.0)
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
                                    "DRAIN_DELAY": "1s", "SHUTDOWN_GRACE": "15s",
                                    "FAN_IN": "false"})
    port = await wait_for_port(process, tmp_path)
    gateway = client(f"http://127.0.0.1:{port}")
    assert (await gateway.request("GET", "/readyz", None)).status == 200
    in_flight = [ensureDeferred(gateway.post("/show.ShowInterface/GetShows"))
                 for _ in range(50)]
    await deferLater(reactor, 0.5, lambda: None)
    process.send_signal(signal.SIGTERM)
    await deferLater(reactor, 0.3, lambda: None)
    assert (await gateway.request("GET", "/readyz", None)).status == 503
    during = await gateway.post("/show.ShowInterface/FindShow", '{"name": "x"}')
    assert during.status == 200
    responses = [await d for d in in_flight]
    assert [r.status for r in responses] == [200] * 50
    assert await wait_for_exit(process, 20) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert len([r for r in cuebot.received if r.path.endswith("/GetShows")]) == 50
