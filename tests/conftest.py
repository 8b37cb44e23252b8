"""Shared fixtures: the catalog, tokens, a Cuebot double, and real gateways on loopback."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, HTTPConnectionPool

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import GatewayConfig, load_config
from opencue_gateway.logs import set_level
from opencue_gateway.process import GatewayProcess
from opencue_gateway.service import gateway_tree
from tests.cuebot_double import CuebotDouble
from tests.idp import JwksServer
from tests.studio_protos import StudioSet, build_set

SECRET = "test-secret-that-is-long-enough-for-hs512-0123456789abcdef-0123456789"


def make_token(secret: str = SECRET, algorithm: str = "HS256", **claims: object) -> str:
    """A signed JWT; ``exp`` defaults to an hour from now, ``sub`` to 'tester' (None: no sub)."""
    claims.setdefault("sub", "tester")
    claims.setdefault("exp", int(time.time()) + 3600)
    claims = {k: v for k, v in claims.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret, algorithm=algorithm)


def make_config(sandbox: bool = False, **env: str | None) -> GatewayConfig:
    """A loopback gateway configuration on a free port; overrides as env variables (None unsets).

    Rate limiting is off unless a test turns it on: with the default 100/s a
    test sending a few hundred calls passes or fails by how fast the machine is.
    """
    base: dict[str, str | None] = {"JWT_SECRET": SECRET, "REST_PORT": "0",
                                   "REST_HOST": "127.0.0.1", "SHUTDOWN_GRACE": "5s",
                                   "DRAIN_DELAY": "0s", "RATE_LIMIT_RPS": "0"}
    if sandbox:
        # The README's entities alone: tests need a farm that holds still.
        base.update({"SANDBOX": "true", "SANDBOX_PRESET": "readme"})
    base.update(env)
    return load_config({k: v for k, v in base.items() if v is not None}, {})


@pytest.fixture(scope="session")
def catalog() -> MethodCatalog:
    return MethodCatalog.default()


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> StudioSet:
    """A studio's own protos (tests/studio_protos.py) compiled with proto_gen, once per run."""
    return build_set(tmp_path_factory.mktemp("studio"))


@pytest.fixture
def cuebot(catalog: MethodCatalog) -> Iterator[CuebotDouble]:
    double = CuebotDouble(catalog).start()
    yield double
    double.stop()


@dataclass
class Response:
    """What a test needs from an HTTP response."""

    status: int
    headers: dict[str, list[str]]
    body: bytes

    def json(self) -> object:
        import json

        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def assert_error(response: Response, status: int, code: int, words: str) -> dict:
    """The response is the contract's JSON error with this status, code and message."""
    assert response.status == status, response.body
    assert response.header("content-type") == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "details", "error"}
    assert body["code"] == code and body["details"] == []
    assert body["error"] == body["message"]
    assert words in body["message"], body["message"]
    assert "Traceback" not in body["message"]
    return body


@dataclass
class Gateway:
    """A running gateway process (its service tree) and how to talk to it."""

    process: GatewayProcess | None
    url: str
    _http: HTTPClient

    @property
    def port(self) -> int:
        """The port of its first listener."""
        assert self.process is not None
        return self.process.listeners[0].port.getHost().port

    @property
    def farm(self):
        """The embedded sandbox's farm (sandbox mode), for setting up a test."""
        assert self.process is not None
        return self.process.sandbox.server.farm

    async def request(
        self, method: str, path: str, body: bytes | str | None = b"{}",
        token: str | None = None, headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {"Content-Type": "application/json"}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        response = await self._http.request(
            method, self.url + path, data=body, headers=all_headers
        )
        content = await response.content()
        return Response(
            response.code,
            {k.decode().lower(): [v.decode() for v in vs]
             for k, vs in response.headers.getAllRawHeaders()},
            content,
        )

    async def post(self, path: str, body: bytes | str | None = b"{}", **kwargs: object) -> Response:
        kwargs.setdefault("token", make_token())
        return await self.request("POST", path, body, **kwargs)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    """A JWKS on 127.0.0.1 (empty until a test puts keys in it), stopped at teardown."""
    server = JwksServer().start()
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[HTTPClient]:
    """An HTTP client without connection reuse, closed at teardown."""
    pool = HTTPConnectionPool(reactor, persistent=False)
    yield HTTPClient(Agent(reactor, pool=pool))
    pytest_twisted.blockon(pool.closeCachedConnections())


@pytest.fixture
def client(http: HTTPClient) -> Callable[[str], Gateway]:
    """Talk to a gateway running elsewhere (a twistd subprocess) at a base URL."""
    return lambda url: Gateway(None, url, http)


@pytest.fixture
def captured_logs() -> Iterator[list[dict]]:
    """Every log event published while the test runs, from LOG_LEVEL info up.

    The level is process-wide: a gateway an earlier test started with
    LOG_LEVEL=error would otherwise still hide the info lines looked for here.
    """
    set_level("info")
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest.fixture
def start_gateway(http: HTTPClient, catalog: MethodCatalog) -> Iterator[Callable[..., Gateway]]:
    """Start gateways on 127.0.0.1 (env-style overrides as keywords); all stop at teardown."""
    started: list[GatewayProcess] = []

    def start(sandbox: bool = False, **env: str | None) -> Gateway:
        process = gateway_tree(make_config(sandbox, **env), reactor, catalog=catalog)
        process.startService()
        started.append(process)
        gateway = Gateway(process, "", http)
        gateway.url = f"http://127.0.0.1:{gateway.port}"
        return gateway

    yield start
    for process in started:
        pytest_twisted.blockon(process.stopService())


@pytest.fixture
def gateway(start_gateway: Callable[..., Gateway], cuebot: CuebotDouble) -> Gateway:
    """A gateway in front of the Cuebot double."""
    return start_gateway(CUEBOT_ENDPOINT=cuebot.address)


@pytest.fixture
def sandbox_gateway(start_gateway: Callable[..., Gateway]) -> Gateway:
    """A gateway running the embedded sandbox Cuebot (``--sandbox``)."""
    return start_gateway(sandbox=True)


@pytest.fixture(scope="session")
def production_replies() -> dict[str, Any]:
    """Production-size list replies, made once: GetJobs with 20,000 jobs, GetFrames with 10,000
    frames, GetHosts with 2,000 hosts (keys: jobs, frames, hosts)."""
    from opencue_proto import host_pb2

    from bench.data import SEED, make_frames, make_jobs
    from tests.populate import populate

    rng = random.Random(SEED)
    hosts = host_pb2.HostGetHostsResponse(hosts=host_pb2.HostSeq(
        hosts=[populate(host_pb2.Host(), seed) for seed in range(2_000)]))
    return {"jobs": make_jobs(rng, 20_000), "frames": make_frames(rng, 10_000), "hosts": hosts}
