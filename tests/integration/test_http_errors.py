"""Errors only a real socket or real grpcio can show: requests Twisted cannot parse, and the
words grpcio itself uses for an unreachable or slow Cuebot.

Every other error (bad bodies, tokens, routing, each Cuebot status, limits) is checked in
memory through the same HTTP parser (tests/unit/app/).
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.conftest import assert_error

GET_SHOWS = "/show.ShowInterface/GetShows"


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
