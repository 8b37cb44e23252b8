"""Watch streams over real sockets: what only real connections, a real Cuebot call path and
the service tree show (the event stream itself is tested in memory, tests/unit/app)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_twisted
from opencue_proto import show_pb2
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.conftest import make_token
from tests.integration.test_browser_cors import CHROMIUM, render_in_chromium
from tests.sse import SseReader

GET_SHOWS = "/show.ShowInterface/GetShows"
GET_JOBS = "/job.JobInterface/GetJobs"
JOB = "00000000-0000-0000-0000-000000000001"
README = Path(__file__).resolve().parents[2] / "README.md"
# Bounds on waiting for what must come; reached only if something is broken.
WAIT_SECONDS = 30


class Stream(Protocol):
    """A watch's body as it arrives over the socket, read as Server-Sent Events."""

    def __init__(self) -> None:
        self.reader = SseReader()
        self.closed: Deferred[None] = Deferred()
        self.complete = False  # the body ended as HTTP says (the gateway ended the stream)
        self._waiting: list[tuple[int, Deferred[None]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.reader.feed(data)
        ready = [(n, d) for n, d in self._waiting if len(self.reader.events) >= n]
        for entry in ready:
            self._waiting.remove(entry)
            entry[1].callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.complete = reason.check(ResponseDone) is not None
        self.closed.callback(None)

    def events(self, count: int) -> Deferred[None]:
        """Fires once ``count`` events have come (bounded by WAIT_SECONDS)."""
        if len(self.reader.events) >= count:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._waiting.append((count, waiting))
        return waiting.addTimeout(WAIT_SECONDS, reactor)

    def close(self) -> None:
        self.transport.stopProducing()


async def watch(gateway, path: str, body: str = "{}", token: str | None = None) -> Stream:
    """Open a watch on a running gateway; returns once its head has come."""
    response = await gateway._http.request(
        "POST", gateway.url + path, data=body.encode(),
        headers={"Authorization": f"Bearer {token or make_token()}",
                 "Accept": "text/event-stream", "Content-Type": "application/json"})
    assert response.code == 200, await response.content()
    assert response.headers.getRawHeaders("content-type") == ["text/event-stream; charset=utf-8"]
    stream = Stream()
    response.deliverBody(stream)
    return stream


def shows_reply(name: str) -> show_pb2.ShowGetShowsResponse:
    return show_pb2.ShowGetShowsResponse(shows=show_pb2.ShowSeq(shows=[show_pb2.Show(name=name)]))


@pytest_twisted.ensureDeferred
async def test_fifty_watchers_for_six_seconds_cost_at_most_ten_cuebot_calls(start_gateway,
                                                                              cuebot):
    """Acceptance: 50 watchers of one read, held 6 s at interval=1s over real sockets, cost at
    most 10 calls counted at the Cuebot side, and every watcher gets its snapshot."""
    cuebot.behave(GET_SHOWS, reply_for=lambda n: shows_reply(f"show{n // 3}"))
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address)
    streams = await gatherResults([
        Deferred.fromCoroutine(watch(gateway, GET_SHOWS + "?interval=1s",
                                     token=make_token(sub=f"user{i}")))
        for i in range(50)])
    await gatherResults([stream.events(1) for stream in streams])
    started = time.monotonic()
    await deferToThread(time.sleep, 6)
    for stream in streams:
        stream.close()
    await gatherResults([stream.closed for stream in streams])
    held = time.monotonic() - started
    calls = len([r for r in cuebot.received if r.path == GET_SHOWS])
    print(f"50 watchers held {held:.1f} s at interval=1s: {calls} Cuebot calls")
    assert calls <= 10
    for stream in streams:
        assert stream.reader.events[0].event == "snapshot"
        assert all(e.event in ("snapshot", "change") for e in stream.reader.events)
    names = {tuple(e.json()["shows"]["shows"][0]["name"] for e in s.reader.events[1:])
             for s in streams}
    assert len(names) <= 2  # everyone heard the same changes (the last may be cut by the close)


@pytest_twisted.ensureDeferred
async def test_pausing_a_job_shows_up_on_a_get_jobs_watch_within_two_polls(start_gateway):
    """Acceptance, on the sandbox (the still README farm): a Pause shows up as a change event
    on a GetJobs watch at one of the next two polls, i.e. within two intervals."""
    gateway = start_gateway(sandbox=True)
    registry = gateway.process.gateway.metrics.registry

    def polls() -> float:
        return registry.get_sample_value("opencue_gateway_watch_polls_total",
                                         {"rpc": GET_JOBS[1:], "grpc_code": "OK"}) or 0

    stream = await watch(gateway, GET_JOBS + "?interval=1s", '{"r": {"shows": ["testing"]}}')
    await stream.events(1)
    [job] = stream.reader.events[0].json()["jobs"]["jobs"]
    assert (job["id"], job["isPaused"]) == (JOB, False)
    pause = await gateway.post("/job.JobInterface/Pause", f'{{"job": {{"id": "{JOB}"}}}}')
    assert pause.status == 200
    paused_at, polls_before = time.monotonic(), polls()
    await stream.events(2)
    latency, polls_after = time.monotonic() - paused_at, polls()
    stream.close()
    print(f"pause to change event: {latency * 1000:.0f} ms, {polls_after - polls_before:g} poll(s)")
    change = stream.reader.events[1]
    assert change.event == "change"
    assert change.json()["jobs"]["jobs"][0]["isPaused"] is True
    assert polls_after - polls_before <= 2


@pytest_twisted.ensureDeferred
async def test_the_drain_ends_streams_at_once(start_gateway, cuebot, captured_logs):
    """SIGTERM's drain ends every stream first (end event, reason draining, then the
    connection closes): the stop does not wait SHUTDOWN_GRACE for them."""
    grace = 20
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, SHUTDOWN_GRACE=f"{grace}s")
    streams = [await watch(gateway, GET_SHOWS, body=f'{{"n": {i}}}') for i in range(3)]
    await gatherResults([stream.events(1) for stream in streams])
    started = time.monotonic()
    await gateway.process.stopService()
    took = time.monotonic() - started
    await gatherResults([stream.closed for stream in streams])
    for stream in streams:
        end = stream.reader.events[-1]
        assert (end.event, end.json()["reason"]) == ("end", "draining")
        assert stream.complete
    warned = [e for e in captured_logs if "after SHUTDOWN_GRACE" in e.get("log_format", "")]
    assert warned == []
    assert took < grace


def readme_code(language: str) -> str:
    """The one code block in this language of the README's Watching section."""
    section = README.read_text().split("\n## Watching\n", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    return code


# The README's fetch-based reader, stopped after the first event it hands over.
READER_PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
{reader}
const stop = new AbortController();
watch("{url}/show.ShowInterface/GetShows", "{token}", {{}}, (type, data, id) => {{
  document.getElementById("out").textContent = "EVENT " + type + " " + id + " " +
    data.shows.shows[0].name;
  stop.abort();
}}, stop.signal).catch(e => {{
  if (e.name !== "AbortError") document.getElementById("out").textContent = "FAILED " + e;
}});
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                    "install chromium; .ci/system-packages installs it)")
@pytest_twisted.ensureDeferred
async def test_a_browser_watches_through_cors_with_a_fetch_reader(start_gateway, cuebot):
    """Headless Chromium, on another origin, reads a watch's snapshot with the fetch-based
    reader the README shows (Authorization sent, so CORS with a preflight)."""
    cuebot.behave(GET_SHOWS, reply=shows_reply("testing"))
    page = Resource()
    listener = reactor.listenTCP(0, Site(page), interface="127.0.0.1")
    try:
        origin = f"http://127.0.0.1:{listener.getHost().port}"
        gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, CORS_ORIGINS=origin)
        html = READER_PAGE.format(reader=readme_code("javascript"), url=gateway.url,
                                  token=make_token())
        page.putChild(b"page.html", Data(html.encode(), "text/html"))
        dom = await deferToThread(render_in_chromium, f"{origin}/page.html")
    finally:
        await listener.stopListening()
    assert "EVENT snapshot 1 testing" in dom, dom


@pytest_twisted.ensureDeferred
async def test_the_readme_client_prints_state_changes_until_the_job_finishes(start_gateway):
    """The README's example client, run as a TD would run it against the sandbox, prints the
    job's state, then its pause, and exits 0 once a kill has finished the job."""
    gateway = start_gateway(sandbox=True)
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "watch_job.py"
        script.write_text(readme_code("python"))
        env = {**os.environ, "GATEWAY": gateway.url.removeprefix("http://"),
                "JWT_TOKEN": make_token()}
        process = subprocess.Popen([sys.executable, str(script), JOB, "1s"], env=env,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line = lambda: deferToThread(process.stdout.readline).addTimeout(  # noqa: E731
            WAIT_SECONDS, reactor)
        try:
            first = await read_line()
            assert "PENDING" in first and "paused" not in first, first
            await gateway.post("/job.JobInterface/Pause", f'{{"job": {{"id": "{JOB}"}}}}')
            second = await read_line()
            assert "PENDING" in second and "paused" in second, second
            await gateway.post("/job.JobInterface/Kill",
                               f'{{"job": {{"id": "{JOB}"}}, "reason": "test over"}}')
            third = await read_line()
            assert "FINISHED" in third, third
            code = await deferToThread(process.wait, WAIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert code == 0, process.stderr.read()
