"""The sandbox server's lifecycle, keepalive enforcement and thread-safety."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from opencue_proto import comment_pb2, job_pb2, job_pb2_grpc, show_pb2, show_pb2_grpc

from opencue_gateway.sandbox import SandboxServer, seed
from tests.sandbox.sandbox_support import CALL_TIMEOUT, TimedStub, rpc_error

JOB = job_pb2.Job(id=seed.JOB_ID)


def _get_shows(address: str) -> list[str]:
    """Show names from a sandbox at ``address``, over a fresh channel."""
    with grpc.insecure_channel(address) as channel:
        stub = show_pb2_grpc.ShowInterfaceStub(channel)
        reply = stub.GetShows(show_pb2.ShowGetShowsRequest(), timeout=CALL_TIMEOUT)
        return [show.name for show in reply.shows.shows]


def test_start_returns_the_bound_loopback_port():
    """start() binds a free loopback port when asked for port 0 and reports it."""
    server = SandboxServer()
    port = server.start()
    try:
        assert port > 0
        assert server.address == f"127.0.0.1:{port}"
        assert _get_shows(server.address) == ["testing"]
    finally:
        server.stop()


def test_lifecycle_guards():
    """A server cannot start twice, has no port until started, and stops idempotently."""
    server = SandboxServer()
    with pytest.raises(RuntimeError):
        _ = server.address
    server.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    finally:
        server.stop()
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.port


def test_stopped_server_refuses_calls():
    """After stop() returns, the port no longer answers."""
    with SandboxServer() as server:
        address = server.address
        assert _get_shows(address) == ["testing"]
    with grpc.insecure_channel(address) as channel:
        stub = TimedStub(show_pb2_grpc.ShowInterfaceStub(channel))
        error = rpc_error(stub.GetShows, show_pb2.ShowGetShowsRequest())
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_taken_port_fails_to_start():
    """Starting on a port another server holds raises instead of serving nothing."""
    with SandboxServer() as first:
        second = SandboxServer(port=first.port)
        with pytest.raises(RuntimeError):
            second.start()
        assert _get_shows(first.address) == ["testing"]


def test_a_client_pinging_too_often_is_sent_away(sandbox):
    """Like a grpc-java Cuebot, the sandbox sends GOAWAY to a client that pings every 500 ms."""
    options = [
        ("grpc.keepalive_time_ms", 500),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    went_idle = threading.Event()
    ready = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        """Note when the connection is up, then when the server drops it."""
        if state == grpc.ChannelConnectivity.READY:
            ready.set()
        elif ready.is_set() and state == grpc.ChannelConnectivity.IDLE:
            went_idle.set()

    with grpc.insecure_channel(sandbox.address, options=options) as channel:
        channel.subscribe(watch, try_to_connect=True)
        stub = show_pb2_grpc.ShowInterfaceStub(channel)
        stub.GetShows(show_pb2.ShowGetShowsRequest(), timeout=CALL_TIMEOUT)
        assert went_idle.wait(timeout=15)
        channel.unsubscribe(watch)


def test_concurrent_changes_keep_stats_consistent(channel):
    """Eats, retries, pauses and comments from eight threads leave stats matching the frames."""
    job_stub = TimedStub(job_pb2_grpc.JobInterfaceStub(channel))
    frame_stub = TimedStub(job_pb2_grpc.FrameInterfaceStub(channel))
    rounds = 40

    def worker(seed_value: int) -> None:
        """Make a random mix of changes."""
        rng = random.Random(seed_value)
        for _ in range(rounds):
            frame = job_pb2.Frame(id=rng.choice(seed.FRAME_IDS))
            if rng.random() < 0.5:
                frame_stub.Eat(job_pb2.FrameEatRequest(frame=frame))
            else:
                frame_stub.Retry(job_pb2.FrameRetryRequest(frame=frame))
            job_stub.Pause(job_pb2.JobPauseRequest(job=JOB))
            job_stub.Resume(job_pb2.JobResumeRequest(job=JOB))
            job_stub.AddComment(job_pb2.JobAddCommentRequest(
                job=JOB, new_comment=comment_pb2.Comment(user="t", subject="s", message="m")
            ))

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(worker, n) for n in range(8)]:
            future.result(timeout=60)
    assert time.monotonic() - started < 60

    frames = job_stub.GetFrames(job_pb2.JobGetFramesRequest(job=JOB)).frames.frames
    states = Counter(frame.state for frame in frames)
    job = job_stub.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    stats = job.job_stats
    assert (stats.waiting_frames, stats.eaten_frames) == (
        states[job_pb2.WAITING], states[job_pb2.EATEN]
    )
    assert stats.waiting_frames + stats.eaten_frames == 6
    assert stats.pending_frames == stats.waiting_frames
    assert job.state == (job_pb2.FINISHED if stats.waiting_frames == 0 else job_pb2.PENDING)
    assert not job.is_paused
    comments = job_stub.GetComments(job_pb2.JobGetCommentsRequest(job=JOB)).comments.comments
    assert len(comments) == 8 * rounds
