"""Metadata across real grpcio (COMPATIBILITY.md section 6), observed at the Cuebot side.

What the gateway forwards and returns is checked in memory (tests/unit/app/test_headers.py);
these two cases keep a real grpcio server in between, which serializes metadata itself:
text and ``-bin`` keys must survive it both ways, and credentials must not reach it.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from opencue_gateway.metadata import PRINCIPAL_KEY
from tests.conftest import make_token
from tests.integration.test_http_errors import _exchange

GET_SHOWS = "/show.ShowInterface/GetShows"


@pytest_twisted.ensureDeferred
async def test_metadata_headers_reach_cuebot_and_credentials_do_not(gateway, cuebot):
    """Grpc-Metadata-* arrive as metadata; Authorization and Cookie never reach Cuebot."""
    token = make_token(sub="ann")
    response = await gateway.post(GET_SHOWS, token=token, headers={
        "Grpc-Metadata-Shot": "sh010", "Cookie": "session=abc",
        "Grpc-Metadata-Authorization": f"Bearer {token}", "Grpc-Metadata-Cookie": "x=1",
        "X-Forwarded-For": "10.1.1.1",
    })
    assert response.status == 200
    metadata = cuebot.last().metadata
    assert metadata["shot"] == "sh010"
    assert metadata[PRINCIPAL_KEY] == "ann"
    assert metadata["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert metadata["x-forwarded-host"].startswith("127.0.0.1:")
    assert "authorization" not in metadata and "cookie" not in metadata
    assert token not in repr(metadata)


@pytest_twisted.ensureDeferred
async def test_cuebot_metadata_comes_back_as_headers(gateway, cuebot):
    """Cuebot's response metadata comes back as Grpc-Metadata-* headers (binary as base64)."""
    cuebot.behave(GET_SHOWS, initial_metadata=(("x-cuebot-host", "cb1"),),
                  trailing_metadata=(("x-elapsed-bin", b"\x01\x02"),))
    response = await gateway.post(GET_SHOWS)
    assert response.header("grpc-metadata-x-cuebot-host") == "cb1"
    assert response.header("grpc-trailer-x-elapsed-bin") == "AQI="


@pytest.mark.parametrize(("header", "named"), [
    (b"X-Forwarded-For: 10.0.0.1\x01", "the X-Forwarded-For header"),
    (b"X-Forwarded-For: caf\xc3\xa9", "the X-Forwarded-For header"),
    (b"X-Forwarded-For: a\tb", "the X-Forwarded-For header"),
    (b"Grpc-Metadata-Note: \x1b[31m", "Grpc-Metadata-note"),
])
@pytest_twisted.ensureDeferred
async def test_headers_metadata_cannot_carry_are_400_not_500(gateway, cuebot, header, named):
    """Client headers grpcio would reject as metadata are a 400 naming them, never a 500."""
    request = (b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: gw\r\n"
               b"Authorization: Bearer " + make_token().encode() + b"\r\n" + header +
               b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    status_line, _, body = await deferToThread(_exchange, gateway.port,
                                               request)
    assert status_line.startswith("HTTP/1.1 400 "), (status_line, body)
    assert json.loads(body)["message"] == (
        f"{named} holds characters gRPC metadata cannot carry (only printable ASCII)")
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_a_non_ascii_host_or_tracestate_never_fails_the_call(gateway, cuebot):
    """A UTF-8 Host is a 400 naming it; a tracestate gRPC cannot carry is dropped (200)."""
    token = make_token().encode()
    port = gateway.port
    host = (b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: caf\xc3\xa9\r\n"
            b"Authorization: Bearer " + token + b"\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}")
    status_line, _, body = await deferToThread(_exchange, port, host)
    assert status_line.startswith("HTTP/1.1 400 ")
    assert json.loads(body)["message"].startswith("the Host header holds characters")
    response = await gateway.post(GET_SHOWS, headers={
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=café"})
    assert response.status == 200
    assert "tracestate" not in cuebot.last().metadata
