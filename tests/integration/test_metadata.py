"""Metadata across real grpcio (COMPATIBILITY.md section 6), observed at the Cuebot side.

What the gateway forwards and returns is checked in memory (tests/unit/app/test_headers.py);
these two cases keep a real grpcio server in between, which serializes metadata itself:
text and ``-bin`` keys must survive it both ways, and credentials must not reach it.
"""

from __future__ import annotations

import pytest_twisted

from opencue_gateway.metadata import PRINCIPAL_KEY
from tests.conftest import make_token

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
