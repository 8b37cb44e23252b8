"""Hostile, slow and departing clients, in memory: every deadline on a clock the test moves.

Each test feeds raw bytes to one connection of the real site (Twisted's HTTP
parser included) and reads what the gateway wrote back.
"""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from tests.conftest import make_token
from tests.memory import CLIENT_ADDRESS, GATEWAY_ADDRESS

GET_SHOWS = "/show.ShowInterface/GetShows"


class Connection:
    """One client connection to the gateway's site, driven byte by byte."""

    def __init__(self, gw, peer: IPv4Address = CLIENT_ADDRESS) -> None:
        self.gw = gw
        self.transport = StringTransport(hostAddress=GATEWAY_ADDRESS, peerAddress=peer)
        self.protocol = gw.gateway.site.buildProtocol(peer)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)
        self.gw.settle()

    @property
    def written(self) -> bytes:
        return self.transport.value()

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    def status(self) -> int:
        return int(self.written.split(b" ", 2)[1])

    def body(self) -> dict:
        return json.loads(self.written.partition(b"\r\n\r\n")[2].decode())


def post(path: str = GET_SHOWS, body: bytes = b"{}", headers: bytes = b"",
         host: bytes | None = b"gateway") -> bytes:
    """A whole HTTP/1.1 POST with a valid token."""
    host_line = b"Host: " + host + b"\r\n" if host is not None else b""
    return (b"POST " + path.encode() + b" HTTP/1.1\r\n" + host_line +
            b"Authorization: Bearer " + make_token().encode() + b"\r\n" + headers +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


# -- 1: the header deadline counts from the first byte ------------------------------------

def test_a_request_line_sent_a_byte_at_a_time_is_cut_at_http_timeout(make_gateway):
    """One byte every 0.6 s: 408 and close once HTTP_TIMEOUT has passed since the first byte,
    although every byte resets the idle timer."""
    gw = make_gateway(HTTP_TIMEOUT="4s", HTTP_IDLE_TIMEOUT="4s")
    connection = Connection(gw)
    line = b"POST /show.ShowInterface/GetShows HTTP/1.1"
    for byte in line[:6]:
        connection.send(bytes([byte]))
        gw.advance(0.6)
        assert not connection.closed
    for byte in line[6:9]:
        connection.send(bytes([byte]))
        gw.advance(0.6)
    assert connection.closed
    assert connection.status() == 408
    assert connection.body()["code"] == 4


def test_headers_dripping_after_the_request_line_are_cut_at_the_same_deadline(make_gateway):
    """The request line arrives at once; headers a line per second; 408 at HTTP_TIMEOUT."""
    gw = make_gateway(HTTP_TIMEOUT="3s", HTTP_IDLE_TIMEOUT="60s")
    connection = Connection(gw)
    connection.send(b"POST /show.ShowInterface/GetShows HTTP/1.1\r\n")
    for number in range(2):
        gw.advance(1.0)
        connection.send(b"X-Slow-%d: 1\r\n" % number)
    assert not connection.closed
    gw.advance(1.0)
    assert connection.closed and connection.status() == 408


def test_the_next_request_on_a_kept_alive_connection_gets_its_own_deadline(make_gateway):
    """After an answer, the clock starts again at the next request's first byte."""
    gw = make_gateway(HTTP_TIMEOUT="3s", HTTP_IDLE_TIMEOUT="60s")
    connection = Connection(gw)
    connection.send(post())
    assert connection.status() == 200
    gw.advance(10.0)
    assert not connection.closed
    connection.transport.clear()
    connection.send(post())
    assert connection.status() == 200


def test_header_lines_ending_in_a_bare_lf_are_refused_at_once(make_gateway):
    """LF without CR: 400 naming the rule, without waiting for a CRLF that never comes."""
    connection = Connection(make_gateway())
    connection.send(b"POST /show.ShowInterface/GetShows HTTP/1.1\nHost: gateway\n")
    assert connection.closed and connection.status() == 400
    assert "CRLF" in connection.body()["message"]


def test_a_bare_lf_after_proper_lines_in_a_later_read_is_refused(make_gateway):
    """The check counts every read: good CRLF lines first, then one bare LF among them."""
    connection = Connection(make_gateway())
    connection.send(b"POST /show.ShowInterface/GetShows HTTP/1.1\r\n")
    assert not connection.closed
    connection.send(b"Host: gateway\r\nAccept: */*\nContent-Length: 2\r\n")
    assert connection.closed and connection.status() == 400


def test_a_crlf_split_between_two_reads_is_no_bare_lf(gw):
    """CR at the end of one read and LF at the start of the next is a proper line end."""
    connection = Connection(gw)
    request = post()
    cut = request.index(b"\r\n") + 1
    connection.send(request[:cut])
    connection.send(request[cut:])
    assert connection.status() == 200


def test_a_body_holding_lf_is_not_a_header_line(gw):
    """Line feeds inside the JSON body, sent with the headers, are the body's business."""
    connection = Connection(gw)
    connection.send(post(body=b'{\n"r": {}\n}'))
    assert connection.status() == 200


# -- 6: Host ---------------------------------------------------------------------------------

def test_http_1_1_without_host_is_400(gw):
    """RFC 9112 section 3.2: an HTTP/1.1 request must carry Host."""
    connection = Connection(gw)
    connection.send(post(host=None))
    assert connection.status() == 400
    assert connection.body()["message"] == "malformed HTTP request: HTTP/1.1 requires a Host header"
    assert gw.cuebot.received == []


def test_two_host_headers_are_400(gw):
    """Two Host headers: 400; neither reaches Cuebot as x-forwarded-host."""
    connection = Connection(gw)
    connection.send(post(headers=b"Host: evil.example\r\n"))
    assert connection.status() == 400
    assert "more than one Host header" in connection.body()["message"]
    assert gw.cuebot.received == []


def test_http_1_0_may_omit_host(gw):
    """HTTP/1.0 has no Host requirement."""
    connection = Connection(gw)
    connection.send(post(host=None).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    assert connection.status() == 200


# -- 7: chunk sizes --------------------------------------------------------------------------

def test_a_chunk_size_past_64_bits_is_400_at_once(gw):
    """ffffffffffffffffffff: answered at once, not after HTTP_TIMEOUT."""
    connection = Connection(gw)
    head = post().split(b"Content-Length")[0]
    connection.send(head + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n")
    assert connection.closed and connection.status() == 400
    assert "64 bits" in connection.body()["message"]


def test_a_chunk_larger_than_the_body_limit_is_413_at_once(make_gateway):
    """A chunk announced past MAX_REQUEST_BYTES is refused before any of it arrives."""
    connection = Connection(make_gateway(MAX_REQUEST_BYTES="1KiB"))
    head = post().split(b"Content-Length")[0]
    connection.send(head + b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + b"x" * 1024 +
                    b"\r\n1\r\n")
    assert connection.closed and connection.status() == 413


def test_chunks_within_the_limit_are_read(gw):
    """A chunked body of two chunks reaches Cuebot whole."""
    connection = Connection(gw)
    head = post().split(b"Content-Length")[0]
    connection.send(head + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"r\":\r\n"
                    b"4\r\n {}}\r\n0\r\n\r\n")
    assert connection.status() == 200


# -- 4: draining -----------------------------------------------------------------------------

def test_while_draining_every_answer_closes_its_connection(gw):
    """Once a drain begins, keep-alive clients are told Connection: close, and it closes."""
    connection = Connection(gw)
    connection.send(post())
    assert b"Connection: close" not in connection.written and not connection.closed
    gw.gateway.site.draining = True
    connection.transport.clear()
    connection.send(post())
    assert connection.status() == 200
    assert b"\r\nConnection: close\r\n" in connection.written.partition(b"\r\n\r\n")[0]
    assert connection.closed


def test_a_request_received_before_the_drain_is_answered_with_close(make_gateway):
    """A call in flight when the drain begins: its answer too carries Connection: close."""
    gw = make_gateway()
    connection = Connection(gw)
    connection.protocol.dataReceived(post())
    gw.gateway.site.draining = True
    gw.settle()
    assert connection.status() == 200 and connection.closed
    assert b"Connection: close" in connection.written


# -- 8: compressed request bodies ------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "compress"), [
    (b"gzip", gzip.compress), (b"deflate", zlib.compress)])
def test_a_compressed_body_is_inflated(gw, encoding, compress):
    """Content-Encoding gzip or deflate: Cuebot gets the request the JSON describes."""
    connection = Connection(gw)
    body = compress(b'{"r": {"shows": ["testing"]}}')
    connection.send(post("/job.JobInterface/GetJobs", body,
                         headers=b"Content-Encoding: " + encoding + b"\r\n"))
    assert connection.status() == 200
    assert list(gw.cuebot.received[0].request.r.shows) == ["testing"]


def test_an_encoding_the_gateway_cannot_read_is_415(gw):
    """Content-Encoding br: 415 naming it; nothing reaches Cuebot."""
    connection = Connection(gw)
    connection.send(post(body=b"\x0b\x02\x80{}\x03", headers=b"Content-Encoding: br\r\n"))
    assert connection.status() == 415
    assert "'br'" in connection.body()["message"] and gw.cuebot.received == []


def test_a_body_inflating_past_the_limit_is_413(make_gateway):
    """A small gzip body that inflates past MAX_REQUEST_BYTES is refused, not held."""
    connection = Connection(make_gateway(MAX_REQUEST_BYTES="64KiB"))
    bomb = gzip.compress(b'{"r": {"shows": ["' + b"a" * 1_000_000 + b'"]}}')
    assert len(bomb) < 64 * 1024
    connection.send(post("/job.JobInterface/GetJobs", bomb, headers=b"Content-Encoding: gzip\r\n"))
    assert connection.status() == 413
    assert "inflates to more than" in connection.body()["message"]


def test_a_corrupt_compressed_body_is_400(gw):
    """Bytes that are not gzip, sent as gzip: 400 naming the encoding."""
    connection = Connection(gw)
    connection.send(post(body=b"not gzip at all", headers=b"Content-Encoding: gzip\r\n"))
    assert connection.status() == 400
    assert connection.body()["message"] == "the request body is not valid gzip data"


# -- 9: who the client is behind a proxy -----------------------------------------------------

PROXY = IPv4Address("TCP", "10.1.2.3", 50000)


def access_clients(captured_logs) -> list[str]:
    return [event["access"]["client"] for event in captured_logs if "access" in event]


def test_a_trusted_proxy_names_the_client(make_gateway, captured_logs):
    """From a peer in TRUSTED_PROXIES, the rightmost untrusted X-Forwarded-For hop is the client."""
    gw = make_gateway(TRUSTED_PROXIES="10.0.0.0/8")
    connection = Connection(gw, PROXY)
    connection.send(post(headers=b"X-Forwarded-For: 203.0.113.9, 198.51.100.7, 10.9.9.9\r\n"))
    assert connection.status() == 200
    assert access_clients(captured_logs) == ["198.51.100.7"]


def test_forwarded_is_preferred_and_read_per_rfc_7239(make_gateway, captured_logs):
    """Forwarded: for= values, quoted IPv6 with a port included."""
    gw = make_gateway(TRUSTED_PROXIES="10.0.0.0/8")
    connection = Connection(gw, PROXY)
    connection.send(post(headers=b'Forwarded: for=192.0.2.60;proto=https, '
                                 b'for="[2001:db8:cafe::17]:4711"\r\n'
                                 b"X-Forwarded-For: 203.0.113.1\r\n"))
    assert access_clients(captured_logs) == ["2001:db8:cafe::17"]


def test_an_untrusted_peer_cannot_claim_another_address(make_gateway, captured_logs):
    """A client sending X-Forwarded-For itself is still its own address (also with no
    TRUSTED_PROXIES at all)."""
    for env in ({"TRUSTED_PROXIES": "10.0.0.0/8"}, {}):
        connection = Connection(make_gateway(**env), IPv4Address("TCP", "203.0.113.50", 1))
        connection.send(post(headers=b"X-Forwarded-For: 127.0.0.1\r\n"))
    assert access_clients(captured_logs) == ["203.0.113.50", "203.0.113.50"]


def test_failed_logins_are_limited_per_real_client_behind_the_proxy(make_gateway):
    """Two clients behind one trusted proxy have separate failed-login buckets."""
    gw = make_gateway(TRUSTED_PROXIES="10.0.0.0/8", RATE_LIMIT_RPS="0.001", RATE_LIMIT_BURST="1")
    statuses = []
    for client in (b"198.51.100.1", b"198.51.100.1", b"198.51.100.2"):
        connection = Connection(gw, PROXY)
        connection.send(post(headers=b"X-Forwarded-For: " + client + b"\r\n").replace(
            b"Bearer ", b"Bearer x"))
        statuses.append(connection.status())
    assert statuses == [401, 429, 401]
