"""The HTTP edge where real sockets, TLS or a real gRPC channel matter: HTTPS, TLS towards
Cuebot, idle keep-alive connections, readiness following a real channel, and the sandbox's
address in the config view.

CORS, rate limits, body limits, HTTP_TIMEOUT, compression, request ids and the pages are
checked in memory, on a fake clock (tests/unit/app/).
"""

from __future__ import annotations

import json
import socket
import time

import grpc
import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.ssl import Certificate
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
)

from opencue_gateway.config import ConfigError
from opencue_gateway.service import gateway_tree
from tests.certs import make_ca, make_leaf
from tests.conftest import Gateway, make_config, make_token
from tests.cuebot_double import CuebotDouble

GET_SHOWS = "/show.ShowInterface/GetShows"


# -- TLS ---------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_https_listener(tmp_path, cuebot):
    """With TLS_CERT_FILE/TLS_KEY_FILE the gateway speaks HTTPS, verifiable with the CA."""
    ca, ca_key = make_ca(tmp_path)
    leaf = make_leaf(tmp_path, ca, ca_key)
    process = gateway_tree(make_config(CUEBOT_ENDPOINT=cuebot.address,
                                       TLS_CERT_FILE=str(leaf.cert),
                                       TLS_KEY_FILE=str(leaf.key)), reactor)
    process.startService()
    pool = HTTPConnectionPool(reactor, persistent=False)
    try:
        trust = Certificate.loadPEM(ca.cert.read_bytes())
        agent = Agent(reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trust),
                      pool=pool)
        gateway = Gateway(process, "", HTTPClient(agent))
        gateway.url = f"https://127.0.0.1:{gateway.port}"
        assert (await gateway.post(GET_SHOWS)).status == 200
    finally:
        await process.stopService()
        await pool.closeCachedConnections()


def test_expired_certificate_stops_start_up(tmp_path, cuebot):
    """An expired certificate file is refused when the service is built."""
    import datetime

    ca, ca_key = make_ca(tmp_path)
    leaf = make_leaf(tmp_path, ca, ca_key, not_before=datetime.timedelta(days=-10),
                     not_after=datetime.timedelta(days=-1))
    with pytest.raises(ConfigError, match="expired"):
        gateway_tree(make_config(TLS_CERT_FILE=str(leaf.cert), TLS_KEY_FILE=str(leaf.key)),
                     reactor)


@pytest.mark.parametrize("mutual", [False, True])
@pytest_twisted.ensureDeferred
async def test_tls_towards_cuebot(tmp_path, catalog, start_gateway, mutual):
    """CUEBOT_TLS_CA_FILE makes the channel to Cuebot TLS; a client cert enables mutual TLS."""
    ca, ca_key = make_ca(tmp_path)
    server = make_leaf(tmp_path, ca, ca_key, name="cuebot")
    client = make_leaf(tmp_path, ca, ca_key, name="gateway")
    credentials = grpc.ssl_server_credentials(
        [(server.key.read_bytes(), server.cert.read_bytes())],
        root_certificates=ca.cert.read_bytes() if mutual else None,
        require_client_auth=mutual)
    double = CuebotDouble(catalog).start(credentials=credentials)
    try:
        env = {"CUEBOT_ENDPOINT": f"localhost:{double.port}", "CUEBOT_TLS_CA_FILE": str(ca.cert)}
        if mutual:
            env.update(CUEBOT_TLS_CERT_FILE=str(client.cert), CUEBOT_TLS_KEY_FILE=str(client.key))
        gateway = start_gateway(**env)
        assert (await gateway.post(GET_SHOWS)).status == 200
        plaintext = start_gateway(CUEBOT_ENDPOINT=f"localhost:{double.port}")
        assert (await plaintext.post(GET_SHOWS)).status == 503
    finally:
        double.stop()


# -- connections -------------------------------------------------------------------------------

def _idle_connection_lifetime(port: int) -> float:
    """Make one request on a keep-alive connection and time until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(4096)
        started = time.monotonic()
        while sock.recv(4096):
            pass
        return time.monotonic() - started


@pytest_twisted.ensureDeferred
async def test_idle_keepalive_connections_are_closed(start_gateway, cuebot):
    """An idle keep-alive connection is closed after HTTP_IDLE_TIMEOUT."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, HTTP_IDLE_TIMEOUT="1s")
    lifetime = await deferToThread(_idle_connection_lifetime, gateway.port)
    assert 0.5 < lifetime < 4


# -- health and config ----------------------------------------------------------------------------

async def _ready_status(gateway: Gateway, want: int, seconds: float = 15) -> int:
    """Poll /readyz until it answers ``want`` (bounded); return the last status."""
    deadline = time.monotonic() + seconds
    while True:
        status = (await gateway.request("GET", "/readyz", None)).status
        if status == want or time.monotonic() > deadline:
            return status
        await deferLater(reactor, 0.2, lambda: None)


@pytest_twisted.ensureDeferred
async def test_health_follows_cuebot_going_away_and_coming_back(start_gateway, catalog):
    """/healthz stays 200; /readyz is 503 while Cuebot is down and 200 again once it is back."""
    double = CuebotDouble(catalog).start()
    port = double.port
    gateway = start_gateway(CUEBOT_ENDPOINT=double.address)
    healthz = await gateway.request("GET", "/healthz", None)
    assert (healthz.status, healthz.json()) == (200, {"status": "ok"})
    assert await _ready_status(gateway, 200) == 200
    double.stop()
    assert await _ready_status(gateway, 503) == 503
    body = (await gateway.request("GET", "/readyz", None)).json()
    assert body["status"] == "unavailable" and "127.0.0.1" not in json.dumps(body)
    assert (await gateway.request("GET", "/healthz", None)).status == 200
    back = CuebotDouble(catalog).start(port=port)
    try:
        assert await _ready_status(gateway, 200) == 200
        assert (await gateway.post(GET_SHOWS)).status == 200
    finally:
        back.stop()


@pytest_twisted.ensureDeferred
async def test_config_view_names_the_sandbox_cuebot_it_really_calls(sandbox_gateway):
    """With --sandbox, CUEBOT_ENDPOINT is the embedded sandbox's address, not the default."""
    response = await sandbox_gateway.request("GET", "/config", None, token=make_token())
    assert response.status == 200, response.body
    config = response.json()
    assert config["CUEBOT_ENDPOINT"] == sandbox_gateway.process.sandbox.server.address
    assert config["CUEBOT_ENDPOINT"].startswith("127.0.0.1:")
