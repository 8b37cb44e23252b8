"""Fixtures for the sandbox Cuebot tests: a fresh server per test and timed stubs."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import grpc
import pytest
from opencue_proto import (
    comment_pb2_grpc,
    department_pb2_grpc,
    depend_pb2_grpc,
    facility_pb2_grpc,
    filter_pb2_grpc,
    host_pb2_grpc,
    job_pb2_grpc,
    limit_pb2_grpc,
    renderPartition_pb2_grpc,
    service_pb2_grpc,
    show_pb2_grpc,
    subscription_pb2_grpc,
    task_pb2_grpc,
)

from opencue_gateway.sandbox import Farm, SandboxServer
from opencue_gateway.sandbox.seed import seeded_farm
from tests.sandbox.sandbox_support import CALL_TIMEOUT, START, FakeClock, TimedStub

# Stub name -> generated stub class, for every service the sandbox implements.
STUBS = {
    "show": show_pb2_grpc.ShowInterfaceStub,
    "job": job_pb2_grpc.JobInterfaceStub,
    "frame": job_pb2_grpc.FrameInterfaceStub,
    "layer": job_pb2_grpc.LayerInterfaceStub,
    "group": job_pb2_grpc.GroupInterfaceStub,
    "host": host_pb2_grpc.HostInterfaceStub,
    "owner": host_pb2_grpc.OwnerInterfaceStub,
    "proc": host_pb2_grpc.ProcInterfaceStub,
    "deed": host_pb2_grpc.DeedInterfaceStub,
    "comment": comment_pb2_grpc.CommentInterfaceStub,
    "department": department_pb2_grpc.DepartmentInterfaceStub,
    "depend": depend_pb2_grpc.DependInterfaceStub,
    "facility": facility_pb2_grpc.FacilityInterfaceStub,
    "allocation": facility_pb2_grpc.AllocationInterfaceStub,
    "filter": filter_pb2_grpc.FilterInterfaceStub,
    "action": filter_pb2_grpc.ActionInterfaceStub,
    "matcher": filter_pb2_grpc.MatcherInterfaceStub,
    "limit": limit_pb2_grpc.LimitInterfaceStub,
    "partition": renderPartition_pb2_grpc.RenderPartitionInterfaceStub,
    "service": service_pb2_grpc.ServiceInterfaceStub,
    "override": service_pb2_grpc.ServiceOverrideInterfaceStub,
    "subscription": subscription_pb2_grpc.SubscriptionInterfaceStub,
    "task": task_pb2_grpc.TaskInterfaceStub,
}


def stubs(channel: grpc.Channel) -> SimpleNamespace:
    """Timed stubs for every service the sandbox implements, by short name."""
    return SimpleNamespace(**{name: TimedStub(stub(channel)) for name, stub in STUBS.items()})


@pytest.fixture
def clock() -> FakeClock:
    """The farm's clock, at START until a test advances it."""
    return FakeClock(START)


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    """A running sandbox Cuebot with the seed farm, stopped after the test."""
    server = SandboxServer(farm=seeded_farm(clock=clock))
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
    return stubs(channel)


@pytest.fixture
def serve() -> Iterator[Callable[[Farm], SimpleNamespace]]:
    """Serve any farm: returns stubs (and ``.server``); every server stops after the test.

    Generated farms are frozen out of the garbage collector's sight, so
    teardown unfreezes and collects, and a big farm does not outlive its test.
    """
    started: list[tuple[SandboxServer, grpc.Channel]] = []

    def start(farm: Farm) -> SimpleNamespace:
        server = SandboxServer(farm=farm)
        server.start()
        channel = grpc.insecure_channel(server.address)
        started.append((server, channel))
        grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
        namespace = stubs(channel)
        namespace.server = server
        return namespace

    yield start
    for server, channel in started:
        channel.close()
        server.stop(grace=None)
    started.clear()
    gc.unfreeze()
    gc.collect()
