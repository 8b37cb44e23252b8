"""Metadata across the gateway (COMPATIBILITY.md section 6), observed at the Cuebot side."""

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


@pytest_twisted.ensureDeferred
async def test_ignored_fields_are_reported_in_a_header(gateway, cuebot):
    """Dropped request fields are listed in Opencue-Gateway-Ignored-Fields."""
    response = await gateway.post("/group.GroupInterface/SetMinCores",
                                  '{"group": {"id": "g"}, "cores": 10}')
    assert response.status == 200
    assert response.header("opencue-gateway-ignored-fields") == "cores"
    assert cuebot.last().request.group.id == "g"


@pytest_twisted.ensureDeferred
async def test_strict_json_rejects_what_would_be_ignored(start_gateway, cuebot):
    """With STRICT_JSON=true the same body is a 400 naming the field, and Cuebot is not called."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, STRICT_JSON="true")
    response = await gateway.post("/group.GroupInterface/SetMinCores",
                                  '{"group": {"id": "g"}, "cores": 10}')
    assert response.status == 400
    assert "'cores'" in response.json()["message"]
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_form_encoded_and_untyped_bodies_are_json(gateway, cuebot):
    """curl's default form content type and text/plain bodies are read as JSON."""
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = await gateway.post("/show.ShowInterface/FindShow", '{"name": "testing"}',
                                      headers={"Content-Type": content_type})
        assert response.status == 200
        assert cuebot.last().request.name == "testing"
