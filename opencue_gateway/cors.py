"""Cross-origin requests from browsers (CORS_ORIGINS, CORS_HEADERS, CORS_MAX_AGE).

Browser dashboards call the gateway from another origin with an
``Authorization`` header, so every call is preceded by a preflight
``OPTIONS``.  A preflight never carries a token: it is answered here, before
authentication.  Actual responses name the allowed origin, ``Vary: Origin``,
and expose the gateway's own headers so scripts can read them.

Two rules from the Fetch standard shape this module: a ``*`` in
Access-Control-Allow-Headers does not cover ``Authorization``, so with
``CORS_HEADERS=*`` the requested headers are echoed instead; and ``*`` as the
allowed origin may never be combined with credentials, so the gateway never
sends Access-Control-Allow-Credentials at all (bearer tokens need none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANY = "*"
ALLOWED_METHODS = "POST, GET, OPTIONS"
ALWAYS_ALLOWED = ("Authorization", "Content-Type")
ALWAYS_ALLOWED_LOWER = frozenset(h.lower() for h in ALWAYS_ALLOWED)
# Response headers a browser script may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = (
    "Opencue-Gateway-Ignored-Fields", "X-Request-Id", "Retry-After", "WWW-Authenticate",
    "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
    "Opencue-Gateway-Watch-Interval",
)
_EXPOSED = ", ".join(EXPOSED_HEADERS)


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins and request headers browsers may use, and for how long preflights hold."""

    origins: tuple[str, ...]
    headers: tuple[str, ...]
    max_age: int

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for this Origin, or None (no CORS headers)."""
        if not origin:
            return None
        if ANY in self.origins:
            return ANY
        return origin if origin in self.origins else None

    @staticmethod
    def is_preflight(method: bytes, origin: str | None, requested_method: str | None) -> bool:
        """A CORS preflight is an OPTIONS with an Origin and Access-Control-Request-Method."""
        return method == b"OPTIONS" and bool(origin) and bool(requested_method)

    def preflight_headers(
        self, origin: str | None, requested_headers: str | None
    ) -> list[tuple[str, str]]:
        """Headers answering a preflight; empty when the origin is not allowed."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return [("Vary", "Origin")]
        headers = [
            ("Access-Control-Allow-Origin", allowed),
            ("Access-Control-Allow-Methods", ALLOWED_METHODS),
            ("Access-Control-Max-Age", str(self.max_age)),
            ("Vary", "Origin, Access-Control-Request-Headers"),
        ]
        allow_headers = self._allow_headers(requested_headers)
        if allow_headers:
            headers.append(("Access-Control-Allow-Headers", allow_headers))
        return headers

    def response_headers(
        self, origin: str | None, extra_exposed: Iterable[str] = ()
    ) -> list[tuple[str, str]]:
        """Headers for an actual (non-preflight) response to this Origin."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return [("Vary", "Origin")]
        exposed = ", ".join((_EXPOSED, *extra_exposed)) if extra_exposed else _EXPOSED
        return [
            ("Access-Control-Allow-Origin", allowed),
            ("Access-Control-Expose-Headers", exposed),
            ("Vary", "Origin"),
        ]

    def _allow_headers(self, requested: str | None) -> str:
        """Echo the requested headers for ``*`` (which cannot cover Authorization), else the list.

        Authorization and Content-Type are always allowed: without them no
        browser call to the gateway could succeed.
        """
        if ANY in self.headers:
            return requested or ""
        listed = [h for h in self.headers if h.lower() not in ALWAYS_ALLOWED_LOWER]
        return ", ".join((*ALWAYS_ALLOWED, *listed))
