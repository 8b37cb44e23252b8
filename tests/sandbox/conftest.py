"""Fixtures for the sandbox Cuebot tests: a fresh server per test and timed stubs."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import grpc
import pytest
from opencue_proto import host_pb2_grpc, job_pb2_grpc, show_pb2_grpc

from opencue_gateway.sandbox import Farm, SandboxServer
from tests.sandbox.sandbox_support import CALL_TIMEOUT, START, FakeClock, TimedStub


@pytest.fixture
def clock() -> FakeClock:
    """The farm's clock, at START until a test advances it."""
    return FakeClock(START)


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    """A running sandbox Cuebot with the seed farm, stopped after the test."""
    server = SandboxServer(farm=Farm.seeded(clock=clock))
    server.start()
    yield server
    server.stop(grace=None)


@pytest.fixture
def channel(sandbox: SandboxServer) -> Iterator[grpc.Channel]:
    """A connected insecure channel to the sandbox."""
    with grpc.insecure_channel(sandbox.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
        yield channel


@pytest.fixture
def cue(channel: grpc.Channel) -> SimpleNamespace:
    """Timed stubs for every service the sandbox implements, by short name."""
    return SimpleNamespace(
        show=TimedStub(show_pb2_grpc.ShowInterfaceStub(channel)),
        job=TimedStub(job_pb2_grpc.JobInterfaceStub(channel)),
        frame=TimedStub(job_pb2_grpc.FrameInterfaceStub(channel)),
        layer=TimedStub(job_pb2_grpc.LayerInterfaceStub(channel)),
        group=TimedStub(job_pb2_grpc.GroupInterfaceStub(channel)),
        host=TimedStub(host_pb2_grpc.HostInterfaceStub(channel)),
        owner=TimedStub(host_pb2_grpc.OwnerInterfaceStub(channel)),
        proc=TimedStub(host_pb2_grpc.ProcInterfaceStub(channel)),
        deed=TimedStub(host_pb2_grpc.DeedInterfaceStub(channel)),
    )

