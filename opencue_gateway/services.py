"""The process's service tree: one small service per resource, stopped in reverse order.

twistd starts the tree's children in the order they were added and, through
:class:`SequentialMultiService`, stops them one at a time in reverse, each
waiting for the one before it.  So the order of ``addService`` calls in
service.py is the start-up order and, read backwards, the drain: stop
announcing readiness, stop listening, finish requests, then release the
audit file, the sandbox, the channel and the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from twisted.application.service import MultiService, Service
from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.threadpool import ThreadPool

from opencue_gateway.audit import AuditFileObserver, start_audit_file, stop_audit_file
from opencue_gateway.cuebots import Endpoint
from opencue_gateway.logs import logger
from opencue_gateway.tracing import OtelTracing
from opencue_gateway.upstream import CuebotClient

log = logger(__name__)

# How long a starting gateway gives the channel to connect before it warns.
STARTUP_CHECK_SECONDS = 3.0


class SequentialMultiService(MultiService):
    """A MultiService that stops its children one after another, last added first.

    Twisted's MultiService stops every child at once; a drain needs each step
    to finish before the next begins (no channel closed under a running call).
    """

    @inlineCallbacks
    def stopService(self) -> Any:
        """Stop each running child in reverse order, waiting for each.

        A child that fails to stop is logged and the others still stop: a
        broken audit file must not leave the channel open.
        """
        Service.stopService(self)
        for child in reversed(list(self)):
            if not child.running:
                continue
            try:
                yield maybeDeferred(child.stopService)
            except Exception:
                log.failure("stopping {service} failed", service=type(child).__name__)


class ThreadPoolService(Service):
    """The thread pool Cuebot calls run in: started with the process, stopped last."""

    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool

    def startService(self) -> None:
        """Start the pool's threads (on demand, up to its size)."""
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        """Join the pool's threads; by now no call is running."""
        super().stopService()
        self.pool.stop()


class CuebotChannelService(Service):
    """The long-lived channels to Cuebot, opened to wherever ``endpoints()`` says.

    It says when a Cuebot cannot be reached: once at start-up for each
    endpoint not connected after STARTUP_CHECK_SECONDS, then at every change
    of an endpoint between connected and failing, so an operator reads why
    requests get 503 (or, with several Cuebots, which one is gone).
    """

    def __init__(self, cuebot: CuebotClient, endpoints: Callable[[], Sequence[str]],
                 clock: IReactorTime) -> None:
        self.cuebot = cuebot
        self._endpoints = endpoints
        self._clock = clock
        self._check: IDelayedCall | None = None
        # Per endpoint, what was last said: reachable (True) or not (False).
        self._reported: dict[str, bool] = {}

    def startService(self) -> None:
        """Open the channels (the sandbox, when there is one, has started before)."""
        super().startService()
        self.cuebot.cuebots.on_state = self._state_changed
        self.cuebot.start(self._endpoints())
        self._check = self._clock.callLater(STARTUP_CHECK_SECONDS, self._start_up_report)

    def _start_up_report(self) -> None:
        """The start-up check: every endpoint not connected by now is named."""
        self._check = None
        for endpoint in self.cuebot.cuebots.endpoints:
            self._report(endpoint, start_up=True)

    def _state_changed(self, endpoint: Endpoint, state: grpc.ChannelConnectivity) -> None:
        """After the start-up check, report each change between connected and failing."""
        if self._check is None:
            self._report(endpoint, start_up=False)

    def _report(self, endpoint: Endpoint, start_up: bool) -> None:
        """Log whether this Cuebot can be reached, if that changed since the last report."""
        ready = endpoint.state == grpc.ChannelConnectivity.READY
        failing = endpoint.state == grpc.ChannelConnectivity.TRANSIENT_FAILURE
        said = self._reported.get(endpoint.name)
        if ready and said is not True:
            if said is not None:
                log.info("Cuebot at {endpoint} can be reached again", endpoint=endpoint.name)
            self._reported[endpoint.name] = True
        elif not ready and said is not False and (failing or start_up):
            state = endpoint.state.name if endpoint.state else "not started"
            log.warn("Cuebot at {endpoint} cannot be reached (channel {state}); {then}",
                     endpoint=endpoint.name, state=state, then=self._consequence())
            self._reported[endpoint.name] = False

    def _consequence(self) -> str:
        """What a Cuebot being gone means for requests."""
        if self.cuebot.cuebots.several:
            return "calls go to the other Cuebots until it can"
        return "requests get 503 until it can"

    def stopService(self) -> Any:
        """Close the channels once grpc's connectivity watchers have let go of them."""
        super().stopService()
        if self._check is not None and self._check.active():
            self._check.cancel()
        self.cuebot.cuebots.on_state = None
        return self.cuebot.stop()


class SandboxService(Service):
    """The embedded sandbox Cuebot (``--sandbox``): a grpcio server on a loopback port."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def startService(self) -> None:
        """Bind and serve; its address is known from here on."""
        super().startService()
        self.server.start()

    def stopService(self) -> None:
        """Stop at once: every gateway call to it has ended."""
        super().stopService()
        self.server.stop(grace=0)


class AuditFileService(Service):
    """AUDIT_LOG_FILE: audit records also go to this file as JSON lines."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._observer: AuditFileObserver | None = None

    def privilegedStartService(self) -> None:
        """Open the file before privileges drop; failing to is one line and exit 1."""
        super().privilegedStartService()
        try:
            self._observer = start_audit_file(self.path)
        except OSError as error:
            raise SystemExit(f"opencue-gateway: AUDIT_LOG_FILE: cannot open {self.path!r}: "
                             f"{error.strerror}") from None

    def startService(self) -> None:
        """Open the file if twistd did not call privilegedStartService (tests)."""
        if self._observer is None:
            self.privilegedStartService()
        super().startService()

    def stopService(self) -> None:
        """Close the file after the last audited request."""
        super().stopService()
        if self._observer is not None:
            stop_audit_file(self._observer)
            self._observer = None


class TracingService(Service):
    """OpenTelemetry's exporter: spans still buffered are flushed when the process stops."""

    def __init__(self, tracing: OtelTracing) -> None:
        self.tracing = tracing

    def stopService(self) -> None:
        """Flush and close the exporter."""
        super().stopService()
        self.tracing.shutdown()
