"""The production HTTP edge over real sockets: CORS, rate limits, TLS, timeouts, health,
the config view, compression and request ids."""

from __future__ import annotations

import gzip
import io
import json
import socket
import time

import grpc
import pytest
import pytest_twisted
from opencue_proto import job_pb2
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.ssl import Certificate
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    readBody,
)
from twisted.web.http_headers import Headers

from opencue_gateway.config import ConfigError
from opencue_gateway.metadata import REQUEST_ID_KEY
from opencue_gateway.service import gateway_tree
from tests.certs import make_ca, make_leaf
from tests.conftest import Gateway, make_config, make_token
from tests.cuebot_double import CuebotDouble

GET_SHOWS = "/show.ShowInterface/GetShows"
PAGE = "http://127.0.0.1:9999"


# -- CORS ------------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_preflight_is_answered_without_a_token(start_gateway, cuebot):
    """A preflight gets 204 and the CORS headers before any authentication."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, CORS_ORIGINS=PAGE)
    response = await gateway.request("OPTIONS", GET_SHOWS, None, headers={
        "Origin": PAGE, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status == 204
    assert response.header("access-control-allow-origin") == PAGE
    assert response.header("access-control-allow-headers") == "authorization, content-type"
    assert response.header("access-control-max-age") == "600"
    assert "POST" in response.header("access-control-allow-methods")
    assert response.header("access-control-allow-credentials") is None
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_disallowed_origin_gets_no_cors_headers(start_gateway, cuebot):
    """An origin not in CORS_ORIGINS gets no Access-Control-* headers, preflight or not."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, CORS_ORIGINS=PAGE)
    evil = {"Origin": "http://evil.example"}
    preflight = await gateway.request("OPTIONS", GET_SHOWS, None,
                                      headers={**evil, "Access-Control-Request-Method": "POST"})
    actual = await gateway.post(GET_SHOWS, headers=evil)
    for response in (preflight, actual):
        assert not [h for h in response.headers if h.startswith("access-control-")]
    assert actual.status == 200


@pytest_twisted.ensureDeferred
async def test_actual_response_names_origin_and_exposes_headers(start_gateway, cuebot):
    """Allowed origins get ACAO, Vary: Origin, and our headers (with Cuebot's) exposed."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, CORS_ORIGINS=f"{PAGE},http://x")
    cuebot.behave(GET_SHOWS, initial_metadata=(("x-cuebot", "1"),))
    response = await gateway.post(GET_SHOWS, headers={"Origin": PAGE})
    assert response.header("access-control-allow-origin") == PAGE
    assert "Origin" in ", ".join(response.headers["vary"])
    exposed = response.header("access-control-expose-headers").lower()
    assert "opencue-gateway-ignored-fields" in exposed and "grpc-metadata-x-cuebot" in exposed
    unauthenticated = await gateway.request("POST", GET_SHOWS, headers={"Origin": PAGE})
    assert unauthenticated.status == 401
    assert unauthenticated.header("access-control-allow-origin") == PAGE


# -- rate limiting -----------------------------------------------------------------------------

# A bucket refilling at one token per 1,000 s never refills during a test, however slow the
# machine; refilling itself is unit-tested on a fake clock (tests/unit/test_edge_units.py).
NO_REFILL = "0.001"


@pytest_twisted.ensureDeferred
async def test_bursts_beyond_the_limit_get_429(start_gateway, cuebot):
    """Past the burst a principal gets 429 (code 8) with Retry-After; others are unaffected."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, RATE_LIMIT_RPS=NO_REFILL,
                            RATE_LIMIT_BURST="3")
    ann, bob = make_token(sub="ann"), make_token(sub="bob")
    statuses = [(await gateway.post(GET_SHOWS, token=ann)).status for _ in range(3)]
    refused = await gateway.post(GET_SHOWS, token=ann)
    assert statuses == [200, 200, 200]
    assert refused.status == 429 and refused.json()["code"] == 8
    assert refused.header("retry-after") == "1000"
    assert refused.header("ratelimit-limit") == "3"
    assert refused.header("ratelimit-remaining") == "0"
    assert (await gateway.post(GET_SHOWS, token=bob)).status == 200
    assert len(cuebot.received) == 4


@pytest_twisted.ensureDeferred
async def test_failed_logins_are_limited_per_address(start_gateway, cuebot):
    """Token guessing from one address hits 429 after the burst of 401s."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, RATE_LIMIT_RPS=NO_REFILL,
                            RATE_LIMIT_BURST="2")
    statuses = [(await gateway.post(GET_SHOWS, token="guess")).status for _ in range(3)]
    assert statuses == [401, 401, 429]


@pytest_twisted.ensureDeferred
async def test_zero_disables_rate_limiting(start_gateway, cuebot):
    """RATE_LIMIT_RPS=0: no limit and no RateLimit headers."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, RATE_LIMIT_RPS="0")
    for _ in range(5):
        response = await gateway.post(GET_SHOWS)
        assert response.status == 200 and response.header("ratelimit-limit") is None


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


# -- timeouts ----------------------------------------------------------------------------------

def _send_half_a_body(port: int) -> tuple[bytes, float]:
    """Send headers and half the declared body, then wait for the server to answer and close."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100\r\n\r\n" + b"{" * 10)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    return received, time.monotonic() - started


@pytest_twisted.ensureDeferred
async def test_client_stalling_mid_body_is_cut_off(start_gateway, cuebot):
    """A body that stops arriving gets 408 (JSON) at HTTP_TIMEOUT and the connection closes."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, HTTP_TIMEOUT="1s")
    received, elapsed = await deferToThread(_send_half_a_body, gateway.port)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["code"] == 4
    assert 0.9 < elapsed < 5
    assert not cuebot.received


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


@pytest_twisted.ensureDeferred
async def test_http_timeout_bounds_a_slow_cuebot_with_a_json_504(start_gateway, cuebot):
    """When HTTP_TIMEOUT is shorter than GRPC_TIMEOUT, the Cuebot call ends first, as a 504."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, HTTP_TIMEOUT="1s",
                            GRPC_TIMEOUT="30s")
    cuebot.behave(GET_SHOWS, delay=10)
    started = time.monotonic()
    response = await gateway.post(GET_SHOWS)
    assert response.status == 504 and time.monotonic() - started < 3


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
async def test_health_endpoints_can_be_turned_off(start_gateway, cuebot):
    """HEALTH_ENDPOINTS=false: /healthz is an ordinary (authenticated) path."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, HEALTH_ENDPOINTS="false")
    assert (await gateway.request("GET", "/healthz", None)).status == 401


@pytest_twisted.ensureDeferred
async def test_config_view_needs_a_token_and_redacts_secrets(start_gateway, cuebot):
    """GET /config answers the effective configuration to an authenticated caller, redacted."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_PREVIOUS_SECRETS="old-secret")
    assert (await gateway.request("GET", "/config", None)).status == 401
    response = await gateway.request("GET", "/config", None, token=make_token())
    config = response.json()
    assert response.status == 200
    assert config["CUEBOT_ENDPOINT"] == cuebot.address
    assert config["JWT_SECRET"] == config["JWT_PREVIOUS_SECRETS"] == "<redacted>"
    assert "old-secret" not in response.body.decode()
    assert "test-secret" not in response.body.decode()


@pytest_twisted.ensureDeferred
async def test_config_view_names_the_sandbox_cuebot_it_really_calls(sandbox_gateway):
    """With --sandbox, CUEBOT_ENDPOINT is the embedded sandbox's address, not the default."""
    response = await sandbox_gateway.request("GET", "/config", None, token=make_token())
    assert response.status == 200, response.body
    config = response.json()
    assert config["CUEBOT_ENDPOINT"] == sandbox_gateway.process.sandbox.server.address
    assert config["CUEBOT_ENDPOINT"].startswith("127.0.0.1:")


# -- compression and request ids ---------------------------------------------------------------

def big_frames_reply() -> job_pb2.JobGetFramesResponse:
    frames = [job_pb2.Frame(id=f"frame-{n}", name=f"{n:04d}-render", number=n, state=2)
              for n in range(200)]
    return job_pb2.JobGetFramesResponse(frames=job_pb2.FrameSeq(frames=frames))


async def raw_post(gateway: Gateway, path: str, headers: dict[str, str]) -> tuple[object, bytes]:
    """POST without treq's automatic gzip decoding, to see the bytes on the wire."""
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    all_headers = {"Authorization": f"Bearer {make_token()}", **headers}
    response = await agent.request(b"POST", (gateway.url + path).encode(), Headers(
        {k: [v] for k, v in all_headers.items()}), FileBodyProducer(io.BytesIO(b"{}")))
    return response, await readBody(response)


@pytest_twisted.ensureDeferred
async def test_large_replies_are_gzipped_when_accepted(gateway, cuebot):
    """Replies over 1 KiB are gzipped for clients that accept it, and only for them."""
    cuebot.behave("/job.JobInterface/GetFrames", reply=big_frames_reply())
    response, body = await raw_post(gateway, "/job.JobInterface/GetFrames",
                                    {"Accept-Encoding": "gzip"})
    assert response.headers.getRawHeaders(b"content-encoding") == [b"gzip"]
    assert "Accept-Encoding" in response.headers.getRawHeaders(b"vary")[0].decode()
    frames = json.loads(gzip.decompress(body))["frames"]["frames"]
    assert len(frames) == 200
    plain_response, plain = await raw_post(gateway, "/job.JobInterface/GetFrames", {})
    assert plain_response.headers.getRawHeaders(b"content-encoding") is None
    assert json.loads(plain) == json.loads(gzip.decompress(body))
    small_response, _ = await raw_post(gateway, GET_SHOWS, {"Accept-Encoding": "gzip"})
    assert small_response.headers.getRawHeaders(b"content-encoding") is None


@pytest_twisted.ensureDeferred
async def test_request_ids_are_echoed_generated_and_forwarded(gateway, cuebot):
    """X-Request-Id is kept when sane, generated otherwise, echoed, and sent to Cuebot."""
    given = await gateway.post(GET_SHOWS, headers={"X-Request-Id": "job-42.retry"})
    assert given.header("x-request-id") == "job-42.retry"
    assert cuebot.last().metadata[REQUEST_ID_KEY] == "job-42.retry"
    generated = await gateway.post(GET_SHOWS)
    assert len(generated.header("x-request-id")) == 32
    assert cuebot.last().metadata[REQUEST_ID_KEY] == generated.header("x-request-id")
    insane = await gateway.post(GET_SHOWS, headers={"X-Request-Id": "x" * 500})
    assert len(insane.header("x-request-id")) == 32
    error = await gateway.request("POST", GET_SHOWS)
    assert len(error.header("x-request-id")) == 32
