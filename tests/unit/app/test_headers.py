"""Headers both ways: CORS, request ids, metadata to and from Cuebot, trace context, gzip, the
ignored-fields report and STRICT_JSON."""

from __future__ import annotations

import gzip
import json

import pytest
from opencue_proto import job_pb2

from opencue_gateway.metadata import PRINCIPAL_KEY, REQUEST_ID_KEY
from tests.conftest import assert_error, make_token
from tests.unit.app.support import GET_FRAMES, GET_SHOWS, TRACEPARENT

PAGE = "http://127.0.0.1:9999"
SET_MIN_CORES = "/group.GroupInterface/SetMinCores"


# -- CORS ------------------------------------------------------------------------------------

def _preflight(gw, origin, requested_headers="authorization, content-type"):
    return gw.request("OPTIONS", GET_SHOWS, None, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": requested_headers})


def test_preflight_is_answered_without_a_token(make_gateway):
    """A preflight gets 204 and the CORS headers before any authentication."""
    gw = make_gateway(CORS_ORIGINS=PAGE)
    response = _preflight(gw, PAGE)
    assert response.status == 204 and response.body == b""
    assert response.header("access-control-allow-origin") == PAGE
    assert response.header("access-control-allow-headers") == "authorization, content-type"
    assert response.header("access-control-max-age") == "600"
    assert "POST" in response.header("access-control-allow-methods")
    assert response.header("access-control-allow-credentials") is None
    assert len(response.header("x-request-id")) == 32
    assert gw.cuebot.received == []


def test_listed_cors_headers_always_allow_authorization(make_gateway):
    """With CORS_HEADERS listed, the preflight allows them plus Authorization and Content-Type."""
    gw = make_gateway(CORS_ORIGINS=PAGE, CORS_HEADERS="X-Requested-With")
    response = _preflight(gw, PAGE, "x-requested-with")
    assert response.header("access-control-allow-headers") == (
        "Authorization, Content-Type, X-Requested-With")


def test_disallowed_origin_gets_no_cors_headers(make_gateway):
    """An origin not in CORS_ORIGINS gets no Access-Control-* headers, preflight or not."""
    gw = make_gateway(CORS_ORIGINS=PAGE)
    evil = "http://evil.example"
    preflight = _preflight(gw, evil)
    actual = gw.post(GET_SHOWS, headers={"Origin": evil})
    for response in (preflight, actual):
        assert not [h for h in response.headers if h.startswith("access-control-")]
        assert "Origin" in response.header("vary")
    assert preflight.status == 204 and actual.status == 200


def test_an_options_without_a_requested_method_is_not_a_preflight(make_gateway):
    """OPTIONS without Access-Control-Request-Method goes the normal way (needs a token)."""
    gw = make_gateway(CORS_ORIGINS=PAGE)
    response = gw.request("OPTIONS", GET_SHOWS, None, headers={"Origin": PAGE})
    assert_error(response, 401, 16, "missing Authorization header")
    assert response.header("access-control-allow-origin") == PAGE


def test_actual_response_names_origin_and_exposes_headers(make_gateway):
    """Allowed origins get ACAO, Vary: Origin, and our headers (with Cuebot's) exposed."""
    gw = make_gateway(CORS_ORIGINS=f"{PAGE},http://x")
    gw.cuebot.behave(GET_SHOWS, initial_metadata=(("x-cuebot", "1"),),
                     trailing_metadata=(("x-took", "5ms"),))
    response = gw.post(GET_SHOWS, headers={"Origin": PAGE})
    assert response.header("access-control-allow-origin") == PAGE
    assert "Origin" in ", ".join(response.headers["vary"])
    exposed = response.header("access-control-expose-headers").lower()
    assert "opencue-gateway-ignored-fields" in exposed and "x-request-id" in exposed
    assert "grpc-metadata-x-cuebot" in exposed and "grpc-trailer-x-took" in exposed
    unauthenticated = gw.request("POST", GET_SHOWS, headers={"Origin": PAGE})
    assert unauthenticated.status == 401
    assert unauthenticated.header("access-control-allow-origin") == PAGE
    assert "grpc-" not in unauthenticated.header("access-control-expose-headers").lower()


def test_any_origin_by_default(gw):
    """CORS_ORIGINS defaults to *: any page may read answers (bearer tokens need no cookies)."""
    response = gw.post(GET_SHOWS, headers={"Origin": PAGE})
    assert response.header("access-control-allow-origin") == "*"
    assert response.header("access-control-allow-credentials") is None


def test_empty_cors_origins_turns_cors_off(make_gateway):
    """CORS_ORIGINS empty: no Access-Control-* headers, and an OPTIONS is not a preflight."""
    gw = make_gateway(CORS_ORIGINS="")
    response = gw.post(GET_SHOWS, headers={"Origin": PAGE})
    assert response.status == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert _preflight(gw, PAGE).status == 401


# -- request ids -----------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "kept"), [
    ("job-42.retry", True), ("a/b:c+d=e_f", True), ("x" * 128, True),
    ("x" * 129, False), ("two words", False), ("naïve", False), (None, False),
])
def test_request_ids_are_echoed_generated_and_forwarded(gw, given, kept):
    """X-Request-Id is kept when short and plain, generated otherwise, echoed, and sent to
    Cuebot."""
    headers = {"X-Request-Id": given} if given is not None else None
    response = gw.post(GET_SHOWS, headers=headers)
    answered = response.header("x-request-id")
    assert answered == given if kept else len(answered) == 32 and answered != given
    assert gw.cuebot.received[0].metadata[REQUEST_ID_KEY] == answered


def test_errors_carry_a_request_id_too(gw):
    """A 401 still names its request id."""
    assert len(gw.request("POST", GET_SHOWS).header("x-request-id")) == 32


# -- metadata --------------------------------------------------------------------------------

def test_metadata_headers_reach_cuebot_and_credentials_do_not(gw):
    """Grpc-Metadata-* arrive as metadata; Authorization and Cookie never reach Cuebot."""
    token = make_token(sub="ann")
    response = gw.post(GET_SHOWS, token=token, headers={
        "Grpc-Metadata-Shot": "sh010", "Cookie": "session=abc",
        "Grpc-Metadata-Authorization": f"Bearer {token}", "Grpc-Metadata-Cookie": "x=1",
        "Grpc-Metadata-Grpc-Internal": "no", "Grpc-Metadata-Trace-Bin": "AQI=",
        "X-Forwarded-For": "10.1.1.1",
    })
    assert response.status == 200
    metadata = gw.cuebot.received[0].metadata
    assert metadata["shot"] == "sh010"
    assert metadata["trace-bin"] == b"\x01\x02"
    assert metadata[PRINCIPAL_KEY] == "ann"
    assert metadata["x-forwarded-for"] == "10.1.1.1, 10.0.0.5"
    assert metadata["x-forwarded-host"] == "gateway"
    assert "authorization" not in metadata and "cookie" not in metadata
    assert "grpc-internal" not in metadata
    assert token not in repr(metadata)


def test_a_request_without_host_sends_no_forwarded_host(gw):
    """An HTTP/1.0 request without Host is served; Cuebot gets no X-Forwarded-Host."""
    response = gw.raw(f"POST {GET_SHOWS} HTTP/1.0\r\nAuthorization: Bearer {make_token()}\r\n"
                      "Content-Length: 2\r\n\r\n{}".encode()).response()
    assert response.status == 200
    assert "x-forwarded-host" not in gw.cuebot.received[0].metadata


@pytest.mark.parametrize(("name", "value", "words"), [
    ("Grpc-Metadata-Bad*Key", "v", "invalid Grpc-Metadata header key"),
    ("Grpc-Metadata-Blob-Bin", "not base64!", "must hold base64"),
    ("Grpc-Metadata-Note", "tab\there", "characters gRPC metadata cannot carry"),
], ids=["key", "binary", "value"])
def test_unusable_metadata_headers_are_400(gw, name, value, words):
    """Metadata gRPC cannot carry is a 400 naming the header, and Cuebot is not called."""
    response = gw.raw(
        f"POST {GET_SHOWS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {make_token()}\r\n"
        f"{name}: {value}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode()
    ).response()
    assert_error(response, 400, 3, words)
    assert gw.cuebot.received == []


def test_cuebot_metadata_comes_back_as_headers(gw):
    """Cuebot's response metadata comes back as Grpc-Metadata-* headers (binary as base64)."""
    gw.cuebot.behave(GET_SHOWS, initial_metadata=(("x-cuebot-host", "cb1"),),
                     trailing_metadata=(("x-elapsed-bin", b"\x01\x02"), ("x-bad", "a\nb")))
    response = gw.post(GET_SHOWS)
    assert response.header("grpc-metadata-x-cuebot-host") == "cb1"
    assert response.header("grpc-trailer-x-elapsed-bin") == "AQI="
    assert response.header("grpc-trailer-x-bad") is None


def test_traceparent_reaches_cuebot(gw):
    """A client's W3C trace context is forwarded to Cuebot; a malformed one is not."""
    gw.post(GET_SHOWS, headers={"traceparent": TRACEPARENT, "tracestate": "a=1"})
    assert gw.cuebot.received[-1].metadata["traceparent"] == TRACEPARENT
    assert gw.cuebot.received[-1].metadata["tracestate"] == "a=1"
    gw.post(GET_SHOWS, headers={"traceparent": "garbage", "tracestate": "a=1"})
    assert "traceparent" not in gw.cuebot.received[-1].metadata
    assert "tracestate" not in gw.cuebot.received[-1].metadata


# -- the reply -------------------------------------------------------------------------------

def big_frames_reply() -> job_pb2.JobGetFramesResponse:
    frames = [job_pb2.Frame(id=f"frame-{n}", name=f"{n:04d}-render", number=n, state=2)
              for n in range(200)]
    return job_pb2.JobGetFramesResponse(frames=job_pb2.FrameSeq(frames=frames))


def test_large_replies_are_gzipped_when_accepted(gw):
    """Replies over 1 KiB are gzipped for clients that accept it, and only for them."""
    gw.cuebot.behave(GET_FRAMES, reply=big_frames_reply())
    zipped = gw.post(GET_FRAMES, headers={"Accept-Encoding": "gzip"})
    assert zipped.header("content-encoding") == "gzip"
    assert "Accept-Encoding" in zipped.header("vary")
    frames = json.loads(gzip.decompress(zipped.body))["frames"]["frames"]
    assert len(frames) == 200
    plain = gw.post(GET_FRAMES)
    assert plain.header("content-encoding") is None
    assert json.loads(plain.body) == json.loads(gzip.decompress(zipped.body))
    refused = gw.post(GET_FRAMES, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.header("content-encoding") is None
    small = gw.post(GET_SHOWS, headers={"Accept-Encoding": "gzip"})
    assert small.header("content-encoding") is None


def test_a_reply_declares_its_type_and_length(gw):
    """A success is application/json with an exact Content-Length (no chunking)."""
    response = gw.raw(
        f"POST {GET_SHOWS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {make_token()}\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}".encode()).response()
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.header("content-length") == str(len(response.body))
    assert response.header("transfer-encoding") is None


def test_ignored_fields_are_reported_in_a_header(gw):
    """Dropped request fields are listed in Opencue-Gateway-Ignored-Fields."""
    response = gw.post(SET_MIN_CORES, '{"group": {"id": "g"}, "cores": 10}')
    assert response.status == 200
    assert response.header("opencue-gateway-ignored-fields") == "cores"
    assert gw.cuebot.received[0].request.group.id == "g"
    assert gw.post(SET_MIN_CORES, '{"group": {"id": "g"}}').header(
        "opencue-gateway-ignored-fields") is None


def test_strict_json_rejects_what_would_be_ignored(make_gateway):
    """With STRICT_JSON=true the same body is a 400 naming the field, and Cuebot is not called."""
    gw = make_gateway(STRICT_JSON="true")
    response = gw.post(SET_MIN_CORES, '{"group": {"id": "g"}, "cores": 10}')
    assert_error(response, 400, 3, "'cores'")
    assert gw.cuebot.received == []
