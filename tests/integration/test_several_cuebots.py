"""Several Cuebots over real grpcio: spread, failover under load, recovery on restart."""

from __future__ import annotations

import time

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.task import deferLater

from tests.cuebot_double import CuebotDouble

GET_SHOWS = "/show.ShowInterface/GetShows"
# Requests kept in flight at once by the load.
CLIENTS = 4


class Load:
    """CLIENTS loops of reads until stopped; every status recorded with its time."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self.statuses: list[tuple[float, int]] = []
        self.running = True

    async def loop(self) -> None:
        while self.running:
            response = await self.gateway.post(GET_SHOWS)
            self.statuses.append((time.monotonic(), response.status))

    def start(self) -> DeferredList:
        return DeferredList([ensureDeferred(self.loop()) for _ in range(CLIENTS)])

    def failures(self) -> list[int]:
        return [status for _, status in self.statuses if status != 200]


async def wait(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


async def until(condition, seconds: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "the condition never held"
        await wait(0.05)
    return time.monotonic() - started


@pytest_twisted.ensureDeferred
async def test_calls_spread_fail_over_and_come_back(start_gateway, catalog):
    """Two Cuebots share the calls; one is killed under load and no read fails; restarted on
    its port, it gets calls again; /readyz names both all along."""
    first, second = CuebotDouble(catalog).start(), CuebotDouble(catalog).start()
    port = first.port
    gateway = start_gateway(CUEBOT_ENDPOINT=f"{first.address},{second.address}",
                            FAN_IN="false")
    load = Load(gateway)
    running = load.start()
    try:
        await until(lambda: len(first.received) >= 20 and len(second.received) >= 20, 30)
        first.stop()
        killed_at = time.monotonic()
        before = len(second.received)
        await until(lambda: len(second.received) >= before + 40, 30)
        ready = (await gateway.request("GET", "/readyz", None)).json()
        assert ready["status"] == "ready"
        assert ready["cuebots"][second.address] == "READY"
        assert ready["cuebots"][first.address] != "READY"
        restarted = CuebotDouble(catalog).start(port)
        try:
            back = await until(lambda: len(restarted.received) >= 5, 30)
        finally:
            load.running = False
            await running
            restarted.stop()
    finally:
        load.running = False
        second.stop()
    assert load.failures() == []
    after_kill = [s for t, s in load.statuses if t > killed_at]
    assert len(after_kill) >= 40
    assert back < 30
