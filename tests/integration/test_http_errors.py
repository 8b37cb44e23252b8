"""Bad input and failing Cuebots get the documented status and a JSON error body, never a 5xx
traceback: each case over a real socket."""

from __future__ import annotations

import json
import socket
import time

import grpc
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

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
    ('{"name": "x"}'.encode("utf-16"), "not UTF-8 text (invalid byte at offset 0)"),
    ('{"name": "x"}'.encode("utf-32-le"), "not valid JSON"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
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
    response = await gateway.post(GET_SHOWS, b'{"x": "' + b"a" * 5000 + b'"}',
                                  headers={"Origin": "http://dashboard.example"})
    assert_error(response, 413, 8, "larger than the 1024-byte limit")
    # A browser can read why (CORS), and the answer names its request id.
    assert response.header("access-control-allow-origin") == "*"
    assert len(response.header("x-request-id")) == 32
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
    assert_error(response, 400, 3, "the URL is not valid UTF-8")


@pytest_twisted.ensureDeferred
async def test_non_utf8_host_header_is_a_json_400_naming_the_host(gateway):
    port = gateway.port
    status_line, _, body = await deferToThread(
        _exchange, port, b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: \xff\xfe\r\n"
                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert status_line.startswith("HTTP/1.1 400 ")
    assert json.loads(body)["message"] == "the Host header is not valid UTF-8"


def _exchange(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send raw bytes; the status line, headers and body the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)}
    return status_line, headers, body


POST = b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(("request_bytes", "status", "code", "words"), [
    (b"POST /" + b"A" * 17000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, 8,
     "the request line (method and URL) is longer than 16384 bytes"),
    (POST + b"X-Big: " + b"a" * 17000 + b"\r\n\r\n", 431, 8,
     "a header line is longer than 16384 bytes"),
    (POST + b"Content-Length: abc\r\n\r\n{}", 400, 3, "malformed HTTP request"),
    (POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, 3,
     "malformed HTTP request"),
    (POST + b"".join(b"X-%d: 1\r\n" % i for i in range(501)) + b"\r\n", 400, 3,
     "or 500 lines"),
    (b"POST /show.ShowInterface/GetShows\r\n\r\n", 400, 3, "malformed HTTP request"),
], ids=["long-url", "long-header", "bad-length", "bad-chunk", "many-headers", "no-version"])
@pytest_twisted.ensureDeferred
async def test_requests_twisted_cannot_parse_get_json_errors(gateway, request_bytes, status,
                                                             code, words):
    """Twisted's own answers (a bare status line, or none) become the JSON error shape."""
    port = gateway.port
    status_line, headers, body = await deferToThread(_exchange, port, request_bytes)
    assert status_line.startswith(f"HTTP/1.1 {status} "), status_line
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    answer = json.loads(body)
    assert answer["code"] == code and words in answer["message"], answer
    assert (await gateway.post(GET_SHOWS)).status == 200


@pytest_twisted.ensureDeferred
async def test_absolute_form_request_targets_are_routed(gateway, cuebot):
    """``POST http://host/pkg.Svc/Method`` (what proxy-configured clients send) is served."""
    port = gateway.port
    request = (f"POST http://127.0.0.1:{port}/show.ShowInterface/GetShows HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {make_token()}\r\n"
               "Content-Length: 2\r\nConnection: close\r\n\r\n{}").encode()
    status_line, _, body = await deferToThread(_exchange, port, request)
    assert status_line.startswith("HTTP/1.1 200 "), (status_line, body)
    assert "shows" in json.loads(body)
    assert cuebot.last().path == GET_SHOWS
