"""The Cuebot channel's service says when Cuebot cannot be reached, and when it can again."""

from __future__ import annotations

import grpc

from opencue_gateway.services import STARTUP_CHECK_SECONDS, CuebotChannelService
from tests.memory import memory_gateway

STATE = grpc.ChannelConnectivity


def started(catalog, state):
    harness = memory_gateway(catalog)
    harness.gateway.cuebot.stop()
    harness.cuebot.state = state
    service = CuebotChannelService(harness.gateway.cuebot, lambda: "cuebot:8443",
                                   harness.reactor)
    service.startService()
    return harness, service


def messages(captured_logs, namespace="opencue_gateway.services"):
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in captured_logs if e.get("log_namespace") == namespace]


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
    """After start-up, each change between reachable and not is one line."""
    harness, service = started(catalog, STATE.TRANSIENT_FAILURE)
    harness.reactor.advance(STARTUP_CHECK_SECONDS)
    client = harness.gateway.cuebot
    for state in (STATE.CONNECTING, STATE.READY, STATE.IDLE, STATE.READY,
                  STATE.TRANSIENT_FAILURE, STATE.CONNECTING, STATE.TRANSIENT_FAILURE):
        client._track_state(state)
        harness.reactor.advance(0)
    lines = messages(captured_logs)
    assert len(lines) == 3
    assert lines[1] == "Cuebot at cuebot:8443 can be reached again"
    assert lines[2].startswith("Cuebot at cuebot:8443 cannot be reached")
    service.stopService()


def test_a_healthy_start_says_nothing(catalog, captured_logs):
    """Connected at once: no line at all."""
    harness, service = started(catalog, STATE.READY)
    harness.reactor.advance(STARTUP_CHECK_SECONDS * 2)
    assert messages(captured_logs) == []
    service.stopService()
