"""Metrics, the access log and tracing, checked after known traffic in memory."""

from __future__ import annotations

import grpc
from twisted.logger import formatEvent

from tests.conftest import SECRET, make_token
from tests.unit.app.support import (
    GET_SHOWS,
    KILL,
    TRACEPARENT,
    RecordingTracing,
    access_records,
    scrape,
)

RPC = "show.ShowInterface/GetShows"


def test_metrics_after_known_traffic(gw):
    """Three GetShows, one unknown method and one 401 show up with the right labels."""
    for _ in range(3):
        assert gw.post(GET_SHOWS).status == 200
    assert gw.post("/show.ShowInterface/NoSuchMethod").status == 404
    assert gw.request("POST", GET_SHOWS).status == 401
    response = gw.request("GET", "/metrics", None)
    assert response.status == 200 and response.header("content-type").startswith("text/plain")
    values = scrape(gw)
    assert values[("opencue_gateway_requests_total", (("code", "200"), ("rpc", RPC)))] == 3
    assert values[("opencue_gateway_requests_total", (("code", "404"), ("rpc", "unknown")))] == 1
    assert values[("opencue_gateway_requests_total", (("code", "401"), ("rpc", "unknown")))] == 1
    assert values[("opencue_gateway_request_duration_seconds_count", (("rpc", RPC),))] == 3
    assert values[("opencue_gateway_cuebot_call_duration_seconds_count",
                   (("grpc_code", "OK"), ("rpc", RPC)))] == 3
    assert values[("opencue_gateway_auth_failures_total", (("reason", "missing"),))] == 1
    assert values[("opencue_gateway_requests_in_flight", ())] == 1  # the scrape itself
    assert values[("opencue_gateway_pool_queue_depth", ())] == 0
    assert values[("opencue_gateway_cuebot_channel_state",
                   (("endpoint", "cuebot.memory:8443"), ("state", "READY")))] == 1
    assert values[("opencue_gateway_cuebot_calls_total",
                   (("endpoint", "cuebot.memory:8443"), ("grpc_code", "OK")))] == 3
    assert values[("opencue_gateway_response_body_bytes_count", (("rpc", RPC),))] == 3
    assert values[("opencue_gateway_request_body_bytes_sum", (("rpc", RPC),))] == 6
    labels = {dict(k[1]).get("rpc") for k in values} - {None}
    assert labels <= {RPC, "unknown", "metrics"}, labels


def test_durations_are_measured_on_the_clock(gw):
    """A call that takes 0.3 s of the clock is recorded in the 0.5 s bucket, not below."""
    gw.cuebot.behave(GET_SHOWS, delay=0.3)
    answered = gw.send("POST", GET_SHOWS, token=make_token())
    gw.advance(0.3)
    assert gw.result(answered).status == 200
    values = scrape(gw)
    buckets = {le: values[("opencue_gateway_request_duration_seconds_bucket",
                           (("le", le), ("rpc", RPC)))] for le in ("0.25", "0.5")}
    assert buckets == {"0.25": 0, "0.5": 1}


def test_cuebot_failures_are_timed_by_their_code(gw):
    """Cuebot calls that fail are timed under their gRPC code."""
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.NOT_FOUND, "no"))
    gw.post(GET_SHOWS)
    values = scrape(gw)
    assert values[("opencue_gateway_cuebot_call_duration_seconds_count",
                   (("grpc_code", "NOT_FOUND"), ("rpc", RPC)))] == 1
    assert values[("opencue_gateway_requests_total", (("code", "404"), ("rpc", RPC)))] == 1


def test_rate_limited_and_forbidden_are_counted(make_gateway, tmp_path):
    """429s and 403s (by reason) are counted."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.viewer]\nallow = ["@readonly"]\n')
    gw = make_gateway(RATE_LIMIT_RPS="0.001", RATE_LIMIT_BURST="1",
                      AUTH_POLICY_FILE=str(policy))
    token = make_token(role="viewer")
    assert gw.post(KILL, token=token).status == 403
    assert gw.post(GET_SHOWS, token=token).status == 429
    values = scrape(gw)
    assert values[("opencue_gateway_rate_limited_total", ())] == 1
    assert values[("opencue_gateway_auth_failures_total", (("reason", "role"),))] == 1


def test_access_log_has_every_field_and_no_secret(gw, captured_logs):
    """One access line per request with client, principal, method, status, code, duration,
    bytes, request id and traceparent; tokens and the secret never appear in any log line."""
    token = make_token(sub="ann")
    gw.cuebot.behave(GET_SHOWS, delay=0.25)
    answered = gw.send("POST", GET_SHOWS, token=token,
                       headers={"X-Request-Id": "req-1", "traceparent": TRACEPARENT})
    gw.advance(0.25)
    gw.result(answered)
    gw.post(GET_SHOWS, token="not.a.token")
    access = access_records(captured_logs)
    assert len(access) == 2
    first = access[0]
    assert first["principal"] == "ann" and first["rpc"] == RPC
    assert (first["status"], first["grpc_code"], first["http_method"]) == (200, 0, "POST")
    assert first["request_id"] == "req-1" and first["traceparent"] == TRACEPARENT
    assert first["client"] == "10.0.0.5" and first["bytes_in"] == 2 and first["bytes_out"] > 0
    assert first["duration_ms"] == 250.0 and first["path"] == GET_SHOWS
    line = formatEvent(next(e for e in captured_logs if e.get("access") == first))
    for fragment in ('"POST /show.ShowInterface/GetShows" 200', "grpc=0", "id=req-1",
                     f"trace={TRACEPARENT}", "ann", "250.0ms", "10.0.0.5"):
        assert fragment in line
    assert access[1]["status"] == 401 and access[1]["grpc_code"] == 16
    assert access[1]["failure"] == "malformed" and access[1]["principal"] == ""
    everything = "\n".join(formatEvent(e) + repr(e) for e in captured_logs)
    assert token not in everything and "not.a.token" not in everything
    assert SECRET not in everything


def test_the_access_log_path_has_no_query_and_a_bounded_length(gw, captured_logs):
    """The logged path drops the query string and is cut at 200 characters."""
    gw.post(GET_SHOWS + "?token=abc")
    gw.post("/" + "p" * 300)
    first, second = access_records(captured_logs)
    assert first["path"] == GET_SHOWS
    assert len(second["path"]) == 200


# -- tracing ---------------------------------------------------------------------------------

def test_spans_continue_the_client_trace(make_gateway):
    """With tracing: a server span from the client's trace headers, a child span per Cuebot
    call closed with its code, Cuebot sees the child span, and the request span closes with
    the HTTP status and RPC."""
    tracing = RecordingTracing()
    gw = make_gateway(tracing=tracing)
    response = gw.post(GET_SHOWS, headers={"traceparent": TRACEPARENT, "tracestate": "a=1",
                                           "X-Other": "no"})
    assert response.status == 200
    server, client = tracing.spans
    assert server.name == "POST /show.ShowInterface/GetShows"
    assert server.headers == {"traceparent": TRACEPARENT, "tracestate": "a=1"}
    assert client.parent is server and client.name == RPC
    assert client.ended == (grpc.StatusCode.OK,)
    assert server.ended == (200, RPC)
    assert gw.cuebot.received[0].metadata["traceparent"] == f"00-{'1' * 32}-{2:016x}-01"


def test_failed_calls_and_refusals_close_their_spans(make_gateway):
    """A failed Cuebot call closes its span with the code; a 401 closes the request span with
    401 and opens no call span; public pages are not traced."""
    tracing = RecordingTracing()
    gw = make_gateway(tracing=tracing)
    gw.cuebot.behave(GET_SHOWS, error=(grpc.StatusCode.UNAVAILABLE, "down for maintenance"))
    assert gw.post(GET_SHOWS).status == 503
    assert gw.request("POST", GET_SHOWS).status == 401
    assert gw.request("GET", "/healthz", None).status == 200
    failed_request, failed_call, refused = tracing.spans
    assert failed_call.ended == (grpc.StatusCode.UNAVAILABLE,)
    assert failed_request.ended == (503, RPC)
    assert refused.ended == (401, "unknown") and refused.headers == {}


def test_an_unexpected_failure_closes_the_call_span_as_internal(make_gateway):
    """A call that breaks unexpectedly still closes its span, as INTERNAL."""
    tracing = RecordingTracing()
    gw = make_gateway(tracing=tracing)
    gw.cuebot.behave(GET_SHOWS, reply_for=lambda call: 1 / 0)
    assert gw.post(GET_SHOWS).status == 500
    assert tracing.spans[1].ended == (grpc.StatusCode.INTERNAL,)
    assert tracing.spans[0].ended == (500, RPC)
