"""Failures at Cuebot and inside the gateway: the documented status and JSON body, never a
traceback (COMPATIBILITY.md section 4)."""

from __future__ import annotations

import re

import grpc
import pytest

from tests.conftest import assert_error, make_token
from tests.unit.app.support import (
    FIND_SHOW,
    GET_SHOWS,
    PAUSE,
    assert_cut_after_partial,
    half_answered,
)

ENDPOINT = "cuebot.memory:8443"
CODES = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]
STATUS = {"CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
          "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
          "UNAUTHENTICATED": 401, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
          "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
          "UNAVAILABLE": 503, "DATA_LOSS": 500}


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
def test_each_cuebot_status_maps_to_http(gw, code):
    """A Cuebot error with each gRPC code becomes its HTTP status, with Cuebot's text."""
    gw.cuebot.behave(GET_SHOWS, error=(code, f"Cuebot says {code.name}"))
    response = gw.post(GET_SHOWS)
    assert_error(response, STATUS[code.name], code.value[0], f"Cuebot says {code.name}")


def test_cuebot_not_found_text_passes_through(gw):
    """Cuebot's own NOT_FOUND message reaches the client unchanged."""
    gw.cuebot.behave(FIND_SHOW, error=(grpc.StatusCode.NOT_FOUND, "Failed to find show nope"))
    body = assert_error(gw.post(FIND_SHOW, '{"name":"nope"}'), 404, 5, "Failed to find show nope")
    assert body["message"] == "Failed to find show nope"


def test_an_error_without_text_is_named_by_its_code(gw):
    """A Cuebot error with empty details says its code rather than nothing."""
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.ABORTED, ""))
    body = assert_error(gw.post(GET_SHOWS), 409, 10, "ABORTED")
    assert body["message"] == "ABORTED"


def test_cuebot_error_metadata_comes_back_as_headers(gw):
    """The metadata of a failed call comes back as Grpc-Metadata-*/Grpc-Trailer-* headers."""
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.FAILED_PRECONDITION, "show is inactive"),
                     initial_metadata=(("x-cuebot-host", "cb1"),),
                     trailing_metadata=(("x-reason-bin", b"\x01\x02"),))
    response = gw.post(GET_SHOWS)
    assert_error(response, 400, 9, "show is inactive")
    assert response.header("grpc-metadata-x-cuebot-host") == "cb1"
    assert response.header("grpc-trailer-x-reason-bin") == "AQI="


@pytest.mark.parametrize("details", ["failed to connect to all addresses; last error: "
                                     "UNKNOWN: ipv4:127.0.0.1:9: Connection refused", ""])
def test_cuebot_unreachable_is_503_naming_the_endpoint(gw, details):
    """A transport failure is a 503 naming the endpoint, not grpc's C-core text."""
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.UNAVAILABLE, details))
    body = assert_error(gw.post(GET_SHOWS), 503, 14, f"Cuebot at {ENDPOINT} could not be reached")
    assert "ipv4" not in body["message"]


def test_cuebot_down_is_503_naming_the_endpoint(gw):
    """When no Cuebot answers at all, every call is a 503 naming the endpoint."""
    gw.cuebot.reachable = False
    assert_error(gw.post(GET_SHOWS), 503, 14, f"Cuebot at {ENDPOINT} could not be reached")


def test_cuebots_own_unavailable_passes_through(gw):
    """An UNAVAILABLE that Cuebot itself answered keeps Cuebot's words."""
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.UNAVAILABLE, "dispatcher is paused"))
    body = assert_error(gw.post(GET_SHOWS), 503, 14, "dispatcher is paused")
    assert "could not be reached" not in body["message"]


def test_slow_cuebot_is_504_at_the_deadline(make_gateway):
    """A Cuebot slower than GRPC_TIMEOUT gets 504 exactly at the deadline, not before."""
    gw = make_gateway(GRPC_TIMEOUT="300ms")
    gw.cuebot.behave(GET_SHOWS, delay=5)
    answered = gw.send("POST", GET_SHOWS, token=make_token())
    gw.advance(0.2)
    assert not gw.answered(answered)
    gw.advance(0.1)
    assert_error(gw.result(answered), 504, 4, f"Cuebot at {ENDPOINT} did not answer within 0.3s")


def test_cuebots_own_deadline_message_passes_through(gw):
    """A DEADLINE_EXCEEDED with Cuebot's own words (its own downstream timed out) keeps them."""
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.DEADLINE_EXCEEDED, "db query timed out"))
    body = assert_error(gw.post(GET_SHOWS), 504, 4, "db query timed out")
    assert ENDPOINT not in body["message"]


def test_grpc_timeout_header_shortens_the_deadline(gw):
    """A shorter Grpc-Timeout header wins over GRPC_TIMEOUT."""
    gw.cuebot.behave(GET_SHOWS, delay=5)
    answered = gw.send("POST", GET_SHOWS, token=make_token(), headers={"Grpc-Timeout": "200m"})
    gw.advance(0.2)
    assert_error(gw.result(answered), 504, 4, "did not answer within 0.2s")


def test_a_longer_grpc_timeout_header_does_not_extend_the_deadline(make_gateway):
    """Grpc-Timeout above GRPC_TIMEOUT is cut to GRPC_TIMEOUT."""
    gw = make_gateway(GRPC_TIMEOUT="1s")
    gw.cuebot.behave(GET_SHOWS, delay=5)
    answered = gw.send("POST", GET_SHOWS, token=make_token(), headers={"Grpc-Timeout": "10S"})
    gw.advance(1.0)
    assert_error(gw.result(answered), 504, 4, "did not answer within 1s")


def test_a_bad_grpc_timeout_header_is_400(gw):
    """A Grpc-Timeout that is not gRPC's wire format is 400, before Cuebot is called."""
    response = gw.post(GET_SHOWS, headers={"Grpc-Timeout": "soon"})
    assert_error(response, 400, 3, "invalid Grpc-Timeout header")
    assert gw.cuebot.received == []


def test_a_reply_over_the_receive_limit_says_how_to_narrow_it(gw):
    """grpc's "message larger than max" becomes advice naming GRPC_MAX_RECV_MSG_MB."""
    gw.cuebot.behave(GET_SHOWS, error=(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Received message larger than max (5000000 vs. 4194304)"))
    body = assert_error(gw.post(GET_SHOWS), 429, 8, "larger than GRPC_MAX_RECV_MSG_MB allows")
    assert "5000000" not in body["message"]


def test_full_queue_answers_503_at_once(make_gateway):
    """Past MAX_CONCURRENT_STREAMS + MAX_QUEUED_REQUESTS, requests get 503 without waiting."""
    gw = make_gateway(MAX_CONCURRENT_STREAMS="1", MAX_QUEUED_REQUESTS="0", FAN_IN="false")
    gw.cuebot.behave(GET_SHOWS, delay=1.0)
    slow = gw.send("POST", GET_SHOWS, token=make_token())
    gw.settle()
    assert_error(gw.post(FIND_SHOW, '{"name": "x"}'), 503, 14, "at capacity")
    assert not gw.answered(slow)
    gw.advance(1.0)
    assert gw.result(slow).status == 200
    assert gw.post(FIND_SHOW, '{"name": "x"}').status == 200


def test_a_stopping_gateway_answers_503(gw):
    """Once the Cuebot channel is closed (the gateway is stopping), calls get 503."""
    gw.gateway.cuebot.stop()
    assert_error(gw.post(GET_SHOWS), 503, 14, "not connected to Cuebot (stopping)")


def _broken_reply(call: int) -> object:
    raise RuntimeError("boom: secret-looking internals /etc/shadow")


@pytest.mark.parametrize("path", [GET_SHOWS, PAUSE], ids=["read", "mutation"])
def test_an_unexpected_exception_is_a_500_with_an_incident_id(gw, captured_logs, path):
    """Anything unforeseen is a 500 with fixed text and an incident id, whose log entry has
    the traceback; the exception's own text never reaches the client."""
    gw.cuebot.behave(path, reply_for=_broken_reply)
    body = assert_error(gw.post(path), 500, 13, "internal gateway error (incident ")
    incident = re.search(r"incident ([0-9a-f]{12})\)", body["message"]).group(1)
    assert "boom" not in body["message"] and "shadow" not in body["message"]
    logged = [e for e in captured_logs if e.get("incident") == incident]
    assert len(logged) == 1
    assert logged[0]["log_failure"].check(RuntimeError)


def test_a_failure_after_the_answer_started_cuts_the_connection(gw):
    """When half a response is already out, a failure aborts the connection instead of
    writing a second response into the same stream."""
    gw.cuebot.behave(GET_SHOWS, delay=1.0, error=(grpc.StatusCode.INTERNAL, "late failure"))
    client = half_answered(gw, GET_SHOWS)
    gw.advance(1.0)
    assert_cut_after_partial(client)
    assert b"late failure" not in client.received
