"""Several Cuebots: calls spread over the connected ones, a gone one skipped, reads retried."""

from __future__ import annotations

import grpc
import pytest

from opencue_gateway.cuebots import Cuebots
from tests.memory import InProcessCuebot, ThreadlessReactor, memory_gateway

STATE = grpc.ChannelConnectivity
GET_SHOWS = "/show.ShowInterface/GetShows"
PAUSE = "/job.JobInterface/Pause"


def cuebots(catalog, *states):
    channels = {f"cb{i}:8443": InProcessCuebot(catalog, state=state)
                for i, state in enumerate(states, start=1)}
    reactor = ThreadlessReactor()
    group = Cuebots(reactor, channels.__getitem__, catalog)
    group.start(list(channels))
    reactor.advance(0)
    return group, channels


def picks(group, count: int) -> list[str]:
    return [group.pick().name for _ in range(count)]


def test_calls_go_round_robin_over_connected_cuebots(catalog):
    """Three connected Cuebots share the calls evenly, in turn."""
    group, _ = cuebots(catalog, STATE.READY, STATE.READY, STATE.READY)
    chosen = picks(group, 6)
    assert sorted(chosen) == ["cb1:8443"] * 2 + ["cb2:8443"] * 2 + ["cb3:8443"] * 2
    assert chosen[:3] == chosen[3:]


def test_a_failing_cuebot_is_skipped_and_used_again_when_back(catalog):
    """TRANSIENT_FAILURE takes a Cuebot out of the turn; READY brings it back."""
    group, _ = cuebots(catalog, STATE.READY, STATE.READY)
    group.endpoints[1].watch(STATE.TRANSIENT_FAILURE)
    assert set(picks(group, 4)) == {"cb1:8443"}
    group.endpoints[1].watch(STATE.READY)
    assert set(picks(group, 4)) == {"cb1:8443", "cb2:8443"}


def test_connected_before_idle_before_connecting(catalog):
    """Without a connected Cuebot an idle one is used; with none usable, one is tried anyway."""
    group, _ = cuebots(catalog, STATE.CONNECTING, STATE.IDLE)
    assert set(picks(group, 4)) == {"cb2:8443"}
    group.endpoints[1].watch(STATE.TRANSIENT_FAILURE)
    assert picks(group, 1)[0] in ("cb1:8443", "cb2:8443")


def test_avoid_takes_another_when_there_is_one(catalog):
    """A retry avoids the Cuebot that just failed, unless it is the only one."""
    group, _ = cuebots(catalog, STATE.READY, STATE.READY)
    first = group.endpoints[0]
    assert all(group.pick(avoid=first) is group.endpoints[1] for _ in range(4))
    alone, _ = cuebots(catalog, STATE.READY)
    assert alone.pick(avoid=alone.endpoints[0]) is alone.endpoints[0]


def test_the_whole_is_as_good_as_its_best_member(catalog):
    """The group's state is READY while any Cuebot is; each is named with its own."""
    group, _ = cuebots(catalog, STATE.TRANSIENT_FAILURE, STATE.READY)
    assert group.state == STATE.READY
    assert group.states() == {"cb1:8443": "TRANSIENT_FAILURE", "cb2:8443": "READY"}
    assert group.names == "cb1:8443,cb2:8443"


@pytest.fixture
def two(catalog):
    """A gateway in memory before two Cuebots; the first has just died (still looks READY)."""
    channels = {"cb1:8443": InProcessCuebot(catalog, reachable=False),
                "cb2:8443": InProcessCuebot(catalog)}
    gw = memory_gateway(catalog, open_channel=channels.__getitem__,
                        CUEBOT_ENDPOINT="cb1:8443,cb2:8443", FAN_IN="false")
    return gw, channels


def test_a_read_that_could_not_reach_its_cuebot_is_tried_on_another(two):
    """Every read succeeds: the one sent to the dead Cuebot is retried on the live one, and
    the dead one, now known to be failing, gets no more."""
    gw, channels = two
    assert [gw.post(GET_SHOWS).status for _ in range(4)] == [200] * 4
    assert len(channels["cb2:8443"].calls(GET_SHOWS)) == 4
    assert len(channels["cb1:8443"].calls(GET_SHOWS)) == 1


def test_a_mutation_is_never_sent_twice(two):
    """A mutation whose Cuebot could not be reached is a 503 naming it, not retried; the next
    one goes to the live Cuebot."""
    gw, channels = two
    first = gw.post(PAUSE, '{"job": {"id": "j"}}')
    assert first.status == 503
    assert gw.json(first)["message"] == "Cuebot at cb1:8443 could not be reached"
    assert gw.post(PAUSE, '{"job": {"id": "j"}}').status == 200
    assert (len(channels["cb1:8443"].calls(PAUSE)), len(channels["cb2:8443"].calls(PAUSE))) == (
        1, 1)


@pytest.mark.parametrize(("code", "details"), [
    (grpc.StatusCode.UNAVAILABLE, "Cancelling all calls"),
    (grpc.StatusCode.CANCELLED, "CANCELLED"),
])
def test_a_read_its_cuebot_gave_up_on_while_going_down_is_tried_on_another(catalog, code,
                                                                          details):
    """A Cuebot shutting down ends the calls it holds (UNAVAILABLE or CANCELLED of its own);
    a read is then answered by the other Cuebot, a mutation gets the error."""
    going = InProcessCuebot(catalog)
    going.behave(GET_SHOWS, error=(code, details))
    going.behave(PAUSE, error=(code, details))
    channels = {"cb1:8443": going, "cb2:8443": InProcessCuebot(catalog)}
    gw = memory_gateway(catalog, open_channel=channels.__getitem__,
                        CUEBOT_ENDPOINT="cb1:8443,cb2:8443", FAN_IN="false")
    assert gw.post(GET_SHOWS).status == 200
    assert len(channels["cb2:8443"].calls(GET_SHOWS)) == 1
    # Round-robin: the read took turns cb1 (failed) and cb2; the mutation's turn is cb1.
    assert gw.post(PAUSE, '{"job": {"id": "j"}}').status in (503, 499)
    assert (len(channels["cb1:8443"].calls(PAUSE)), len(channels["cb2:8443"].calls(PAUSE))) == (
        1, 0)
