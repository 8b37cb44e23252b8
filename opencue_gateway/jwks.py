"""The identity provider's signing keys, fetched from its JWKS URL in the background.

Requests never wait for a scheduled fetch: the keys of the last good fetch
serve them.  The key set is fetched when the service starts, then every
JWT_JWKS_REFRESH, or sooner when the answer's ``Cache-Control: max-age`` is
shorter (never more often than every :data:`MIN_INTERVAL`).  A failed fetch
keeps the keys held and is retried with a backoff.  A token naming a ``kid``
the set lacks (the provider rotated) may start one early fetch, at most once
per JWT_JWKS_REFRESH, so made-up kids cannot make the gateway hammer the
provider; that token waits for the fetch (bounded by :data:`FETCH_TIMEOUT`).

Every fetch is bounded: :data:`FETCH_TIMEOUT` for the whole exchange,
:data:`MAX_BYTES` of body, :data:`MAX_KEYS` keys.  Over https the provider's
certificate must be trusted by the system's CAs (or the bundle
``SSL_CERT_FILE`` names).  Until a first fetch
succeeds, /readyz names the problem and tokens that need these keys get a 401
saying the keys are not available.  Nothing in a token (``jku``, ``x5u``)
ever changes where keys come from.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from treq.client import HTTPClient
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse

from opencue_gateway.config import GatewayConfig
from opencue_gateway.keys import UnusableKeyError, VerificationKey, jwk_key
from opencue_gateway.logs import escape, logger

FETCH_TIMEOUT = 10.0
MAX_BYTES = 1024 * 1024
MAX_KEYS = 100
# The shortest time between two scheduled fetches, whatever Cache-Control says,
# and the longest wait between retries after a failure.
MIN_INTERVAL = 30.0
FIRST_RETRY = 1.0
SOURCE = "JWT_JWKS_URL"
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})", re.IGNORECASE)

log = logger(__name__)


class FetchError(Exception):
    """A fetch of the key set did not give usable keys; the message says why."""


class JwksKeys(Service):
    """The keys of one JWKS URL, kept fresh while the service runs.

    ``clock`` schedules the refreshes and bounds each fetch; ``http`` makes
    the request.  They are separate so that tests run the schedule on a fake
    clock while the fetch itself goes over loopback.
    """

    name = "jwks"

    def __init__(self, url: str, accepted: Iterable[str], refresh: float, clock: IReactorTime,
                 http: HTTPClient) -> None:
        self.url = url
        self._accepted = tuple(accepted)
        self._refresh = refresh
        self._clock = clock
        self._http = http
        self.keys: tuple[VerificationKey, ...] = ()
        # Bumped whenever the set of keys changes, so remembered verifications are redone.
        self.generation = 0
        self._error: str | None = None
        self._failures = 0
        self._last_kid_fetch: float | None = None
        self._fetching: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None
        self._abandoned: str | None = None
        self._waiters: list[Deferred[None]] = []
        self._timer: IDelayedCall | None = None

    def startService(self) -> None:
        """Fetch at once; say so when the keys travel without TLS to another host."""
        super().startService()
        if urlsplit(self.url).scheme == "http" and not _is_loopback(self.url):
            log.warn("JWT_JWKS_URL uses plain http: anyone on the path could replace the "
                     "signing keys; use https")
        if self._fetching is None:
            self._start_fetch()

    def stopService(self) -> None:
        """Stop the schedule and abandon a fetch in progress."""
        super().stopService()
        self._cancel_timer()
        self._abandon("the fetch was stopped")

    @property
    def problem(self) -> str | None:
        """Why tokens that need these keys cannot be verified, for /readyz; None once loaded.

        Public, so it names no URL or error; the log and GET /config say why.
        """
        if self.keys:
            return None
        return "the signing keys of JWT_JWKS_URL are not loaded yet"

    def knows(self, kid: str | None) -> bool:
        """Does the held key set have a key with this kid?"""
        return kid is not None and any(k.kid == kid for k in self.keys)

    def fetch(self) -> Deferred[None]:
        """Fetch now, or join the fetch under way; fires (never fails) when it is over."""
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        if self._fetching is None:
            self._start_fetch()
        return waiter

    def fetch_for_unknown_kid(self) -> Deferred[None] | None:
        """An early fetch for a kid the set lacks, or None when one was made this interval.

        Joining a fetch already under way is always allowed: it costs the
        provider nothing.
        """
        if self._fetching is not None:
            return self.fetch()
        now = self._clock.seconds()
        if self._last_kid_fetch is not None and now - self._last_kid_fetch < self._refresh:
            return None
        self._last_kid_fetch = now
        return self.fetch()

    def describe(self) -> dict[str, Any]:
        """The state of the key set for GET /config (keys are listed with the others)."""
        return {"url": self.url, "refresh_seconds": self._refresh,
                "keys": len(self.keys), "error": self._error}

    def _start_fetch(self) -> None:
        """Run one bounded fetch; its outcome updates the keys and schedules the next.

        ``_fetching`` is set before the outcome is handled, because a fetch
        that fails at once has its outcome handled right away.
        """
        self._cancel_timer()
        self._abandoned = None
        self._fetching = Deferred.fromCoroutine(self._download())
        self._deadline = self._clock.callLater(FETCH_TIMEOUT, self._abandon,
                                               f"no answer within {FETCH_TIMEOUT:g}s")
        self._fetching.addCallbacks(self._loaded, self._failed).addBoth(self._settled)

    def _abandon(self, reason: str) -> None:
        """Give up the fetch under way (it took too long, or the service stops)."""
        if self._fetching is not None:
            self._abandoned = reason
            self._fetching.cancel()

    async def _download(self) -> tuple[tuple[VerificationKey, ...], float]:
        """GET the key set within the size bound: its keys, and when to fetch again."""
        response = await self._http.get(self.url, headers={"Accept": "application/json"},
                                        unbuffered=True)
        if response.code != 200:
            response.deliverBody(_Abandon())
            raise FetchError(f"the answer was HTTP {response.code}")
        if response.length is not UNKNOWN_LENGTH and response.length > MAX_BYTES:
            response.deliverBody(_Abandon())
            raise FetchError(f"the key set is larger than {MAX_BYTES} bytes")
        body = await read_bounded(response, MAX_BYTES)
        interval = self._interval(response.headers.getRawHeaders(b"cache-control", []))
        return self._parse(body), interval

    def _parse(self, body: bytes) -> tuple[VerificationKey, ...]:
        """The usable keys of a JWKS document; unusable keys are skipped and logged."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FetchError("the answer is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise FetchError("the answer has no 'keys' list")
        if len(entries) > MAX_KEYS:
            raise FetchError(f"the key set holds {len(entries)} keys, more than {MAX_KEYS}")
        keys, skipped = [], []
        for number, entry in enumerate(entries, 1):
            try:
                keys.append(jwk_key(entry, self._accepted, SOURCE))
            except UnusableKeyError as problem:
                skipped.append(f"key {number}: {problem}")
        if not keys:
            raise FetchError("no key of the set can verify an accepted algorithm ("
                              + "; ".join(skipped or ["the set is empty"]) + ")")
        if skipped and self._differs(keys):
            log.info("JWT_JWKS_URL: skipped {skipped}", skipped=escape("; ".join(skipped)))
        return tuple(keys)

    def _interval(self, cache_control: list[bytes]) -> float:
        """When to fetch again: the refresh interval, or a shorter max-age (not under the floor)."""
        ages = [int(m.group(1)) for value in cache_control
                for m in _MAX_AGE.finditer(value.decode("latin-1"))]
        floor = min(MIN_INTERVAL, self._refresh)
        return max(floor, min([self._refresh, *ages]))

    def _differs(self, keys: Iterable[VerificationKey]) -> bool:
        """Is this set other than the one held (by kid, key and algorithms)?"""
        return _identity(keys) != _identity(self.keys)

    def _loaded(self, fetched: tuple[tuple[VerificationKey, ...], float]) -> None:
        """Hold the new keys; a changed set bumps the generation and is logged."""
        keys, interval = fetched
        if self._differs(keys):
            self.generation += 1
            log.info("JWT_JWKS_URL: {count} signing keys (kids {kids})", count=len(keys),
                     kids=escape(", ".join(sorted({k.kid or "-" for k in keys}))))
        elif self._failures:
            log.info("JWT_JWKS_URL: fetched again after {count} failures", count=self._failures)
        self.keys = keys
        self._error = None
        self._failures = 0
        self._schedule(interval)

    def _failed(self, failure: Failure) -> None:
        """Keep the keys held, remember why, and retry sooner than the refresh interval."""
        self._error = self._abandoned or _reason(failure)
        if not self.running:
            return
        if self._failures == 0:
            log.warn("JWT_JWKS_URL: fetching the signing keys failed: {error}; "
                     "keeping {count} keys", error=escape(self._error), count=len(self.keys))
        self._failures += 1
        retry = min(FIRST_RETRY * 2 ** (self._failures - 1), MIN_INTERVAL, self._refresh)
        self._schedule(retry)

    def _settled(self, result: object) -> None:
        """The fetch is over: release the requests waiting for it."""
        if isinstance(result, Failure):
            log.failure("JWT_JWKS_URL: unexpected error handling a fetch", result)
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._fetching = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _schedule(self, delay: float) -> None:
        """The next fetch, while the service runs."""
        if self.running:
            self._timer = self._clock.callLater(delay, self._start_fetch)

    def _cancel_timer(self) -> None:
        """Forget the scheduled fetch (one is starting now, or the service stops)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def read_bounded(response: IResponse, limit: int) -> Deferred[bytes]:
    """The body of a response, failing (and dropping the connection) beyond ``limit`` bytes."""
    reader = _BoundedBody(limit)
    response.deliverBody(reader)
    return reader.done


class _BoundedBody(Protocol):
    """Collects a body up to a limit; cancelling or overflowing stops the transfer."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self.done: Deferred[bytes] = Deferred(lambda _: self._stop())

    def dataReceived(self, data: bytes) -> None:
        """Keep the data unless it passes the limit."""
        self._size += len(data)
        if self._size > self._limit and not self.done.called:
            self._stop()
            self.done.errback(FetchError(f"the key set is larger than {self._limit} bytes"))
        elif not self.done.called:
            self._parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The whole body arrived, or the transfer broke."""
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self._parts))
        else:
            self.done.errback(reason)

    def _stop(self) -> None:
        """Drop the connection: nothing more of this body is wanted."""
        if self.transport is not None:
            self.transport.stopProducing()


class _Abandon(Protocol):
    """Takes the body of an answer that is not used, and drops the connection at once."""

    def connectionMade(self) -> None:
        """Nothing of this body is wanted."""
        self.transport.stopProducing()


def _identity(keys: Iterable[VerificationKey]) -> frozenset[tuple[Any, ...]]:
    """What makes two key sets the same set."""
    return frozenset((k.kid, k.fingerprint, k.algorithms) for k in keys)


def _reason(failure: Failure) -> str:
    """Why a fetch failed, in one line for the log and GET /config.

    The HTTP client wraps connection and TLS failures (``ResponseNeverReceived``
    and the like hold a list of ``reasons``); the first inner one says more.
    """
    if failure.check(FetchError):
        return str(failure.value)
    inner = getattr(failure.value, "reasons", None)
    if inner and isinstance(inner[0], Failure):
        failure = inner[0]
    return " ".join(f"{failure.type.__name__}: {failure.getErrorMessage()}".split())[:200]


def _is_loopback(url: str) -> bool:
    """Is the URL's host this machine (where plain http cannot be intercepted)?"""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_client(reactor: Any) -> HTTPClient:
    """treq over a non-persistent pool: one fetch every few minutes needs no kept connection."""
    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False),
                            connectTimeout=FETCH_TIMEOUT))


def jwks_keys(config: GatewayConfig, reactor: Any) -> JwksKeys | None:
    """The JWKS source of this configuration, or None without JWT_JWKS_URL."""
    if config.jwt_jwks_url is None:
        return None
    return JwksKeys(config.jwt_jwks_url, config.jwt_algorithms, config.jwt_jwks_refresh,
                    reactor, http_client(reactor))
