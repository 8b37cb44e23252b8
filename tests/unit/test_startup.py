"""What a starting gateway says."""

from __future__ import annotations

from twisted.logger import formatEvent

from opencue_gateway.startup import log_start
from tests.memory import memory_gateway


def lines(captured_logs) -> list[str]:
    return [formatEvent(e) for e in captured_logs
            if e.get("log_namespace") == "opencue_gateway.startup"]


def test_sandbox_mode_says_it_listens_on_loopback_only_and_prints_a_token(catalog,
                                                                         captured_logs):
    """With --sandbox on its default host, the log says why only 127.0.0.1 serves, and the
    export line holds a token."""
    gw = memory_gateway(catalog, SANDBOX="true", SANDBOX_PRESET="readme", REST_HOST=None,
                        JWT_SECRET=None)
    log_start(gw.gateway, ["http://127.0.0.1:8448"], None)
    said = lines(captured_logs)
    assert any(line.startswith("sandbox mode listens on 127.0.0.1 only") for line in said)
    assert any("export JWT_TOKEN=ey" in line for line in said)


def test_sandbox_mode_on_another_host_says_nothing_of_loopback(catalog, captured_logs):
    """REST_HOST given: no loopback line."""
    gw = memory_gateway(catalog, SANDBOX="true", SANDBOX_PRESET="readme", REST_HOST="0.0.0.0",
                        JWT_SECRET=None)
    log_start(gw.gateway, ["http://0.0.0.0:8448"], None)
    assert not any("127.0.0.1 only" in line for line in lines(captured_logs))
