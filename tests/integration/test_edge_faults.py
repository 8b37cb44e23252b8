"""Hostile, slow and departing clients over real sockets, where the socket is the point.

Timing bounds here are deadlines for the gateway (it must have acted by then),
set several times wider than the behaviour needs, never "it must be fast".
"""

from __future__ import annotations

import signal
import socket
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from tests.conftest import SECRET, make_token
from tests.cuebot_double import CuebotDouble
from tests.integration.conftest import wait_for_exit, wait_for_port
from tests.integration.test_workers import wait_for_workers

GET_SHOWS = "/show.ShowInterface/GetShows"
FIND_SHOW = "/show.ShowInterface/FindShow"


async def until(condition, seconds: float, step: float = 0.05) -> float:
    """Wait (bounded) until ``condition()`` holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "the condition never held"
        await deferLater(reactor, step, lambda: None)
    return time.monotonic() - started


def raw_request(path: str = GET_SHOWS, body: bytes = b"{}") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {make_token()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def drip_request_line(port: int, interval: float, limit: float) -> tuple[bytes, float]:
    """Send a request line one byte per ``interval`` until the server answers or closes."""
    line = b"POST /show.ShowInterface/GetShows HTTP/1.1\r\n"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        for byte in line:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(interval)
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            while answer and (more := sock.recv(65536)):
                answer += more
            return answer, time.monotonic() - started
    return b"", time.monotonic() - started


@pytest_twisted.ensureDeferred
async def test_a_request_line_sent_a_byte_at_a_time_is_cut(start_gateway, cuebot):
    """One byte per 0.3 s never completes a request line: 408 and close at HTTP_TIMEOUT
    (counted from the first byte), although each byte resets the idle timer."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, HTTP_TIMEOUT="1s",
                            HTTP_IDLE_TIMEOUT="1s")
    answer, elapsed = await deferToThread(drip_request_line, gateway.port, 0.3, 30)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert elapsed < 10
    assert not cuebot.received


def send_and_leave(port: int, request: bytes) -> socket.socket:
    """Send a request and keep the socket (the caller closes it to leave)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(request)
    return sock


@pytest_twisted.ensureDeferred
async def test_clients_that_leave_free_their_threads_and_cuebot_sees_it(start_gateway, cuebot):
    """Two slow calls fill the pool; their clients hang up; the threads are free again at once
    (a new request gets 200, not 503) and Cuebot sees both calls cancelled."""
    cuebot.behave(GET_SHOWS, delay=30)
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, MAX_CONCURRENT_STREAMS="2",
                            MAX_QUEUED_REQUESTS="0", FAN_IN="false")
    sockets = [send_and_leave(gateway.port, raw_request()) for _ in range(2)]
    await until(lambda: len(cuebot.received) == 2, 20)
    assert (await gateway.post(FIND_SHOW, '{"name": "x"}')).status == 503
    for sock in sockets:
        sock.close()
    freed = await until(lambda: not gateway.process.gateway.cuebot.pending, 20)
    assert (await gateway.post(FIND_SHOW, '{"name": "x"}')).status == 200
    await until(lambda: len(cuebot.cancelled) == 2, 20)
    assert cuebot.cancelled == [GET_SHOWS, GET_SHOWS]
    assert freed < 20


@pytest_twisted.ensureDeferred
async def test_calls_whose_time_ran_out_in_the_queue_are_never_sent(start_gateway, cuebot):
    """One thread busy for 4 s; three calls queued with 1 s deadlines get 504 and never reach
    Cuebot; the skips are counted."""
    cuebot.behave(GET_SHOWS, delay=4)
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, MAX_CONCURRENT_STREAMS="1",
                            FAN_IN="false", HTTP_TIMEOUT="20s")
    busy = ensureDeferred(gateway.post(GET_SHOWS))
    await until(lambda: len(cuebot.received) == 1, 20)
    queued = [ensureDeferred(gateway.post(FIND_SHOW, '{"name": "x"}',
                                          headers={"Grpc-Timeout": "1S"})) for _ in range(3)]
    assert (await busy).status == 200
    answers = [await d for d in queued]
    assert [a.status for a in answers] == [504, 504, 504]
    assert "waited for a free worker" in answers[0].json()["message"]
    assert [r.path for r in cuebot.received] == [GET_SHOWS]
    metrics = (await gateway.request("GET", "/metrics", None)).body.decode()
    assert 'opencue_gateway_cuebot_calls_skipped_total{reason="deadline"} 3.0' in metrics


@pytest_twisted.ensureDeferred
async def test_queued_calls_of_clients_that_left_are_never_sent(start_gateway, cuebot):
    """Calls queued behind a busy thread whose clients hang up are dropped, not sent later."""
    cuebot.behave(GET_SHOWS, delay=3)
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, MAX_CONCURRENT_STREAMS="1",
                            FAN_IN="false")
    busy = ensureDeferred(gateway.post(GET_SHOWS))
    await until(lambda: len(cuebot.received) == 1, 20)
    sockets = [send_and_leave(gateway.port, raw_request(FIND_SHOW, b'{"name": "x"}'))
               for _ in range(3)]
    await until(lambda: gateway.process.gateway.cuebot.pending == 4, 20)
    for sock in sockets:
        sock.close()
    assert (await busy).status == 200
    await until(lambda: not gateway.process.gateway.cuebot.pending, 20)
    assert [r.path for r in cuebot.received] == [GET_SHOWS]
    metrics = (await gateway.request("GET", "/metrics", None)).body.decode()
    assert 'opencue_gateway_cuebot_calls_skipped_total{reason="client_gone"} 3.0' in metrics


class KeepAliveClient:
    """HTTP/1.1 over one socket for as long as the server keeps it; a new one when it closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.connections = 0

    def post(self, path: str) -> tuple[int, dict[str, str]]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.connections += 1
        self.sock.sendall(raw_request(path))
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536) or b""
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers["content-length"]):
            body += self.sock.recv(65536)
        if headers.get("connection") == "close":
            self.sock.close()
            self.sock = None
        return int(lines[0].split()[1]), headers


@pytest_twisted.ensureDeferred
async def test_keep_alive_clients_see_no_error_across_a_sigterm(tmp_path, twistd, cuebot):
    """A keep-alive client sending through a SIGTERM: every answer is 200; answers during the
    drain carry Connection: close, so each next request opens a new connection rather than
    writing to one about to close."""
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
                      "DRAIN_DELAY": "4s"})
    port = await wait_for_port(process, tmp_path)
    client = KeepAliveClient(port)
    before = [await deferToThread(client.post, GET_SHOWS) for _ in range(5)]
    assert client.connections == 1
    process.send_signal(signal.SIGTERM)
    await deferLater(reactor, 0.5, lambda: None)
    during = [await deferToThread(client.post, GET_SHOWS) for _ in range(5)]
    assert [status for status, _ in before + during] == [200] * 10
    assert [headers.get("connection") for _, headers in before] == [None] * 5
    assert [headers.get("connection") for _, headers in during] == ["close"] * 5
    # The first answer of the drain ends the kept-alive connection; each later one its own.
    assert client.connections == 1 + 4
    assert await wait_for_exit(process, 20) == 0


def try_connect(port: int) -> str:
    """'refused' when nothing listens; 'accepted' when the kernel took the connection."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    except ConnectionRefusedError:
        return "refused"
    return "accepted"


@pytest_twisted.ensureDeferred
async def test_with_workers_new_connections_are_refused_once_listeners_close(tmp_path, twistd,
                                                                           cuebot, client):
    """WORKERS=2 draining a slow call: past DRAIN_DELAY new connections are refused at once,
    not accepted by the supervisor's sockets and left hanging; the slow call still ends 200."""
    cuebot.behave(GET_SHOWS, delay=6)
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address, "WORKERS": "2",
                      "DRAIN_DELAY": "1s", "SHUTDOWN_GRACE": "20s"})
    port = await wait_for_workers(process, tmp_path, 2)
    slow = ensureDeferred(client(f"http://127.0.0.1:{port}").post(GET_SHOWS))
    await until(lambda: len(cuebot.received) == 1, 20)
    process.send_signal(signal.SIGTERM)
    await deferLater(reactor, 3.0, lambda: None)
    assert await deferToThread(try_connect, port) == "refused"
    assert (await slow).status == 200
    assert await wait_for_exit(process, 40) == 0


@pytest_twisted.ensureDeferred
async def test_a_restarted_cuebot_is_used_again_within_a_second_or_so(start_gateway, catalog):
    """Cuebot down long enough for reconnect backoff to grow, then back on its port: /readyz
    and calls recover well before grpc's default backoff (5 s here before) would allow."""
    first = CuebotDouble(catalog).start()
    port = first.port
    gateway = start_gateway(CUEBOT_ENDPOINT=first.address)
    assert (await gateway.post(GET_SHOWS)).status == 200
    first.stop()
    assert (await gateway.post(GET_SHOWS)).status == 503
    await deferLater(reactor, 8.0, lambda: None)
    second = CuebotDouble(catalog).start(port)
    try:
        ready = {"now": False}

        async def probe() -> None:
            ready["now"] = (await gateway.request("GET", "/readyz", None)).status == 200

        started = time.monotonic()
        while not ready["now"]:
            assert time.monotonic() - started < 4.0, "not ready 4 s after Cuebot came back"
            await probe()
            await deferLater(reactor, 0.1, lambda: None)
        assert (await gateway.post(GET_SHOWS)).status == 200
    finally:
        second.stop()


@pytest.mark.parametrize("variable", ["LISTEN_BACKLOG"])
def test_the_default_listener_has_the_configured_backlog(variable):
    """LISTEN_BACKLOG reaches the default endpoint and endpoint strings without their own."""
    from opencue_gateway.listen import http_endpoints
    from tests.conftest import make_config

    (default,) = http_endpoints(make_config(**{variable: "777"}))
    assert default.spec.endswith(":backlog=777")
    given = http_endpoints(make_config(LISTEN="tcp:0:backlog=5,systemd:domain=INET:index=0"))
    assert [e.spec for e in given] == ["tcp:0:backlog=5", "systemd:domain=INET:index=0"]
