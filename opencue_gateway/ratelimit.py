"""Rate limiting: a token bucket per caller (RATE_LIMIT_RPS, RATE_LIMIT_BURST).

Authenticated requests are counted per principal (the token's ``sub``);
requests that fail authentication are counted per client address, so
guessing tokens is throttled too.  A bucket that has refilled completely is
indistinguishable from a new one, so idle buckets are dropped, and the number
of buckets is capped (least recently used first): memory stays bounded under
any number of distinct callers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from opencue_gateway.errors import GatewayError

MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one request against its bucket, and the headers that describe it."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> list[tuple[str, str]]:
        """RateLimit-* (IETF httpapi draft) and, when refused, Retry-After."""
        headers = [("RateLimit-Limit", str(self.limit)),
                   ("RateLimit-Remaining", str(self.remaining)),
                   ("RateLimit-Reset", str(self.reset))]
        if not self.allowed:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


class RateLimiter:
    """Token buckets keyed by caller; ``rate`` tokens per second up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float],
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs a positive rate and a burst of at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> Verdict:
        """Spend one token of ``key``'s bucket if there is one."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self._burst), now)
        else:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
            bucket.stamp = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        missing = self._burst - bucket.tokens
        return Verdict(
            allowed=allowed,
            limit=self._burst,
            remaining=int(bucket.tokens),
            reset=math.ceil(missing / self._rate),
            retry_after=0 if allowed else math.ceil((1 - bucket.tokens) / self._rate),
        )

    def check(self, key: str) -> list[tuple[str, str]]:
        """Spend a token or raise the 429; return the headers for the response either way."""
        verdict = self.take(key)
        if not verdict.allowed:
            raise GatewayError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"rate limit exceeded: at most {self._rate:g} requests per second "
                f"(bursts of {self._burst}); retry in {verdict.retry_after}s",
                headers=dict(verdict.headers()),
            )
        return verdict.headers()

    def forget_idle(self) -> int:
        """Drop buckets that have refilled completely; return how many were dropped."""
        now = self._clock()
        full_after = self._burst / self._rate
        idle = [key for key, bucket in self._buckets.items() if now - bucket.stamp >= full_after]
        for key in idle:
            del self._buckets[key]
        return len(idle)
