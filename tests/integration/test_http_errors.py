"""Bad input and failing Cuebots get the documented status and a JSON error body, never a 5xx
traceback: each case over a real socket."""

from __future__ import annotations

import time

import grpc
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

from tests.conftest import make_token

GET_SHOWS = "/show.ShowInterface/GetShows"
GET_FRAMES = "/job.JobInterface/GetFrames"


def assert_error(response, status: int, code: int, words: str) -> dict:
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


CODES = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]
STATUS = {"CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
          "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
          "UNAUTHENTICATED": 401, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
          "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
          "UNAVAILABLE": 503, "DATA_LOSS": 500}


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
@pytest_twisted.ensureDeferred
async def test_each_cuebot_status_maps_to_http(gateway, cuebot, code):
    """A Cuebot error with each gRPC code becomes its HTTP status, with Cuebot's text."""
    cuebot.behave(GET_SHOWS, error=(code, f"Cuebot says {code.name}"))
    response = await gateway.post(GET_SHOWS)
    assert_error(response, STATUS[code.name], code.value[0], f"Cuebot says {code.name}")


@pytest_twisted.ensureDeferred
async def test_cuebot_not_found_text_passes_through(gateway, cuebot):
    """Cuebot's own NOT_FOUND message reaches the client unchanged."""
    cuebot.behave("/show.ShowInterface/FindShow",
                  error=(grpc.StatusCode.NOT_FOUND, "Failed to find show nope"))
    response = await gateway.post("/show.ShowInterface/FindShow", '{"name":"nope"}')
    assert_error(response, 404, 5, "Failed to find show nope")


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, got an array"),
    (b'{"job": {"id": 7}}', "field 'job.id': expected a string, got a number"),
    (b'{"req": {"page": "first"}}', "field 'req.page': expected a 32-bit integer"),
])
@pytest_twisted.ensureDeferred
async def test_bad_bodies_are_400(gateway, cuebot, body, words):
    """Malformed JSON, a non-object body and wrong field types are 400 naming the field."""
    response = await gateway.post(GET_FRAMES, body)
    assert_error(response, 400, 3, words)
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_huge_body_is_413(start_gateway, cuebot):
    """A body over MAX_REQUEST_BYTES is refused with 413 before Cuebot is called."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, MAX_REQUEST_BYTES="1KiB")
    response = await gateway.post(GET_SHOWS, b'{"x": "' + b"a" * 5000 + b'"}')
    assert_error(response, 413, 8, "larger than the 1024-byte limit")
    small = await gateway.post(GET_SHOWS, b"{}")
    assert small.status == 200
    assert len(cuebot.received) == 1


@pytest_twisted.ensureDeferred
async def test_unknown_method_is_404_with_suggestions(gateway):
    """A method the protos lack is 404 naming the nearest real methods."""
    response = await gateway.post("/layer.LayerInterface/Kill", "{}")
    assert_error(response, 404, 5, "did you mean /job.LayerInterface/KillFrames")


@pytest_twisted.ensureDeferred
async def test_get_on_a_method_is_405(gateway, cuebot):
    """Only POST reaches Cuebot; other methods get 405 with Allow: POST."""
    response = await gateway.request("GET", GET_SHOWS, None, token=make_token())
    assert_error(response, 405, 12, "only answers POST")
    assert response.header("allow") == "POST"
    assert not cuebot.received


@pytest.mark.parametrize(("token", "words", "challenge"), [
    (None, "missing Authorization header", 'Bearer realm="opencue-gateway"'),
    (make_token(exp=int(time.time()) - 120), "the token has expired", "invalid_token"),
    (make_token(secret="forged" * 8), "the token signature is invalid", "invalid_token"),
])
@pytest_twisted.ensureDeferred
async def test_bad_tokens_are_401(gateway, cuebot, token, words, challenge):
    """Missing, expired and forged tokens are 401 with an RFC 6750 challenge."""
    response = await gateway.request("POST", GET_SHOWS, b"{}", token=token)
    assert_error(response, 401, 16, words)
    assert challenge in response.header("www-authenticate")
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_unknown_path_without_token_is_401(gateway):
    """Authentication comes before routing: the README's health probe of / gets 401."""
    response = await gateway.request("GET", "/", None)
    assert_error(response, 401, 16, "missing Authorization header")


@pytest_twisted.ensureDeferred
async def test_cuebot_down_is_503_naming_the_endpoint(start_gateway):
    """An unreachable Cuebot is a 503 naming the endpoint, not grpc's C-core text."""
    gateway = start_gateway(CUEBOT_ENDPOINT="127.0.0.1:9")
    response = await gateway.post(GET_SHOWS)
    body = assert_error(response, 503, 14, "Cuebot at 127.0.0.1:9 could not be reached")
    assert "ipv4" not in body["message"]


@pytest_twisted.ensureDeferred
async def test_slow_cuebot_is_504_after_the_deadline(start_gateway, cuebot):
    """A Cuebot slower than GRPC_TIMEOUT gets 504 at the deadline, not a hung request."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, GRPC_TIMEOUT="300ms")
    cuebot.behave(GET_SHOWS, delay=5)
    started = time.monotonic()
    response = await gateway.post(GET_SHOWS)
    assert_error(response, 504, 4, "did not answer within 0.3s")
    assert time.monotonic() - started < 3


@pytest_twisted.ensureDeferred
async def test_grpc_timeout_header_shortens_the_deadline(gateway, cuebot):
    """A shorter Grpc-Timeout header wins over GRPC_TIMEOUT."""
    cuebot.behave(GET_SHOWS, delay=5)
    response = await gateway.post(GET_SHOWS, headers={"Grpc-Timeout": "200m"})
    assert_error(response, 504, 4, "did not answer within 0.2s")


@pytest_twisted.ensureDeferred
async def test_full_queue_answers_503_at_once(start_gateway, cuebot):
    """Past MAX_CONCURRENT_STREAMS + MAX_QUEUED_REQUESTS, requests get 503 without waiting."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, MAX_CONCURRENT_STREAMS="1",
                            MAX_QUEUED_REQUESTS="0")
    cuebot.behave(GET_SHOWS, delay=1.0)
    slow = ensureDeferred(gateway.post(GET_SHOWS))
    await deferLater(reactor, 0.2, lambda: None)
    started = time.monotonic()
    rejected = await gateway.post("/show.ShowInterface/FindShow", '{"name": "x"}')
    assert time.monotonic() - started < 0.5
    assert_error(rejected, 503, 14, "at capacity")
    assert (await slow).status == 200


@pytest_twisted.ensureDeferred
async def test_readme_wrong_shapes_never_500(gateway, cuebot):
    """The README's wrongly shaped bodies get 400 or 200-with-ignored-fields, never 5xx."""
    cases = [
        ("/layer.LayerInterface/FindLayer", '{"job": {"id": "j"}, "layer": "l"}', 400, None),
        ("/group.GroupInterface/FindGroup", '{"show": {"name": "testing"}, "name": "g"}', 400,
         None),
        ("/owner.OwnerInterface/TakeOwnership",
         '{"host": {"id": "h"}, "owner": {"name": "o"}}', 400, None),
        ("/group.GroupInterface/SetMinCores", '{"group": {"id": "g"}, "cores": 10}', 200,
         "cores"),
        ("/job.JobInterface/GetJobs", '{"r": {"show": {"name": "testing"}}}', 200, "r.show"),
    ]
    for path, body, status, ignored in cases:
        response = await gateway.post(path, body)
        assert response.status == status, (path, response.body)
        if ignored:
            assert response.header("Opencue-Gateway-Ignored-Fields") == ignored


@pytest_twisted.ensureDeferred
async def test_non_utf8_url_is_a_json_400(gateway):
    """A URL that is not UTF-8 gets the JSON error shape, like every other failure."""
    response = await gateway.post("/show.ShowInterface/Get%FFShows")
    assert_error(response, 400, 3, "not valid UTF-8")
