"""WORKERS=N: one supervisor, N gateway processes on one port, stopped together."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

from tests.conftest import SECRET, make_token
from tests.integration.conftest import wait_for_exit

SUPERVISING = re.compile(r"supervising (\d+) workers on http://127\.0\.0\.1:(\d+)")


def children(pid: int) -> list[int]:
    """The worker processes of the supervisor."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return sorted(found)


def running(pid: int) -> bool:
    """Is the process there and not a zombie (an orphan's parent may be slow to reap it)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def accepted_connections(pid: int, port: int) -> int:
    """How many established connections to ``port`` the process ``pid`` has accepted."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if match:
                inodes.add(match.group(1))
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


async def wait_for_workers(process, tmp_path: Path, count: int) -> int:
    """The port, once the supervisor says it runs and all workers listen (bounded)."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        text = (tmp_path / "twistd.log").read_text(errors="replace")
        match = SUPERVISING.search(text)
        if match and text.count("listening on") >= count:
            return int(match.group(2))
        assert process.poll() is None, text
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("the workers did not start in time")


@pytest_twisted.ensureDeferred
async def test_two_workers_share_the_socket_and_stop_together(tmp_path, twistd, cuebot, client):
    """Both workers serve requests on one port; SIGTERM stops all of them and exits 0."""
    cuebot.behave("/show.ShowInterface/GetShows", delay=0.05)
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
                                    "WORKERS": "2"})
    port = await wait_for_workers(process, tmp_path, 2)
    workers = children(process.pid)
    assert len(workers) == 2
    before = {pid: cpu_ticks(pid) for pid in workers}
    gateway = client(f"http://127.0.0.1:{port}")
    for _ in range(4):
        batch = [ensureDeferred(gateway.post("/show.ShowInterface/GetShows"))
                 for _ in range(30)]
        assert [(await d).status for d in batch] == [200] * 30
    assert all(cpu_ticks(pid) > before[pid] for pid in workers), "a worker served nothing"
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 30) == 0
    # An orderly stop is not mistaken for a dead supervisor.
    assert "the supervisor has exited" not in (tmp_path / "twistd.log").read_text()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest_twisted.ensureDeferred
async def test_a_burst_of_connections_is_dealt_out_to_every_worker(tmp_path, twistd, cuebot):
    """Connections that arrive together are dealt out by the kernel, not taken by one worker.

    Both workers are paused while 40 connections arrive, then only the first
    resumes: with one socket shared by both it would accept all 40; with a
    socket per worker it gets only its share, and the rest wait for the second.
    """
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address, "WORKERS": "2"})
    port = await wait_for_workers(process, tmp_path, 2)
    first, second = children(process.pid)
    os.kill(first, signal.SIGSTOP)
    os.kill(second, signal.SIGSTOP)
    try:
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        os.kill(first, signal.SIGCONT)
        await deferLater(reactor, 1.0, lambda: None)
        alone = accepted_connections(first, port)
    finally:
        os.kill(first, signal.SIGCONT)
        os.kill(second, signal.SIGCONT)
    try:
        # Binomial(40, 1/2): fewer than 6 on either side happens about once in a million runs.
        assert 6 <= alone <= 34, alone
        deadline = time.monotonic() + 10
        while accepted_connections(second, port) < 40 - alone and time.monotonic() < deadline:
            await deferLater(reactor, 0.05, lambda: None)
        assert accepted_connections(second, port) == 40 - alone
    finally:
        for connection in clients:
            connection.close()
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 30) == 0


@pytest_twisted.ensureDeferred
async def test_workers_stop_when_the_supervisor_is_killed(tmp_path, twistd, cuebot):
    """SIGKILL leaves the supervisor no chance to stop its workers; they notice on their own
    (their stdin pipe closes), drain and exit, and the port is free again."""
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address, "WORKERS": "2"})
    port = await wait_for_workers(process, tmp_path, 2)
    workers = children(process.pid)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 20
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        await deferLater(reactor, 0.1, lambda: None)
    assert not [pid for pid in workers if running(pid)]
    assert "the supervisor has exited; draining and stopping" in (
        tmp_path / "twistd.log").read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest_twisted.ensureDeferred
async def test_a_dead_worker_is_replaced(tmp_path, twistd, cuebot, client):
    """A worker that dies is restarted, and the port keeps answering meanwhile."""
    process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
                                    "WORKERS": "2"})
    port = await wait_for_workers(process, tmp_path, 2)
    victim = children(process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    gateway = client(f"http://127.0.0.1:{port}")
    assert (await gateway.post("/show.ShowInterface/GetShows")).status == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = children(process.pid)
        if len(current) == 2 and victim not in current:
            break
        await deferLater(reactor, 0.2, lambda: None)
    assert len(children(process.pid)) == 2 and victim not in children(process.pid)
    assert "worker 0 exited unexpectedly" in (tmp_path / "twistd.log").read_text()
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 30) == 0


@pytest_twisted.ensureDeferred
async def test_workers_share_one_sandbox_farm(tmp_path, twistd, client):
    """With --sandbox, a change made through one worker is seen through every worker."""
    process = twistd({"WORKERS": "2"}, "--sandbox")
    port = await wait_for_workers(process, tmp_path, 2)
    gateway = client(f"http://127.0.0.1:{port}")
    token = make_token(secret="default-secret-key")
    job = '{"job": {"id": "00000000-0000-0000-0000-000000000001"}}'
    assert (await gateway.post("/job.JobInterface/Pause", job, token=token)).status == 200
    reads = [ensureDeferred(gateway.post("/job.JobInterface/GetJobs",
                                        '{"r": {"shows": ["testing"]}}', token=token))
             for _ in range(20)]
    for read in reads:
        assert (await read).json()["jobs"]["jobs"][0]["isPaused"] is True
    process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(process, 30) == 0
