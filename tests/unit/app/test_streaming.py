"""Large replies streamed in memory: chunked, byte-identical, paced by the reader, stopped
when the client leaves or time runs out, counted, logged and waited for by a drain."""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from opencue_proto import job_pb2
from twisted.internet.interfaces import IPushProducer
from twisted.test import iosim
from zope.interface import implementer

from bench.data import SEED, make_jobs
from opencue_gateway.drain import InFlight
from opencue_gateway.largereply import PIECE_BYTES, STREAM_MIN_BYTES
from opencue_gateway.streaming import WINDOW, StreamedBody
from opencue_gateway.transcode import Transcoder
from tests.memory import GATEWAY_ADDRESS, MemoryGateway, RawClient
from tests.unit.app.support import GET_FRAMES, GET_JOBS, access_records, raw_head, scrape

GET_HOSTS = "/host.HostInterface/GetHosts"
JOBS_RPC = GET_JOBS[1:]
# Twisted's TCP transports pause their producer past this many unsent bytes.
HIGH_WATER = 64 * 1024
# What a streamed answer may hold encoded and unsent: HIGH_WATER, crossed by at most one
# chunk, plus the chunks waiting to be written (each under 2 * PIECE_BYTES).
BOUND = 512 * 1024


@pytest.fixture(scope="module")
def replies(production_replies: dict[str, Any]) -> dict[str, Any]:
    """Production-size replies by the path that answers them (see tests/conftest.py)."""
    return {GET_JOBS: production_replies["jobs"], GET_FRAMES: production_replies["frames"],
            GET_HOSTS: production_replies["hosts"]}


@pytest.fixture(scope="module")
def encoded(replies: dict[str, Any]) -> dict[str, bytes]:
    """The unstreamed encoder's bytes for each reply."""
    transcoder = Transcoder()
    return {path: transcoder.encode(reply) for path, reply in replies.items()}


@implementer(IPushProducer)
class PacedTransport(iosim.FakeTransport):
    """The gateway's end of a connection whose client reads only as much as the test allows.

    Like Twisted's TCP transports, it pauses its producer once more than
    HIGH_WATER bytes wait to be sent and resumes it when they have all gone;
    an abort drops what was not sent.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowance = math.inf
        self.paused = False

    def unsent(self) -> int:
        """Bytes written by the gateway and not yet read by the client."""
        return sum(len(part) for part in self.stream)

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None and not self.paused and self.unsent() > HIGH_WATER:
            self.paused = True
            self.producer.pauseProducing()

    def getOutBuffer(self) -> bytes | None:
        if not self.stream or self.allowance <= 0:
            return None
        pending = b"".join(self.stream)
        taken = pending[:int(min(self.allowance, len(pending)))]
        self.stream = [pending[len(taken):]] if len(taken) < len(pending) else []
        self.allowance -= len(taken)
        if self.paused and not self.stream:
            self.paused = False
            self.producer.resumeProducing()
        return taken

    def abortConnection(self) -> None:
        self.stream = []
        super().abortConnection()


@dataclass
class Reader:
    """A raw client on a paced connection: what it received and the gateway's end."""

    client: RawClient
    transport: PacedTransport

    def read_all(self) -> None:
        self.transport.allowance = math.inf


def connect_paced(gw: MemoryGateway, request: bytes) -> Reader:
    """Open a paced connection whose client reads nothing yet, send ``request`` and run
    the gateway until it has nothing left to do."""
    server = gw.gateway.site.buildProtocol(gw.peer)
    client = RawClient()
    transport = PacedTransport(server, True, GATEWAY_ADDRESS, gw.peer)
    transport.allowance = 0
    gw.pumps.append(iosim.connect(
        server, transport, client, iosim.FakeTransport(client, False, gw.peer, GATEWAY_ADDRESS),
        greet=False))
    client.send(request)
    gw.settle()
    return Reader(client, transport)


def post(path: str, *headers: str) -> bytes:
    """An authenticated POST of ``{}``, as raw bytes."""
    extra = "".join(f"{header}\r\n" for header in headers).encode()
    return raw_head(path) + extra + b"Content-Length: 2\r\n\r\n{}"


def split_response(data: bytes) -> tuple[dict[str, str], bytes, bool]:
    """Headers, the de-chunked body, and whether the last chunk arrived."""
    head, _, rest = data.partition(b"\r\n\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])}
    if headers.get("transfer-encoding") != "chunked":
        return headers, rest, True
    body, position = bytearray(), 0
    while (end := rest.find(b"\r\n", position)) >= 0:
        size = int(rest[position:end], 16)
        if size == 0:
            return headers, bytes(body), True
        if len(rest) < end + 2 + size:
            break
        body += rest[end + 2:end + 2 + size]
        position = end + 4 + size
    return headers, bytes(body), False


def streamed_body(gw: MemoryGateway) -> StreamedBody:
    """The producer of the one request being answered."""
    [request] = gw.in_progress()
    assert isinstance(request.producer, StreamedBody)
    return request.producer


@pytest.mark.parametrize("gzip", [False, True], ids=["identity", "gzip"])
@pytest.mark.parametrize("path", [GET_JOBS, GET_FRAMES, GET_HOSTS])
def test_large_replies_are_chunked_and_byte_identical(gw, replies, encoded, path, gzip):
    """Past the threshold the answer is chunked, without Content-Length, and its bytes
    (gunzipped, with gzip) are exactly the unstreamed encoder's."""
    assert len(replies[path].SerializeToString()) >= STREAM_MIN_BYTES
    gw.cuebot.behave(path, reply=replies[path])
    accept = ("Accept-Encoding: gzip",) if gzip else ()
    client = gw.raw(post(path, *accept))
    headers, body, complete = split_response(client.received)
    assert client.received.startswith(b"HTTP/1.1 200 ")
    assert complete
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert headers["content-type"] == "application/json"
    assert headers["vary"] == "Accept-Encoding, Origin"
    if gzip:
        assert headers["content-encoding"] == "gzip"
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    else:
        assert "content-encoding" not in headers
    assert body == encoded[path]


def test_small_replies_keep_their_length(gw):
    """Below the threshold an answer is one body with a Content-Length, as before."""
    gw.cuebot.behave(GET_JOBS, reply=make_jobs(random.Random(SEED), 10))
    client = gw.raw(post(GET_JOBS))
    headers, body, _ = split_response(client.received)
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == len(body)


def test_a_paused_reader_holds_only_the_bounded_buffer(gw, replies, encoded):
    """While the client reads nothing, what the gateway has encoded and not sent stays
    under the bound and no encoding runs; reading again, the rest follows, identical."""
    gw.cuebot.behave(GET_JOBS, reply=replies[GET_JOBS])
    reader = connect_paced(gw, post(GET_JOBS))
    body = streamed_body(gw)
    total = len(encoded[GET_JOBS])
    for allowance in (0, 100_000, 0, 300_000, 0):
        reader.transport.allowance = allowance
        gw.settle()
        assert reader.transport.unsent() + body.ahead * 2 * PIECE_BYTES <= BOUND
        assert body.ahead <= WINDOW
        assert not body.encoding
    [request] = gw.in_progress()
    assert request.sentLength < total // 10
    reader.read_all()
    gw.settle()
    _, received, complete = split_response(reader.client.received)
    assert complete and received == encoded[GET_JOBS]


def test_a_client_leaving_mid_stream_stops_the_encoding(gw, replies, encoded, captured_logs):
    """A client that goes away mid-answer stops the encoding at once; the access log
    says 499 with the bytes written, and the metric counts client_gone."""
    gw.cuebot.behave(GET_JOBS, reply=replies[GET_JOBS])
    reader = connect_paced(gw, post(GET_JOBS))
    reader.transport.allowance = 200_000
    gw.settle()
    body = streamed_body(gw)
    [request] = gw.in_progress()
    written = request.sentLength
    assert 0 < written < len(encoded[GET_JOBS])
    reader.client.close()
    gw.settle()
    assert body.done.called and not body.encoding
    assert not gw.in_progress()
    [record] = [r for r in access_records(captured_logs) if r["rpc"] == JOBS_RPC]
    assert record["status"] == 499
    assert record["bytes_out"] == written
    values = scrape(gw)
    assert values[("opencue_gateway_streamed_responses_total",
                   (("outcome", "client_gone"), ("rpc", JOBS_RPC)))] == 1


def test_http_timeout_cuts_a_half_written_answer(make_gateway, replies):
    """HTTP_TIMEOUT passing while the client reads slowly aborts the connection mid-answer
    and the metric counts a timeout."""
    gw = make_gateway(HTTP_TIMEOUT="5s")
    gw.cuebot.behave(GET_JOBS, reply=replies[GET_JOBS])
    reader = connect_paced(gw, post(GET_JOBS))
    reader.transport.allowance = 100_000
    gw.settle()
    body = streamed_body(gw)
    gw.advance(5)
    assert reader.client.closed
    _, _, complete = split_response(reader.client.received)
    assert not complete
    assert body.done.called and not body.encoding
    values = scrape(gw)
    assert values[("opencue_gateway_streamed_responses_total",
                   (("outcome", "timeout"), ("rpc", JOBS_RPC)))] == 1


@dataclass
class RawReply:
    """A reply given as serialized bytes, to send Cuebot bytes protobuf would not write."""

    data: bytes

    def SerializeToString(self) -> bytes:
        return self.data


def corrupt_job(reply: job_pb2.JobGetJobsResponse, index: int) -> RawReply:
    """The reply's bytes with one job's name made invalid UTF-8 (unparseable)."""
    data = bytearray(reply.SerializeToString())
    data[data.index(reply.jobs.jobs[index].name.encode())] = 0xFF
    return RawReply(bytes(data))


def test_an_error_after_the_first_byte_aborts_the_connection(gw, replies):
    """A reply that turns out unreadable mid-stream cuts the connection (a half answer
    cannot become an error answer) and is counted."""
    gw.cuebot.behave(GET_JOBS, reply_for=lambda _: corrupt_job(replies[GET_JOBS], 15_000))
    client = gw.raw(post(GET_JOBS))
    assert client.closed
    assert client.received.startswith(b"HTTP/1.1 200 ")
    _, body, complete = split_response(client.received)
    assert not complete and body.startswith(b'{"jobs":{"jobs":[{')
    values = scrape(gw)
    assert values[("opencue_gateway_streamed_responses_total",
                   (("outcome", "error"), ("rpc", JOBS_RPC)))] == 1


def test_an_error_before_the_first_byte_is_an_error_answer(gw, replies):
    """When the first chunk already fails, the client gets the JSON error, not a cut."""
    gw.cuebot.behave(GET_JOBS, reply_for=lambda _: corrupt_job(replies[GET_JOBS], 0))
    response = gw.post(GET_JOBS)
    assert response.status == 500
    assert "job.JobSeq" in gw.json(response)["message"]


def test_streamed_answers_are_logged_and_measured(gw, replies, encoded, captured_logs):
    """bytes_out and the response-size metric count the body bytes of a streamed answer."""
    gw.cuebot.behave(GET_JOBS, reply=replies[GET_JOBS])
    response = gw.post(GET_JOBS)
    assert response.status == 200 and response.body == encoded[GET_JOBS]
    [record] = [r for r in access_records(captured_logs) if r["rpc"] == JOBS_RPC]
    assert record["status"] == 200 and record["bytes_out"] == len(encoded[GET_JOBS])
    values = scrape(gw)
    assert values[("opencue_gateway_response_body_bytes_sum", (("rpc", JOBS_RPC),))] == \
        len(encoded[GET_JOBS])
    assert values[("opencue_gateway_streamed_responses_total",
                   (("outcome", "complete"), ("rpc", JOBS_RPC)))] == 1


def test_a_drain_waits_for_a_stream_to_finish(gw, replies, encoded):
    """Stopping waits (within SHUTDOWN_GRACE) for a streamed answer still being read."""
    gw.cuebot.behave(GET_JOBS, reply=replies[GET_JOBS])
    reader = connect_paced(gw, post(GET_JOBS))
    stopped = InFlight(gw.gateway.site, gw.reactor, grace=20).stopService()
    gw.advance(5)
    assert not stopped.called and gw.in_progress()
    reader.read_all()
    gw.advance(1)
    assert stopped.called
    _, received, complete = split_response(reader.client.received)
    assert complete and received == encoded[GET_JOBS]


def test_a_cached_reply_streams_again_for_each_client(make_gateway, replies, encoded):
    """A large answer reused from the read cache is streamed anew, whole, to each client."""
    gw = make_gateway(READ_CACHE_TTL="10s")
    gw.cuebot.behave(GET_JOBS, reply=replies[GET_JOBS])
    for _ in range(2):
        response = gw.post(GET_JOBS)
        assert response.status == 200 and response.body == encoded[GET_JOBS]
        assert "content-length" not in response.headers
    assert len(gw.cuebot.calls(GET_JOBS)) == 1
