"""Watch streams: one Cuebot poll per distinct question, changes pushed as Server-Sent Events.

A read-only call sent with ``Accept: text/event-stream`` is a *watch*: the
same path and JSON body as the unary call, answered with a stream of events
(WHATWG HTML section 9.2) instead of one reply:

- ``event: snapshot`` first, its ``data`` the reply JSON exactly as the unary
  call prints it; ``event: change`` with the whole new reply each time it
  differs from the last one sent (no patch form: most replies are lists, which
  a JSON merge patch replaces whole anyway);
- ``event: error`` with the usual JSON error body when a poll fails; the
  stream goes on, and a failure that polling again cannot cure (not found,
  permission denied, a malformed request) ends it;
- ``event: end`` with ``{"reason": ..., "message": ...}`` before the gateway
  closes a stream: ``token_expired``, ``revoked`` (SIGHUP reloaded a policy
  that no longer allows the call), ``draining``, ``time_limit``
  (WATCH_MAX_DURATION) or ``error``;
- a comment line every WATCH_HEARTBEAT, so proxies keep the connection, and
  an ``id`` on every event; a client reconnecting with ``Last-Event-ID: n``
  gets a fresh snapshot with ids continuing from ``n + 1``.

Sharing: every watch of the same (method, request bytes, forwarded
``Grpc-Metadata-*`` headers, interval) is served by one :class:`Poller`.  It
exists only while someone watches, polls ``interval`` after each answer, and
its calls go through the Cuebot client and the fan-in like unary reads (so a
poll and an identical unary read share a call).  A watcher joining a running
poller gets the poller's latest reply as its snapshot: at most one interval
old, like everything else the stream says.

Authentication, rate limiting and the role policy ran before a watch gets
here (app.py).  This module adds the watch limits (WATCH_MAX_PER_PRINCIPAL,
WATCH_MAX_TOTAL) and ends the streams it must end.  Until a stream's first
event is written, a watch is an ordinary request (HTTP_TIMEOUT applies, and a
failure is an ordinary JSON error); from then on it lives until it ends.
A client that reads slower than events come is sent only the latest state
when it catches up (the watcher is a push producer of its connection).
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import orjson
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from zope.interface import implementer

from opencue_gateway.auth import Principal
from opencue_gateway.catalog import RpcMethod
from opencue_gateway.compression import request_encoding
from opencue_gateway.context import context_of
from opencue_gateway.errors import INTERNAL_MESSAGE, GatewayError, render_error
from opencue_gateway.fanin import FanIn
from opencue_gateway.logs import logger
from opencue_gateway.metadata import forwarded_metadata, metadata_from_headers
from opencue_gateway.parsers import parse_duration
from opencue_gateway.policy import Policy
from opencue_gateway.upstream import CuebotClient, RpcResult

EVENT_STREAM = "text/event-stream"
INTERVAL_HEADER = b"Opencue-Gateway-Watch-Interval"
HEARTBEAT = b": heartbeat\n\n"
# Polls sent for watches carry this request id prefix, then the poller's id.
POLL_ID_PREFIX = "watch-"

# Why a watch ended: the reasons of `event: end`, and the metrics labels (with client_gone).
EXPIRED = "token_expired"
REVOKED = "revoked"
DRAINING = "draining"
TIME_LIMIT = "time_limit"
FAILED = "error"
CLIENT_GONE = "client_gone"
END_REASONS = (EXPIRED, REVOKED, DRAINING, TIME_LIMIT, FAILED, CLIENT_GONE)

# Poll failures that polling again cannot cure: they end the watch.
TERMINAL_CODES = frozenset({
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.OUT_OF_RANGE,
})

_LAST_EVENT_ID = re.compile(rb"\s*(\d{1,18})\s*\Z")
log = logger(__name__)


@dataclass(frozen=True, slots=True)
class WatchLimits:
    """The WATCH_* settings, and JWT_LEEWAY (a token expires for a watch when it would
    for a unary call)."""

    interval: float
    min_interval: float
    heartbeat: float
    max_per_principal: int
    max_total: int
    max_duration: float
    token_leeway: float


class WatchObserver(Protocol):
    """Who counts what watches do: the metrics."""

    def watch_opened(self) -> None:
        """A watch was admitted."""

    def watch_ended(self, reason: str) -> None:
        """A watch ended, for one of END_REASONS."""

    def poller_started(self) -> None:
        """A poller started."""

    def poller_stopped(self) -> None:
        """A poller stopped (its last watcher left)."""

    def polled(self, rpc: str, code: grpc.StatusCode) -> None:
        """A poll answered."""

    def changes_pushed(self, rpc: str, count: int) -> None:
        """``count`` change events were written, one per watcher."""


def wants_stream(accept: bytes | None) -> bool:
    """Does an Accept header ask for an event stream (``text/event-stream``, q above 0)?"""
    if not accept or b"event-stream" not in accept.lower():
        return False
    for item in accept.decode("latin-1").split(","):
        media, *parameters = item.split(";")
        if media.strip().lower() == EVENT_STREAM:
            return not any(_is_zero_q(p) for p in parameters)
    return False


def _is_zero_q(parameter: str) -> bool:
    """``q=0`` (RFC 9110 section 12.4.2): the client does not accept that type at all."""
    name, _, value = parameter.partition("=")
    try:
        return name.strip().lower() == "q" and float(value) == 0
    except ValueError:
        return False


def as_gateway_error(failure: Failure) -> GatewayError:
    """A poll's failure as the error clients see; an unexpected one is logged with an id."""
    if isinstance(failure.value, GatewayError):
        return failure.value
    incident = uuid.uuid4().hex[:12]
    log.failure("unexpected error in a watch poll (incident {incident})", failure,
                incident=incident)
    return GatewayError(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE.format(incident=incident))


class WatchHub:
    """Every open watch and every poller; admits watches and ends them.

    Nothing here blocks: polls are Cuebot client calls (cancellable Deferreds
    run in the pool), and timers are the reactor's.
    """

    def __init__(
        self,
        limits: WatchLimits,
        cuebot: CuebotClient,
        reactor: IReactorTime,
        fanin: FanIn | None = None,
        observer: WatchObserver | None = None,
        on_shared: Callable[[str, str], None] = lambda rpc, kind: None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.cuebot = cuebot
        self.reactor = reactor
        self.observer = observer
        # Token expiry (`exp`) is wall-clock time; timers run on the reactor's clock.
        self.wall_clock = wall_clock
        self._fanin = fanin
        self._on_shared = on_shared
        self.draining = False
        self.pollers: dict[Hashable, Poller] = {}
        self.watchers: dict[Watcher, None] = {}
        self._owners: Counter[str] = Counter()
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = reactor

    def open(self, request: IRequest, principal: Principal, method: RpcMethod) -> Deferred[bytes]:
        """Admit a watch of a read-only method; the Deferred fires when its stream ends.

        It fails (an ordinary JSON error) if the watch is refused, or if its
        poller's first answer is a failure no retry can cure.
        """
        context = context_of(request)
        owner = f"sub:{principal.sub}" if principal.sub else f"addr:{context.client}"
        self._admit(owner)
        interval = self._interval(request)
        body = request.content.getvalue()
        encoding = request_encoding(request.getHeader(b"content-encoding"))
        forwarded = forwarded_metadata(request.requestHeaders.getAllRawHeaders())
        key = (method.path, body, encoding, forwarded, interval)
        poller = self.pollers.get(key)
        new = poller is None
        if poller is None:
            poller = self.pollers[key] = Poller(self, key, method, body, encoding, forwarded,
                                                interval)
            if self.observer is not None:
                self.observer.poller_started()
        watcher = Watcher(self, request, principal, method, owner, first_event_id(request))
        self.watchers[watcher] = None
        self._owners[owner] += 1
        if not self._heartbeat.running:
            self._heartbeat.start(self.limits.heartbeat, now=False)
        if self.observer is not None:
            self.observer.watch_opened()
        watcher.join(poller)
        if new:
            poller.poll()
        return watcher.done

    def _admit(self, owner: str) -> None:
        """Refuse a watch while draining or beyond a limit, before anything is set up."""
        limits = self.limits
        if self.draining:
            raise GatewayError(grpc.StatusCode.UNAVAILABLE,
                               "the gateway is shutting down; open the watch again elsewhere")
        if self._owners[owner] >= limits.max_per_principal:
            raise GatewayError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this caller already holds {limits.max_per_principal} watches "
                "(WATCH_MAX_PER_PRINCIPAL); close one first")
        if len(self.watchers) >= limits.max_total:
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE,
                f"the gateway holds its limit of {limits.max_total} watches (WATCH_MAX_TOTAL); "
                "retry shortly")

    def _interval(self, request: IRequest) -> float:
        """The ``interval`` query parameter, WATCH_INTERVAL without one, never under the floor."""
        values = (request.args or {}).get(b"interval")
        if not values:
            return max(self.limits.interval, self.limits.min_interval)
        if len(values) > 1:
            raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                               "give the interval query parameter once")
        try:
            interval = parse_duration(values[0].decode("latin-1"))
        except ValueError as error:
            raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"the interval query parameter: {error}") from None
        return max(interval, self.limits.min_interval)

    def fetch(self, poller: Poller) -> Deferred[RpcResult]:
        """One poll: a Cuebot call as a unary read makes it, shared through the fan-in.

        The fan-in key is the one app.py gives an identical unary read sent
        without gzip and without Grpc-Timeout, so the two share a call.
        """
        method = poller.method

        def start() -> Deferred[RpcResult]:
            return self.cuebot.call(method, poller.body, poller.metadata,
                                    self.cuebot.deadline(None), False, poller.encoding)

        if self._fanin is None:
            answer = start()
        else:
            key = (method.path, poller.body, poller.encoding, False, None, poller.forwarded)
            answer = self._fanin.call(key, start, lambda kind: self._on_shared(poller.rpc, kind))
        # A large reply comes as a stream to write; a watch compares and sends whole bodies.
        return answer.addCallback(self.cuebot.whole)

    def forget(self, watcher: Watcher, reason: str) -> None:
        """A watcher ended: stop counting it (and stop the heartbeat with the last one)."""
        if watcher not in self.watchers:
            return
        del self.watchers[watcher]
        self._owners[watcher.owner] -= 1
        if not self._owners[watcher.owner]:
            del self._owners[watcher.owner]
        if not self.watchers and self._heartbeat.running:
            self._heartbeat.stop()
        if self.observer is not None:
            self.observer.watch_ended(reason)

    def forget_poller(self, poller: Poller) -> None:
        """A poller stopped."""
        if self.pollers.get(poller.key) is poller:
            del self.pollers[poller.key]
            if self.observer is not None:
                self.observer.poller_stopped()

    def recheck(self, policy: Policy) -> None:
        """SIGHUP reloaded the policy: end the watches it no longer allows."""
        for watcher in list(self.watchers):
            if not policy.allows(watcher.principal.role, watcher.method):
                watcher.end(REVOKED, GatewayError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"the reloaded AUTH_POLICY_FILE no longer allows this caller to call "
                    f"{watcher.method.path[1:]}"))

    def drain(self) -> None:
        """The gateway is stopping: end every stream now, refuse new ones."""
        self.draining = True
        for watcher in list(self.watchers):
            watcher.end(DRAINING, GatewayError(
                grpc.StatusCode.UNAVAILABLE,
                "the gateway is shutting down; open the watch again to continue"))

    def _beat(self) -> None:
        """Write a comment to every open stream, so proxies see traffic."""
        for watcher in list(self.watchers):
            watcher.heartbeat()


def first_event_id(request: IRequest) -> int:
    """The id of a stream's first event: after the client's Last-Event-ID, else 1."""
    given = request.getHeader(b"last-event-id")
    match = _LAST_EVENT_ID.match(given) if given is not None else None
    return int(match.group(1)) + 1 if match else 1


class Poller:
    """One question asked of Cuebot every ``interval`` for everyone watching it."""

    def __init__(self, hub: WatchHub, key: Hashable, method: RpcMethod, body: bytes,
                 encoding: str | None, forwarded: tuple, interval: float) -> None:
        self.hub = hub
        self.key = key
        self.method = method
        self.rpc = method.path[1:]
        self.body = body
        self.encoding = encoding
        self.forwarded = forwarded
        self.interval = interval
        # A shared poll is on no one watcher's behalf: Cuebot gets the forwarded
        # Grpc-Metadata-* (the same for every watcher) and the poller's own request id.
        self.metadata = metadata_from_headers(
            forwarded, None, "", request_id=POLL_ID_PREFIX + uuid.uuid4().hex[:12])
        self.watchers: dict[Watcher, None] = {}
        self.latest: RpcResult | None = None
        # The last poll's failure, while polls keep failing (repeated only when it changes).
        self.failure: GatewayError | None = None
        self.stopped = False
        self._call: Deferred[RpcResult] | None = None
        self._timer: IDelayedCall | None = None

    def add(self, watcher: Watcher) -> None:
        """A watcher joins: it gets the latest reply (or failure) at once, if there is one."""
        self.watchers[watcher] = None
        if self.latest is not None:
            watcher.deliver(self.latest)
        elif self.failure is not None:
            watcher.report(self.failure)

    def remove(self, watcher: Watcher) -> None:
        """A watcher left; the last one stops the poller."""
        self.watchers.pop(watcher, None)
        if not self.watchers:
            self.stop()

    def poll(self) -> None:
        """Ask Cuebot now; the next poll is ``interval`` after the answer."""
        self._timer = None
        try:
            call = self.hub.fetch(self)
        except GatewayError as error:  # the pool is at capacity: a failed poll like any other
            call = fail(error)
        self._call = call
        call.addBoth(self._answered)

    def _answered(self, result: RpcResult | Failure) -> None:
        """Tell the watchers, then schedule the next poll (unless the poller stopped)."""
        self._call = None
        if self.stopped:
            return  # cancelled, or answered after the last watcher left
        if isinstance(result, Failure):
            self._failed(as_gateway_error(result))
        else:
            self._succeeded(result)
        if not self.stopped:
            self._timer = self.hub.reactor.callLater(self.interval, self.poll)

    def _succeeded(self, result: RpcResult) -> None:
        """Push the reply to every watcher if it differs from the last one."""
        self._observe(grpc.StatusCode.OK)
        self.failure = None
        if self.latest is not None and result.body == self.latest.body:
            return
        self.latest = result
        changes = sum(watcher.deliver(result) for watcher in list(self.watchers))
        if changes and self.hub.observer is not None:
            self.hub.observer.changes_pushed(self.rpc, changes)

    def _failed(self, error: GatewayError) -> None:
        """End every watch on a failure retries cannot cure; report others once each."""
        self._observe(error.code)
        if error.code in TERMINAL_CODES:
            for watcher in list(self.watchers):
                watcher.fail(error)
            return
        previous, self.failure = self.failure, error
        if previous is None or (previous.code, previous.message) != (error.code, error.message):
            for watcher in list(self.watchers):
                watcher.report(error)

    def _observe(self, code: grpc.StatusCode) -> None:
        if self.hub.observer is not None:
            self.hub.observer.polled(self.rpc, code)

    def stop(self) -> None:
        """No one watches any more: no further poll, and the one in flight is cancelled."""
        if self.stopped:
            return
        self.stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._call is not None:
            self._call.cancel()
        self.hub.forget_poller(self)


@implementer(IPushProducer)
class Watcher:
    """One client's stream: its events, its ids, its timers, and how it ends.

    It is its connection's push producer: while the client does not read,
    the transport pauses it, and it then keeps only the latest reply (and the
    latest failure) to write when the transport resumes it.
    """

    def __init__(self, hub: WatchHub, request: Any, principal: Principal, method: RpcMethod,
                 owner: str, first_id: int) -> None:
        self.hub = hub
        # The site's GatewayRequest: an IRequest with begin_stream() (site.py).
        self.request = request
        self.principal = principal
        self.method = method
        self.owner = owner
        self.poller: Poller | None = None
        self.streaming = False
        self.ended = False
        self._next_id = first_id
        self._has_snapshot = False
        self._paused = False
        self._pending: tuple[bytes, bytes] | None = None
        self._pending_error: GatewayError | None = None
        self._context = context_of(request)
        self.done: Deferred[bytes] = Deferred(lambda _: self.leave(CLIENT_GONE))
        self._timer = self._end_timer()
        request.notifyFinish().addBoth(lambda _: self.leave(CLIENT_GONE))

    def _end_timer(self) -> IDelayedCall | None:
        """When the token stops being accepted (or WATCH_MAX_DURATION passes), end the watch."""
        hub = self.hub
        delays = []
        expires = self.principal.claims.get("exp")
        if isinstance(expires, (int, float)):
            delays.append((expires + hub.limits.token_leeway - hub.wall_clock(), EXPIRED))
        if hub.limits.max_duration > 0:
            delays.append((hub.limits.max_duration, TIME_LIMIT))
        if not delays:
            return None
        delay, reason = min(delays)
        return hub.reactor.callLater(max(0.0, delay), self._time_up, reason)

    def _time_up(self, reason: str) -> None:
        self._timer = None
        if reason == EXPIRED:
            error = GatewayError(grpc.StatusCode.UNAUTHENTICATED,
                                 "the token has expired; open the watch again with a new one")
        else:
            error = GatewayError(grpc.StatusCode.UNAVAILABLE,
                                 "the watch reached WATCH_MAX_DURATION; open it again to continue")
        self.end(reason, error)

    def join(self, poller: Poller) -> None:
        """Follow a poller: from now on it tells this watcher what Cuebot answers."""
        self.poller = poller
        poller.add(self)

    # -- what the poller says --------------------------------------------------------

    def deliver(self, result: RpcResult) -> bool:
        """A new reply: the snapshot if this watcher has none yet, else a change.

        Returns whether it was a change.
        """
        if self.ended:
            return False
        kind = b"change" if self._has_snapshot else b"snapshot"
        if not self.streaming:
            self._begin(result.ignored_fields)
        self._has_snapshot = True
        self._pending_error = None
        if self._paused:
            # A snapshot not yet written stays the snapshot, with the newer data.
            pending_kind = self._pending[0] if self._pending is not None else kind
            self._pending = (pending_kind, result.body)
        else:
            self._event(kind, result.body)
        return kind == b"change"

    def report(self, error: GatewayError) -> None:
        """A poll failed (the stream goes on): an error event with the usual JSON body."""
        if self.ended:
            return
        if not self.streaming:
            self._begin(())
        if self._paused:
            self._pending_error = error
        else:
            self._event(b"error", render_error(error).body)

    def fail(self, error: GatewayError) -> None:
        """A poll failed for good: the unary call's error, or an error event and the end."""
        if self.streaming and not self.ended:
            self._pending_error = None
            self._event(b"error", render_error(error).body)
        self.end(FAILED, error)

    def heartbeat(self) -> None:
        """A comment line, unless nothing can be written now."""
        if self.streaming and not self._paused and not self.ended:
            self.request.write(HEARTBEAT)

    # -- the stream ------------------------------------------------------------------

    def _begin(self, ignored_fields: tuple[str, ...]) -> None:
        """Write the response head: 200, an event stream, never buffered or cached."""
        request = self.request
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        # nginx buffers proxied responses unless told not to.
        request.setHeader(b"X-Accel-Buffering", b"no")
        assert self.poller is not None
        request.setHeader(INTERVAL_HEADER, f"{self.poller.interval:g}s")
        if ignored_fields:
            request.setHeader(b"Opencue-Gateway-Ignored-Fields", ", ".join(ignored_fields))
        request.begin_stream()
        request.registerProducer(self, True)
        self.streaming = True
        self._context.grpc_code = 0
        self._context.stream_events = 0

    def _event(self, kind: bytes, data: bytes) -> None:
        """One event; the data (compact JSON, one line) is written as is, never copied."""
        request = self.request
        request.write(b"id: %d\nevent: %s\ndata: " % (self._next_id, kind))
        request.write(data)
        request.write(b"\n\n")
        self._next_id += 1
        self._context.stream_events += 1

    def end(self, reason: str, error: GatewayError) -> None:
        """End the watch: an end event and close, or (before the stream began) the error."""
        if self.ended:
            return
        if not self.streaming:
            self._detach(reason)
            self.done.errback(Failure(error))
            return
        self._event(b"end", orjson.dumps({"reason": reason, "message": error.message}))
        # Close the connection once the stream is over: a client reconnects anyway.
        self.request.channel.persistent = False
        self._detach(reason)
        self.done.callback(b"")

    def leave(self, reason: str) -> None:
        """The client went away (or the request ended some other way): forget it."""
        if self.ended:
            return
        self._detach(reason)
        if not self.done.called:
            self.done.callback(b"")

    def _detach(self, reason: str) -> None:
        """No more events: timers off, out of the poller and the hub, producer unregistered.

        The transport stops its producer before the request hears the connection
        is gone, and the request then still finishes: it must not find us registered.
        """
        self.ended = True
        request = self.request
        if request.producer is self and request.channel is not None:
            request.unregisterProducer()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.poller is not None:
            self.poller.remove(self)
        self.hub.forget(self, reason)

    # -- IPushProducer ---------------------------------------------------------------

    def pauseProducing(self) -> None:
        """The client reads slower than events come: keep only the latest from now on."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The client caught up: write what is pending, latest reply first."""
        self._paused = False
        pending, self._pending = self._pending, None
        error, self._pending_error = self._pending_error, None
        if self.ended:
            return
        if pending is not None:
            self._event(*pending)
        if error is not None:
            self._event(b"error", render_error(error).body)

    def stopProducing(self) -> None:
        """The connection is going away."""
        self.leave(CLIENT_GONE)
