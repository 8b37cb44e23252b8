"""The gateway's own pages: probes, the configuration view, the API description and docs."""

from __future__ import annotations

import gzip
import json

import grpc
import pytest

from opencue_gateway import __version__
from opencue_gateway.openapi import build_openapi
from opencue_gateway.sandbox.seed import seeded_farm
from tests.conftest import make_token
from tests.unit.app.support import GET_SHOWS
from tests.unit.test_openapi import Schemas

# -- probes ----------------------------------------------------------------------------------

def test_probes_are_public_and_ready_with_a_connected_cuebot(gw):
    """/healthz and /readyz need no token; both are 200 with a connected Cuebot."""
    healthz = gw.request("GET", "/healthz", None)
    assert (healthz.status, healthz.json()) == (200, {"status": "ok"})
    assert healthz.header("cache-control") == "no-store"
    readyz = gw.request("GET", "/readyz", None)
    assert (readyz.status, readyz.json()) == (200, {"status": "ready"})


def test_readiness_follows_the_channel(gw):
    """/readyz is 503 naming the channel's state while Cuebot is unreachable, and 200 again
    once the channel is back; /healthz stays 200 throughout."""
    gw.cuebot.become(grpc.ChannelConnectivity.TRANSIENT_FAILURE)
    down = gw.request("GET", "/readyz", None)
    assert down.status == 503
    assert down.json() == {"status": "unavailable",
                           "reasons": ["cuebot channel is TRANSIENT_FAILURE"]}
    assert "cuebot.memory" not in down.body.decode()
    assert gw.request("GET", "/healthz", None).status == 200
    gw.cuebot.become(grpc.ChannelConnectivity.READY)
    assert gw.request("GET", "/readyz", None).status == 200


def test_readiness_says_draining_and_queue_full(make_gateway):
    """A draining gateway and a full worker queue each make /readyz 503 with their reason."""
    gw = make_gateway(MAX_CONCURRENT_STREAMS="1", MAX_QUEUED_REQUESTS="0")
    gw.cuebot.behave(GET_SHOWS, delay=1)
    slow = gw.send("POST", GET_SHOWS, token=make_token())
    gw.settle()
    gw.gateway.health.draining = True
    reasons = gw.request("GET", "/readyz", None).json()["reasons"]
    assert reasons == ["draining: the gateway is shutting down", "the worker queue is full"]
    gw.advance(1)
    assert gw.result(slow).status == 200


def test_a_head_probe_gets_headers_only(gw):
    """HEAD on a probe is served like GET, without a body."""
    response = gw.request("HEAD", "/healthz", None)
    assert response.status == 200 and response.body == b""
    assert response.header("content-type") == "application/json"


@pytest.mark.parametrize(("env", "path", "without_token", "with_token"), [
    ({}, "/metrics", 200, 200),
    ({"METRICS_REQUIRE_AUTH": "true"}, "/metrics", 401, 200),
    ({"METRICS_PORT": "9100"}, "/metrics", 401, 404),
    ({"HEALTH_ENDPOINTS": "false"}, "/healthz", 401, 404),
    ({}, "/config", 401, 200),
], ids=["metrics", "metrics-auth", "metrics-port", "no-health", "config"])
def test_which_pages_need_a_token(make_gateway, env, path, without_token, with_token):
    """/metrics is public unless METRICS_REQUIRE_AUTH, and leaves the main site with
    METRICS_PORT (its own listener serves it); HEALTH_ENDPOINTS=false makes /healthz an
    ordinary authenticated path; /config always needs a token."""
    gw = make_gateway(**env)
    assert gw.request("GET", path, None).status == without_token
    assert gw.request("GET", path, None, token=make_token()).status == with_token


# -- configuration ---------------------------------------------------------------------------

def test_config_view_needs_a_token_and_redacts_secrets(make_gateway):
    """GET /config answers the effective configuration to an authenticated caller, redacted."""
    gw = make_gateway(JWT_PREVIOUS_SECRETS="old-secret")
    assert gw.request("GET", "/config", None).status == 401
    response = gw.request("GET", "/config", None, token=make_token())
    config = response.json()
    assert response.status == 200 and response.header("cache-control") == "no-store"
    assert config["CUEBOT_ENDPOINT"] == "cuebot.memory:8443"
    assert config["JWT_SECRET"] == config["JWT_PREVIOUS_SECRETS"] == "<redacted>"
    assert "old-secret" not in response.body.decode()
    assert "test-secret" not in response.body.decode()


# -- API description and docs -----------------------------------------------------------------

def test_openapi_is_public_valid_and_complete(gw, catalog):
    """GET /openapi.json needs no token, is the document tests/unit/test_openapi.py validates
    as OpenAPI 3.1 (validating it again here would take seconds), and has every method."""
    response = gw.request("GET", "/openapi.json", None)
    assert response.status == 200 and response.header("content-type") == "application/json"
    assert "Accept-Encoding" in response.header("vary")
    document = response.json()
    assert document == build_openapi(catalog, __version__)
    assert set(document["paths"]) == {m.path for m in catalog}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


JOB = "00000000-0000-0000-0000-000000000001"
HOST = "00000000-0000-0000-0000-000000000005"
SAMPLES = [
    ("/show.ShowInterface/GetShows", "{}"),
    ("/show.ShowInterface/FindShow", '{"name": "testing"}'),
    ("/job.JobInterface/GetJobs", '{"r": {"shows": ["testing"], "include_finished": true}}'),
    ("/job.JobInterface/GetFrames", f'{{"job": {{"id": "{JOB}"}}, "req": {{"limit": 100}}}}'),
    ("/job.JobInterface/GetLayers", f'{{"job": {{"id": "{JOB}"}}}}'),
    ("/job.JobInterface/GetComments", f'{{"job": {{"id": "{JOB}"}}}}'),
    ("/host.HostInterface/GetHosts", "{}"),
    ("/host.HostInterface/GetHost", f'{{"id": "{HOST}"}}'),
    ("/host.ProcInterface/GetProcs", "{}"),
    ("/job.GroupInterface/FindGroup", '{"show": "testing", "name": "default"}'),
    ("/facility.AllocationInterface/GetAll", "{}"),
    ("/show.ShowInterface/GetFilters",
     '{"show": {"id": "00000000-0000-0000-0000-000000000000"}}'),
]


def test_real_replies_match_their_schemas(gw):
    """Replies made by the sandbox Cuebot's handlers from its seed farm (what --sandbox
    serves) validate against the served document, and so does an error."""
    gw.cuebot.serve(seeded_farm())
    schemas = Schemas(gw.request("GET", "/openapi.json", None).json())
    for path, body in SAMPLES:
        response = gw.post(path, body)
        assert response.status == 200, (path, response.body)
        assert response.json() != {}
        pointer = (f"/paths/{path.replace('/', '~1')}/post/responses/200/content/"
                   "application~1json/schema")
        schemas.at(pointer).validate(response.json())
    error = gw.post("/job.JobInterface/GetFrames", '{"job": {"id": "nope"}}')
    assert error.status >= 400
    schemas.at("/components/schemas/Error").validate(error.json())


def test_openapi_is_gzipped_for_clients_that_accept_it(gw):
    """The 1 MB document goes out compressed (made once, in advance)."""
    response = gw.request("GET", "/openapi.json", None, headers={"Accept-Encoding": "gzip"})
    assert response.header("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(response.body))["openapi"].startswith("3.1")
    assert len(response.body) < 200_000


def test_strict_json_is_described_in_the_document(make_gateway):
    """With STRICT_JSON the served request schemas forbid unknown fields."""
    lenient = json.loads(make_gateway().request("GET", "/openapi.json", None).body)
    strict = json.loads(make_gateway(STRICT_JSON="true").request("GET", "/openapi.json", None)
                        .body)
    assert strict != lenient
    assert '"additionalProperties":false' in json.dumps(strict, separators=(",", ":"))


def test_docs_work_offline(gw):
    """/docs serves Swagger UI from the gateway itself: no CDN, assets cacheable and gzipped."""
    page = gw.request("GET", "/docs", None)
    assert page.status == 200 and b"swagger-ui-bundle.js" in page.body
    assert page.header("content-type") == "text/html; charset=utf-8"
    assert b"http://" not in page.body and b"https://" not in page.body
    script = gw.request("GET", "/docs/swagger-ui-bundle.js", None)
    assert script.status == 200 and len(script.body) > 100_000
    assert "max-age" in script.header("cache-control")
    zipped = gw.request("GET", "/docs/swagger-ui-bundle.js", None,
                        headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(zipped.body) == script.body


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs"])
def test_pages_are_named_in_metrics_by_label(gw, path):
    """A page's requests are counted under its own label, never under its raw path."""
    gw.request("GET", path, None)
    exposition = gw.request("GET", "/metrics", None).body.decode()
    label = {"/healthz": "healthz", "/openapi.json": "openapi", "/docs": "docs"}[path]
    assert f'opencue_gateway_requests_total{{code="200",rpc="{label}"}} 1.0' in exposition
