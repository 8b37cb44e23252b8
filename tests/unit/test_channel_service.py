"""The Cuebot channels' service says when a Cuebot cannot be reached, and when it can again."""

from __future__ import annotations

import grpc
from twisted.logger import formatEvent

from opencue_gateway.services import STARTUP_CHECK_SECONDS, CuebotChannelService
from tests.memory import memory_gateway

STATE = grpc.ChannelConnectivity


def started(catalog, state, endpoints=("cuebot:8443",)):
    harness = memory_gateway(catalog)
    harness.gateway.cuebot.stop()
    harness.reactor.advance(1)
    harness.cuebot.state = state
    service = CuebotChannelService(harness.gateway.cuebot, lambda: list(endpoints),
                                   harness.reactor)
    service.startService()
    harness.reactor.advance(0)
    return harness, service


def messages(captured_logs, namespace="opencue_gateway.services"):
    return [formatEvent(e) for e in captured_logs if e.get("log_namespace") == namespace]


def become(harness, endpoint_index: int, state) -> None:
    """What grpc's thread does when a channel changes state."""
    endpoint = harness.gateway.cuebot.cuebots.endpoints[endpoint_index]
    endpoint.watch(state)
    harness.reactor.advance(0)


def test_an_unreachable_cuebot_is_named_at_start_up(catalog, captured_logs):
    """Not connected after STARTUP_CHECK_SECONDS: one warning naming the endpoint and state."""
    harness, service = started(catalog, STATE.TRANSIENT_FAILURE)
    harness.reactor.advance(STARTUP_CHECK_SECONDS - 0.1)
    assert messages(captured_logs) == []
    harness.reactor.advance(0.2)
    assert messages(captured_logs) == [
        "Cuebot at cuebot:8443 cannot be reached (channel TRANSIENT_FAILURE); requests get "
        "503 until it can"]
    service.stopService()


def test_coming_back_and_going_away_are_each_told_once(catalog, captured_logs):
    """After start-up, each change between reachable and failing is one line."""
    harness, service = started(catalog, STATE.TRANSIENT_FAILURE)
    harness.reactor.advance(STARTUP_CHECK_SECONDS)
    for state in (STATE.CONNECTING, STATE.READY, STATE.IDLE, STATE.READY,
                  STATE.TRANSIENT_FAILURE, STATE.CONNECTING, STATE.TRANSIENT_FAILURE):
        become(harness, 0, state)
    lines = messages(captured_logs)
    assert len(lines) == 3
    assert lines[1] == "Cuebot at cuebot:8443 can be reached again"
    assert lines[2].startswith("Cuebot at cuebot:8443 cannot be reached")
    service.stopService()


def test_with_several_cuebots_each_is_named_and_the_others_carry_the_calls(catalog,
                                                                          captured_logs):
    """Two Cuebots, one gone: the warning names it and says calls go to the others."""
    harness, service = started(catalog, STATE.READY, ("cb1:8443", "cb2:8443"))
    harness.reactor.advance(STARTUP_CHECK_SECONDS)
    become(harness, 1, STATE.TRANSIENT_FAILURE)
    assert messages(captured_logs) == [
        "Cuebot at cb2:8443 cannot be reached (channel TRANSIENT_FAILURE); calls go to the "
        "other Cuebots until it can"]
    service.stopService()


def test_a_healthy_start_says_nothing(catalog, captured_logs):
    """Connected at once: no line at all."""
    harness, service = started(catalog, STATE.READY)
    harness.reactor.advance(STARTUP_CHECK_SECONDS * 2)
    assert messages(captured_logs) == []
    service.stopService()
