"""Several Cuebots: one long-lived channel per endpoint, and which one a call goes to.

CUEBOT_ENDPOINT lists one or more Cuebots, as a facility runs them.  Each
gets its own channel, so each has its own connectivity state, which
``/readyz``, the metrics and the log report per endpoint.  Calls are spread
round-robin over the endpoints that are connected; one that goes down is
skipped as soon as its channel says so (a dropped connection is noticed at
once), asked to reconnect, and used again when it is back (reconnect
attempts come at most a second apart).  A ``dns:///name:port`` endpoint is
one channel whose addresses grpc itself spreads calls over (``round_robin``).

States are written by grpc's threads and read by the pool threads that pick
an endpoint: single attribute reads and writes, which need no lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import grpc
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import deferLater

from opencue_gateway.catalog import RpcMethod

# Longer than grpc's 0.2 s connectivity polling interval (see Cuebots.stop).
CHANNEL_CLOSE_DELAY = 0.3
READY = grpc.ChannelConnectivity.READY
IDLE = grpc.ChannelConnectivity.IDLE
# Worst first: what a set of endpoints is, taken as a whole, is its best member's state.
_RANK = {None: 0, grpc.ChannelConnectivity.SHUTDOWN: 0,
         grpc.ChannelConnectivity.TRANSIENT_FAILURE: 1, grpc.ChannelConnectivity.CONNECTING: 2,
         IDLE: 3, READY: 4}


def _serialized(reply: bytes) -> bytes:
    """grpc's response deserializer: keep Cuebot's bytes, which the worker decodes (a large
    list reply element by element, see largereply.py)."""
    return reply


@dataclass(eq=False)
class Endpoint:
    """One Cuebot: its address, channel, per-method callables and connectivity."""

    name: str
    channel: grpc.Channel
    callables: dict[str, grpc.UnaryUnaryMultiCallable]
    state: grpc.ChannelConnectivity | None = None
    # The connectivity callback given to grpc, kept to unsubscribe it.
    watch: Callable[[grpc.ChannelConnectivity], None] | None = field(default=None, repr=False)
    _connecting: grpc.Future | None = field(default=None, repr=False)

    def connect(self) -> None:
        """Ask an idle or failed channel to (re)connect now, not at the next call.

        One attempt is kept in flight at a time, so a Cuebot that stays down
        for days does not pile up waiters.
        """
        if self._connecting is None or self._connecting.done():
            self._connecting = grpc.channel_ready_future(self.channel)

    def close(self, reactor: IReactorTime) -> Deferred[None]:
        """Stop connecting; close once grpc's connectivity watcher has let go."""
        if self._connecting is not None:
            self._connecting.cancel()
        return deferLater(reactor, CHANNEL_CLOSE_DELAY, self.channel.close)


class Cuebots:
    """The channels to every configured Cuebot, opened by :meth:`start`."""

    def __init__(self, reactor: IReactorFromThreads, channel_factory: Callable[[str], grpc.Channel],
                 methods: Iterable[RpcMethod]) -> None:
        self._reactor = reactor
        self._channel_factory = channel_factory
        self._methods = tuple(methods)
        self.endpoints: list[Endpoint] = []
        self._turn = itertools.count()
        # Told of every connectivity change, on the reactor thread: (endpoint, new state).
        self.on_state: Callable[[Endpoint, grpc.ChannelConnectivity], None] | None = None

    @property
    def names(self) -> str:
        """The endpoints, as CUEBOT_ENDPOINT lists them (for messages and GET /config)."""
        return ",".join(endpoint.name for endpoint in self.endpoints)

    @property
    def several(self) -> bool:
        """More than one Cuebot: messages and /readyz then speak of each."""
        return len(self.endpoints) > 1

    @property
    def state(self) -> grpc.ChannelConnectivity | None:
        """The best state among the endpoints: READY while any Cuebot is connected."""
        return max((e.state for e in self.endpoints), key=_RANK.__getitem__, default=None)

    def states(self) -> dict[str, str]:
        """Each endpoint's connectivity by name, for /readyz."""
        return {e.name: e.state.name if e.state else "NOT_STARTED" for e in self.endpoints}

    def start(self, names: Sequence[str]) -> None:
        """Open one channel per endpoint, with a callable per method, and watch each."""
        for name in names:
            channel = self._channel_factory(name)
            endpoint = Endpoint(name, channel, {
                method.path: channel.unary_unary(
                    method.path,
                    request_serializer=method.input_type.SerializeToString,
                    response_deserializer=_serialized)
                for method in self._methods})
            self.endpoints.append(endpoint)
            endpoint.watch = self._watcher(endpoint)
            channel.subscribe(endpoint.watch, try_to_connect=True)

    def _watcher(self, endpoint: Endpoint) -> Callable[[grpc.ChannelConnectivity], None]:
        """grpc's thread reports an endpoint's connectivity; a change is told on the reactor."""

        def track(state: grpc.ChannelConnectivity) -> None:
            previous, endpoint.state = endpoint.state, state
            if state != previous:
                self._reactor.callFromThread(self._changed, endpoint, state)

        return track

    def _changed(self, endpoint: Endpoint, state: grpc.ChannelConnectivity) -> None:
        """On the reactor: a Cuebot that went quiet or away is asked to come back at once."""
        if self.endpoints and state in (IDLE, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            endpoint.connect()
        if self.on_state is not None:
            self.on_state(endpoint, state)

    def connect(self) -> None:
        """Ask every endpoint that is not connected to reconnect now (a probe asks)."""
        for endpoint in self.endpoints:
            if endpoint.state != READY:
                endpoint.connect()

    def pick(self, avoid: Endpoint | None = None) -> Endpoint | None:
        """The endpoint for the next call: round-robin over connected ones.

        Without a connected one, an idle or connecting one (the call will wait
        for or fail its connection); ``avoid`` is skipped when there is any
        other choice.  None once stopped.
        """
        if not self.endpoints:
            return None
        start = next(self._turn)
        order = [self.endpoints[(start + i) % len(self.endpoints)]
                 for i in range(len(self.endpoints))]
        candidates = [e for e in order if e is not avoid] or order
        for wanted in (READY, IDLE):
            for endpoint in candidates:
                if endpoint.state == wanted:
                    return endpoint
        return candidates[0]

    def stop(self) -> Deferred[object]:
        """Close every channel; calls still running fail with CANCELLED.

        grpc watches connectivity from a thread that wakes every 0.2 s and
        fails loudly if the channel closed under it; so stop watching first,
        and close once that thread has had time to notice.
        """
        endpoints, self.endpoints = self.endpoints, []
        for endpoint in endpoints:
            endpoint.channel.unsubscribe(endpoint.watch)
        return DeferredList([endpoint.close(self._reactor) for endpoint in endpoints])
