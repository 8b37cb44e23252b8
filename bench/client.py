"""A tiny HTTP client for set-up and checks (never for load): loopback, no proxies; its tokens.

urllib honours ``http_proxy`` from the environment; a benchmark on 127.0.0.1
must never go through one, so the opener has an empty proxy table.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import jwt

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """GET, or POST when ``body`` is given; error statuses are returned, not raised."""
    req = urllib.request.Request(url, data=body, headers=headers or {},
                                 method="POST" if body is not None else "GET")
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return Reply(response.status, _lower(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, _lower(error.headers.items()), error.read())


def _lower(items: list[tuple[str, str]]) -> dict[str, str]:
    """Header names lower-cased, for lookups that ignore their spelling."""
    return {name.lower(): value for name, value in items}


def make_token(secret: str, lifetime: float) -> str:
    """An HS256 token with ``exp``, accepted by both gateways for the whole session."""
    now = int(time.time())
    return jwt.encode({"sub": "bench", "iat": now, "exp": now + int(lifetime)}, secret,
                      algorithm="HS256")
