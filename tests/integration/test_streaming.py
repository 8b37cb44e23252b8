"""Streamed answers over real sockets: a reader with a small receive buffer that stops reading,
and one that leaves mid-answer.

Bounds hold at every observation, however fast the machine; waits are deadlines.
"""

from __future__ import annotations

import random
import socket
import struct

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from bench.data import SEED, make_jobs
from opencue_gateway.transcode import Transcoder
from tests.integration.test_edge_faults import raw_request, until
from tests.unit.app.support import samples
from tests.unit.app.test_streaming import split_response

GET_JOBS = "/job.JobInterface/GetJobs"
SMALL_BUFFER = 16 * 1024
# The gateway's bounded buffer (512 KiB) plus what the two kernels' small buffers hold.
UNREAD_BOUND = 1024 * 1024
POLL = 0.05


async def paused_reader(gateway, cuebot, jobs: int) -> tuple[socket.socket, object, bytes]:
    """A client with a small receive buffer asks for GetJobs (then close) and reads nothing.

    Returns its socket, the gateway's request and the unstreamed encoding of the reply.
    """
    reply = make_jobs(random.Random(SEED), jobs)
    cuebot.behave(GET_JOBS, reply=reply)
    site = gateway.process.gateway.site
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", gateway.port))
    await until(lambda: site.channels, 10)
    [channel] = site.channels
    channel.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.sendall(raw_request(GET_JOBS).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
    await until(lambda: channel.requests and channel.requests[0].sentLength, 20)
    return sock, channel.requests[0], Transcoder().encode(reply)


async def steady(request, polls: int = 10) -> None:
    """Wait until the gateway has written nothing more for ``polls`` polls in a row,
    checking at every poll that what it wrote stays under the bound."""
    last, same = -1, 0
    for _ in range(int(30 / POLL)):
        assert request.sentLength <= UNREAD_BOUND
        same = same + 1 if request.sentLength == last else 0
        if same >= polls:
            return
        last = request.sentLength
        await deferLater(reactor, POLL, lambda: None)
    raise AssertionError("the gateway never stopped writing")


def read_to_the_end(sock: socket.socket) -> bytes:
    """Everything the gateway sends until it closes (bounded by the socket's timeout)."""
    data = bytearray()
    while part := sock.recv(1 << 20):
        data += part
    return bytes(data)


@pytest_twisted.ensureDeferred
async def test_a_reader_that_stops_holds_a_bounded_buffer(start_gateway, cuebot):
    """While a small-buffered client reads nothing, the gateway writes no more than the
    bound of a 6.6 MB answer; when it reads, the rest follows, byte-identical."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address)
    sock, request, whole = await paused_reader(gateway, cuebot, 20_000)
    assert len(whole) > 6 * UNREAD_BOUND
    await steady(request)
    assert request.sentLength < len(whole)
    with sock:
        # Read in a thread: the reactor keeps serving the gateway meanwhile.
        data = await deferToThread(read_to_the_end, sock)
    headers, body, complete = split_response(data)
    assert complete and headers["transfer-encoding"] == "chunked"
    assert body == whole


@pytest_twisted.ensureDeferred
async def test_a_reader_that_leaves_mid_answer_stops_the_stream(start_gateway, cuebot):
    """A client that closes its socket mid-answer ends the request (499) and the stream,
    which is counted as client_gone."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address)
    sock, request, _ = await paused_reader(gateway, cuebot, 20_000)
    await steady(request)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    sock.close()
    site = gateway.process.gateway.site
    await until(lambda: site.active_requests == 0, 10)
    values = samples(gateway.process.gateway.metrics.exposition())
    assert values[("opencue_gateway_streamed_responses_total",
                   (("outcome", "client_gone"), ("rpc", GET_JOBS[1:])))] == 1
    assert values[("opencue_gateway_requests_total",
                   (("code", "499"), ("rpc", GET_JOBS[1:])))] == 1
