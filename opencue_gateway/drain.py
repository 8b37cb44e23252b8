"""A graceful stop in services that bracket the listeners in the service tree.

On SIGTERM the tree stops in reverse order, so a stop reads:

0. :class:`WatchDrain` (added last, stopped first): every watch stream ends
   with ``event: end`` (reason ``draining``) and new watches are refused.
1. :class:`DrainNotice` (added after the listeners, stopped first): ``/readyz``
   fails at once while requests are still served for DRAIN_DELAY, so load
   balancers stop sending; each answer from then on closes its connection.
2. The listeners stop: new connections are refused.
3. :class:`InFlight` (added before the listeners, stopped after them): calls in
   flight may finish, up to SHUTDOWN_GRACE; then every connection is closed
   once its answer has been flushed.

Only then do the services added earlier (audit file, sandbox, channel, pool)
stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from opencue_gateway.health import Health
from opencue_gateway.logs import logger
from opencue_gateway.site import GatewaySite
from opencue_gateway.watch import WatchHub

log = logger(__name__)

# How often a stop checks for finished requests and closed connections.
POLL_SECONDS = 0.05


class DrainNotice(Service):
    """Stopping: tell probes and clients the gateway is going away, then give them time.

    From the first moment of a drain ``/readyz`` fails and every answer
    carries ``Connection: close``, so keep-alive clients open their next
    request elsewhere instead of on a connection about to close.
    """

    def __init__(self, health: Health, site: GatewaySite, clock: IReactorTime,
                 delay: float) -> None:
        self._health = health
        self._site = site
        self._clock = clock
        self._delay = delay

    @inlineCallbacks
    def stopService(self) -> Any:
        """Fail /readyz, close connections after their answers, keep serving for DRAIN_DELAY."""
        super().stopService()
        self._health.draining = True
        self._site.draining = True
        if self._delay > 0:
            log.info("draining: /readyz now fails; still serving for {delay}s", delay=self._delay)
            yield deferLater(self._clock, self._delay, lambda: None)
        log.info("stopping: no longer accepting connections")


class InFlight(Service):
    """Stopping, once the listeners are closed: let requests finish, then close connections."""

    def __init__(self, site: GatewaySite, clock: IReactorTime, grace: float) -> None:
        self._site = site
        self._clock = clock
        self._grace = grace

    @inlineCallbacks
    def stopService(self) -> Any:
        """Wait for answers (up to SHUTDOWN_GRACE), then close connections after flushing."""
        super().stopService()
        deadline = self._clock.seconds() + self._grace
        yield self._wait_until(lambda: self._site.active_requests == 0, deadline)
        self._site.close_idle_connections()
        yield self._wait_until(lambda: not self._site.channels, deadline)
        if self._site.active_requests:
            log.warn("{count} requests were still running after SHUTDOWN_GRACE",
                     count=self._site.active_requests)

    def _wait_until(self, condition: Callable[[], bool], deadline: float) -> Deferred[None]:
        """Poll ``condition`` on the clock until it holds or ``deadline`` passes."""

        @inlineCallbacks
        def poll() -> Any:
            while not condition() and self._clock.seconds() < deadline:
                yield deferLater(self._clock, POLL_SECONDS, lambda: None)

        return poll()


class WatchDrain(Service):
    """Stopping, first of all: every watch stream ends (``event: end``, reason ``draining``).

    A stream never finishes on its own, so waiting for it would only spend
    SHUTDOWN_GRACE; its client reconnects, to another gateway once /readyz
    has turned it away.  From here on new watches are refused with 503.
    """

    def __init__(self, watches: WatchHub) -> None:
        self._watches = watches

    def stopService(self) -> None:
        """End every stream now."""
        super().stopService()
        self._watches.drain()
