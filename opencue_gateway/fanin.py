"""Fan-in: identical concurrent reads share one Cuebot call.

CueWeb's job list is polled by every open browser, so many clients ask the
same read-only question at once.  Requests are identical when they name the
same method with the same body bytes, the same forwarded ``Grpc-Metadata-*``
headers, the same deadline header and the same gzip choice; authentication
and authorization have already run for each of them.  Mutations never get here.

Freshness: an answer may never be older than the request it answers.  So a
request does not join a call that is already on its way to Cuebot (that call
may have read the farm before the request arrived); it joins the *next*
call for the same question, which starts as soon as the running one ends.

A call whose every waiting request has left (clients gone, deadlines past)
is cancelled; a call still gathering requests is never started if they all
leave before it could be.
At most two calls per question exist at a time, one running and one
gathering, however many clients ask.  With READ_CACHE_TTL > 0 answers are
also reused for that long (then they may be up to the TTL old: opt-in).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

MAX_CACHED = 1000


class _Call:
    """One Cuebot call and the requests waiting for its answer."""

    def __init__(self, start: Callable[[], Deferred[Any]]) -> None:
        self.start = start
        self.waiters: list[Deferred[Any]] = []
        self.running: Deferred[Any] | None = None

    def add_waiter(self) -> Deferred[Any]:
        """A Deferred for one more request; cancelling it drops that request only."""
        waiter: Deferred[Any] = Deferred(lambda d: self._forget(d))
        self.waiters.append(waiter)
        return waiter

    def _forget(self, waiter: Deferred[Any]) -> None:
        """A request left; when the last one has, the call itself is cancelled."""
        if waiter in self.waiters:
            self.waiters.remove(waiter)
        if not self.waiters and self.running is not None and not self.running.called:
            self.running.cancel()

    def deliver(self, result: Any) -> None:
        """Give every waiting request the answer (or the failure)."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)


class FanIn:
    """Coalesces identical reads; see the module docstring for the freshness rule."""

    def __init__(self, clock: Callable[[], float], cache_ttl: float = 0.0) -> None:
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._running: dict[Hashable, _Call] = {}
        self._gathering: dict[Hashable, _Call] = {}
        self._cache: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def call(
        self,
        key: Hashable,
        start: Callable[[], Deferred[Any]],
        on_shared: Callable[[str], None] | None = None,
    ) -> Deferred[Any]:
        """The answer to ``key``: cached, from the next shared call, or from a new one.

        ``start`` makes the Cuebot call; it runs only for the request that
        opens a call.  ``on_shared`` hears "joined" or "cached" for the others.
        """
        cached = self._cached(key)
        if cached is not None:
            if on_shared is not None:
                on_shared("cached")
            return cached
        if key not in self._running:
            call = _Call(start)
            self._running[key] = call
            waiter = call.add_waiter()
            self._launch(key, call)
            return waiter
        if on_shared is not None:
            on_shared("joined")
        gathering = self._gathering.get(key)
        if gathering is None:
            gathering = self._gathering[key] = _Call(start)
        return gathering.add_waiter()

    def _launch(self, key: Hashable, call: _Call) -> None:
        """Start a call; when it ends, answer its waiters and start the gathered one."""
        try:
            started = call.start()
        except Exception:
            self._finish(key, call, Failure())
            return
        call.running = started
        started.addBoth(lambda result: self._finish(key, call, result))

    def _finish(self, key: Hashable, call: _Call, result: Any) -> None:
        """Deliver, cache a success, and promote the next call for the same key."""
        del self._running[key]
        if self._cache_ttl > 0 and not isinstance(result, Failure):
            self._remember(key, result)
        call.deliver(result)
        following = self._gathering.pop(key, None)
        if following is not None and following.waiters:
            self._running[key] = following
            self._launch(key, following)

    def _cached(self, key: Hashable) -> Deferred[Any] | None:
        """A fired Deferred with a cached answer still within READ_CACHE_TTL, else None."""
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, result = entry
        if self._clock() >= expires:
            del self._cache[key]
            return None
        return succeed(result)

    def _remember(self, key: Hashable, result: Any) -> None:
        """Cache an answer for READ_CACHE_TTL; the oldest entries go past MAX_CACHED."""
        self._cache[key] = (self._clock() + self._cache_ttl, result)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
