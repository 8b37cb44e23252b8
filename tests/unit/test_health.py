"""Readiness from the Cuebot channel's state, the worker queue and the drain."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest

from opencue_gateway.health import Health


@dataclass
class FakeEndpoints:
    states_by_name: dict[str, str] = field(default_factory=lambda: {"cuebot:8443": "READY"})

    @property
    def several(self) -> bool:
        return len(self.states_by_name) > 1

    def states(self) -> dict[str, str]:
        return self.states_by_name


@dataclass
class FakeCuebot:
    state: grpc.ChannelConnectivity | None
    accepting: bool = True
    connects: int = 0
    cuebots: FakeEndpoints = field(default_factory=FakeEndpoints)

    def connect(self) -> None:
        self.connects += 1


@pytest.mark.parametrize(("state", "status"), [
    (grpc.ChannelConnectivity.READY, 200),
    (grpc.ChannelConnectivity.IDLE, 200),
    (grpc.ChannelConnectivity.CONNECTING, 503),
    (grpc.ChannelConnectivity.TRANSIENT_FAILURE, 503),
    (None, 503),
])
def test_ready_follows_the_channel(state, status):
    """Connected or idle (it reconnects on the next call) is ready; anything else is not."""
    assert Health(FakeCuebot(state)).ready().status == status


def test_a_probe_asks_a_channel_that_is_not_connected_to_connect():
    """An idle or failed channel reconnects only when asked: each probe asks."""
    idle = FakeCuebot(grpc.ChannelConnectivity.IDLE)
    Health(idle).ready()
    connected = FakeCuebot(grpc.ChannelConnectivity.READY)
    Health(connected).ready()
    assert (idle.connects, connected.connects) == (1, 0)


def test_draining_and_a_full_queue_are_named():
    """Each reason the gateway should get no traffic is listed."""
    health = Health(FakeCuebot(grpc.ChannelConnectivity.TRANSIENT_FAILURE, accepting=False))
    health.draining = True
    probe = health.ready()
    assert probe.status == 503
    assert probe.body["reasons"] == ["draining: the gateway is shutting down",
                                     "cuebot channel is TRANSIENT_FAILURE",
                                     "the worker queue is full"]


def test_with_several_cuebots_one_connected_is_ready_and_each_is_named():
    """Ready while any Cuebot can be reached; the answer names every endpoint's state."""
    several = FakeEndpoints({"cb1:8443": "READY", "cb2:8443": "TRANSIENT_FAILURE"})
    probe = Health(FakeCuebot(grpc.ChannelConnectivity.READY, cuebots=several)).ready()
    assert (probe.status, probe.body) == (200, {
        "status": "ready", "cuebots": {"cb1:8443": "READY", "cb2:8443": "TRANSIENT_FAILURE"}})
    down = FakeEndpoints({"cb1:8443": "CONNECTING", "cb2:8443": "TRANSIENT_FAILURE"})
    probe = Health(FakeCuebot(grpc.ChannelConnectivity.CONNECTING, cuebots=down)).ready()
    assert probe.status == 503
    assert probe.body["reasons"] == ["no Cuebot channel is connected"]
    assert probe.body["cuebots"] == down.states_by_name
