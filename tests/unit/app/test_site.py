"""The HTTP edge in memory: body limits, HTTP_TIMEOUT on the fake clock, URLs and Hosts that
are not UTF-8, clients that go away, and what a drain closes."""

from __future__ import annotations

from twisted.internet.address import UNIXAddress

from tests.conftest import assert_error, make_token
from tests.memory import RawResponse
from tests.unit.app.support import (
    GET_JOBS,
    GET_SHOWS,
    access_records,
    assert_cut_after_partial,
    half_answered,
    raw_head,
)

HEAD = raw_head(GET_SHOWS)


# -- body size -------------------------------------------------------------------------------

def test_huge_body_is_413(make_gateway):
    """A body over MAX_REQUEST_BYTES is refused with 413 before Cuebot is called."""
    gw = make_gateway(MAX_REQUEST_BYTES="1KiB")
    response = gw.post(GET_SHOWS, b'{"x": "' + b"a" * 5000 + b'"}',
                       headers={"Origin": "http://dashboard.example"})
    assert_error(response, 413, 8, "larger than the 1024-byte limit")
    # A browser can read why (CORS), and the answer names its request id.
    assert response.header("access-control-allow-origin") == "*"
    assert len(response.header("x-request-id")) == 32
    assert gw.post(GET_SHOWS, b"{}").status == 200
    assert len(gw.cuebot.received) == 1


def test_a_body_at_the_limit_is_taken(make_gateway):
    """Exactly MAX_REQUEST_BYTES is allowed: the limit is inclusive."""
    gw = make_gateway(MAX_REQUEST_BYTES="20")
    body = b'{"name": "' + b"n" * 8 + b'"}'
    assert len(body) == 20
    assert gw.post("/show.ShowInterface/FindShow", body).status == 200


def test_a_declared_body_over_the_limit_gets_no_100_continue(make_gateway):
    """A client asking "Expect: 100-continue" for a body too large is told 413 at once, not
    invited to send it."""
    gw = make_gateway(MAX_REQUEST_BYTES="1KiB", CORS_ORIGINS="")
    client = gw.raw(HEAD + b"Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
    assert b"100 Continue" not in client.received
    response = client.response()
    assert_error(response, 413, 8, "1024-byte limit")
    assert response.header("content-length") == str(len(response.body))
    assert response.header("access-control-allow-origin") is None
    assert client.closed


def test_chunked_bodies_are_counted_as_they_come(make_gateway):
    """A chunked body is refused once its running total passes the limit, mid-stream."""
    gw = make_gateway(MAX_REQUEST_BYTES="100")
    client = gw.raw(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b" " * 64 + b"\r\n")
    assert client.received == b""
    client.send(b"40\r\n" + b" " * 64 + b"\r\n" + b"40\r\n" + b" " * 64 + b"\r\n0\r\n\r\n")
    gw.settle()
    assert_error(client.response(), 413, 8, "100-byte limit")
    assert client.received.count(b"HTTP/1.1") == 1
    assert client.closed and gw.cuebot.received == []


def test_chunked_bodies_within_the_limit_are_served(gw):
    """A chunked body under the limit is read whole and forwarded."""
    body = b'{"name": "testing"}'
    client = gw.raw(raw_head("/show.ShowInterface/FindShow") + b"Transfer-Encoding: chunked\r\n"
                    b"Connection: close\r\n\r\n" + b"%x\r\n" % 10 + body[:10] + b"\r\n"
                    + b"%x\r\n" % (len(body) - 10) + body[10:] + b"\r\n0\r\n\r\n")
    assert client.response().status == 200
    assert gw.cuebot.received[0].request.name == "testing"


# -- HTTP_TIMEOUT ----------------------------------------------------------------------------

def test_client_stalling_mid_body_is_cut_off(make_gateway):
    """A body that stops arriving gets 408 (JSON) at HTTP_TIMEOUT and the connection closes."""
    gw = make_gateway(HTTP_TIMEOUT="1s")
    client = gw.raw(HEAD + b"Content-Length: 100\r\n\r\n" + b"{" * 10)
    gw.advance(0.99)
    assert client.received == b"" and not client.closed
    gw.advance(0.01)
    response = client.response()
    assert_error(response, 408, 4, "not received within HTTP_TIMEOUT")
    assert client.closed and gw.cuebot.received == []


def test_http_timeout_bounds_a_slow_cuebot_with_a_json_504(make_gateway):
    """When HTTP_TIMEOUT is shorter than GRPC_TIMEOUT, the request still ends at HTTP_TIMEOUT,
    as a JSON 504."""
    gw = make_gateway(HTTP_TIMEOUT="1s", GRPC_TIMEOUT="30s")
    gw.cuebot.behave(GET_SHOWS, delay=10)
    answered = gw.send("POST", GET_SHOWS, token=make_token())
    gw.advance(0.9)
    assert not gw.answered(answered)
    gw.advance(0.1)
    assert_error(gw.result(answered), 504, 4, "HTTP_TIMEOUT")


def test_an_answer_after_the_timeout_is_not_written(make_gateway):
    """A joined read whose shared call outlives its HTTP_TIMEOUT gets the 504 at its deadline,
    and the shared answer arriving later is not written after it."""
    gw = make_gateway(HTTP_TIMEOUT="1s")
    gw.cuebot.behave(GET_JOBS, delay=0.9)
    first = gw.send("POST", GET_JOBS, token=make_token())
    gw.advance(0.5)
    joined = gw.raw(raw_head(GET_JOBS) + b"Content-Length: 2\r\n\r\n{}")
    gw.advance(0.4)
    assert gw.result(first).status == 200
    gw.advance(0.6)
    assert_error(joined.response(), 504, 4, "the request took longer than HTTP_TIMEOUT")
    gw.advance(0.3)
    assert len(gw.cuebot.calls(GET_JOBS)) == 2
    assert joined.received.count(b"HTTP/1.1") == 1
    assert joined.received.endswith(joined.response().body)


def test_a_half_written_answer_at_the_timeout_is_cut(make_gateway):
    """If the answer is half out when HTTP_TIMEOUT passes, the connection is aborted rather
    than finished with a second status line."""
    gw = make_gateway(HTTP_TIMEOUT="1s")
    gw.cuebot.behave(GET_SHOWS, delay=5)
    client = half_answered(gw, GET_SHOWS)
    gw.advance(1.0)
    assert_cut_after_partial(client)
    assert b"504" not in client.received


# -- URLs and hosts --------------------------------------------------------------------------

def test_non_utf8_url_is_a_json_400(gw):
    """A URL that is not UTF-8 gets the JSON error shape, like every other failure."""
    response = gw.post("/show.ShowInterface/Get%FFShows")
    assert_error(response, 400, 3, "the URL is not valid UTF-8")


def test_non_utf8_host_header_is_a_json_400_naming_the_host(gw):
    """A Host header that is not UTF-8 gets the JSON 400 naming the Host header."""
    response = gw.raw(b"POST /show.ShowInterface/GetShows HTTP/1.1\r\nHost: \xff\xfe\r\n"
                      b"Content-Length: 2\r\nConnection: close\r\n\r\n{}").response()
    assert response.status_line.startswith("HTTP/1.1 400 ")
    assert response.json()["message"] == "the Host header is not valid UTF-8"


# -- the record of each request ---------------------------------------------------------------

def test_a_client_that_goes_away_is_recorded_as_499(gw, captured_logs):
    """A client disconnecting before its answer is logged as 499 (nginx's "client closed"),
    the in-flight gauge comes back down, and Cuebot's late answer goes nowhere."""
    gw.cuebot.behave(GET_SHOWS, delay=2)
    client = gw.raw(HEAD + b"X-Request-Id: gone-1\r\nContent-Length: 2\r\n\r\n{}")
    assert gw.gateway.site.active_requests == 1
    client.close()
    gw.advance(2)
    assert gw.gateway.site.active_requests == 0
    assert gw.gateway.metrics.in_flight._value.get() == 0
    [record] = access_records(captured_logs)
    assert (record["status"], record["request_id"], record["rpc"]) == (
        499, "gone-1", "show.ShowInterface/GetShows")
    assert client.received == b""


def _refused_record(make_gateway, captured_logs) -> dict:
    """The access record of a request refused with 413 while it arrived."""
    gw = make_gateway(MAX_REQUEST_BYTES="10")
    gw.raw(HEAD + b"X-Request-Id: big-2\r\nContent-Length: 50\r\n\r\n")
    [record] = access_records(captured_logs)
    return record


def test_a_request_abandoned_mid_body_is_not_a_request(gw, captured_logs):
    """A client that leaves while still sending its body is neither logged nor counted:
    no request was made."""
    client = gw.raw(HEAD + b"Content-Length: 100\r\n\r\n{")
    client.close()
    gw.settle()
    assert access_records(captured_logs) == []
    assert gw.gateway.metrics.in_flight._value.get() == 0
    assert gw.gateway.site.channels == set() and gw.cuebot.received == []


def test_a_refused_request_is_recorded(make_gateway, captured_logs):
    """A 413 refused while arriving is logged with its path, status, code and request id,
    though the app never saw it."""
    record = _refused_record(make_gateway, captured_logs)
    assert (record["path"], record["status"], record["grpc_code"], record["request_id"]) == (
        GET_SHOWS, 413, 8, "big-2")
    assert record["rpc"] == "unknown" and record["principal"] == ""


def test_a_refused_request_is_recorded_with_its_method(make_gateway, captured_logs):
    """The access record of a request refused while arriving names its HTTP method."""
    assert _refused_record(make_gateway, captured_logs)["http_method"] == "POST"


def test_a_unix_socket_peer_is_logged_without_an_address(gw, captured_logs):
    """Behind a Unix socket the peer has no host: the access log shows "-" and Cuebot gets
    no X-Forwarded-For."""
    gw.peer = UNIXAddress(b"/run/opencue-gateway.sock")
    assert gw.post(GET_SHOWS).status == 200
    [record] = access_records(captured_logs)
    assert record["client"] is None
    assert "x-forwarded-for" not in gw.cuebot.received[0].metadata


def test_close_idle_connections_closes_kept_alive_ones(gw):
    """A drain's last step closes a keep-alive connection whose answer went out."""
    client = gw.raw(HEAD + b"Content-Length: 2\r\n\r\n{}")
    assert RawResponse.parse(client.received).status == 200
    assert not client.closed and len(gw.gateway.site.channels) == 1
    gw.gateway.site.close_idle_connections()
    gw.settle()
    assert client.closed and gw.gateway.site.channels == set()
