"""Value parsers for settings: raw text in, a typed value out, or ValueError naming the form.

Each parser's ValueError text says what the setting accepts ("expected a
duration like 500ms, 30s, 5m or 1h"); config.py prefixes it with the variable
or flag, so every bad value is one line naming both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from urllib.parse import urlsplit

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
# Verified with a public key (JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL): RSA, RSA-PSS, ECDSA, EdDSA.
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512", "EdDSA")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|K|M|G)?\Z", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2,
               "g": 1024**3, "gib": 1024**3}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = ("debug", "info", "warn", "error")
_ENDPOINT_TYPE = re.compile(r"[a-z][a-z0-9+.-]*:")


def parse_duration(text: str) -> float:
    """Seconds from Go-style durations: ``500ms``, ``30s``, ``5m``, ``1h``, ``1m30s``."""
    compact = text.strip()
    if compact == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(compact):
        raise ValueError("expected a duration like 500ms, 30s, 5m or 1h")
    return total


def parse_positive_duration(text: str) -> float:
    """A duration that must be longer than zero (timeouts, intervals)."""
    value = parse_duration(text)
    if value <= 0:
        raise ValueError("expected a duration longer than zero, like 500ms, 30s, 5m or 1h")
    return value


def parse_bool(text: str) -> bool:
    """``true``/``false`` and the usual synonyms."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def int_parser(low: int, high: int) -> Callable[[str], int]:
    """A parser for whole numbers in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def float_parser(low: float, high: float, what: str) -> Callable[[str], float]:
    """A parser for numbers in ``[low, high]``; ``what`` says what the number is."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"expected {what} from {low:g} to {high:g}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"expected {what} from {low:g} to {high:g}")
        return value

    return parse


def parse_port(text: str) -> int:
    """A TCP port; 0 asks the OS for a free one (tests, side-by-side runs), logged at start."""
    return int_parser(0, 65535)(text)


def parse_size(text: str) -> int:
    """Byte sizes: ``4194304``, ``512KiB``, ``4MiB``."""
    match = _SIZE.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError("expected a size in bytes like 4194304, 512KiB or 4MiB")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]


def parse_endpoint(text: str) -> str:
    """A gRPC target: ``host:port``, ``[v6]:port``, or a URI such as ``dns:///host:port``."""
    target = text.strip()
    if re.match(r"[a-z][a-z0-9+.-]*:", target) and not re.match(r"[^:/]+:\d+\Z", target):
        return target
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected host:port, like cuebot:8443")
    return target


def parse_endpoints(text: str) -> tuple[str, ...]:
    """One or more gRPC targets, comma-separated; the same one twice is a mistake."""
    targets = tuple(parse_endpoint(item) for item in parse_list(text))
    if not targets:
        raise ValueError("expected host:port, like cuebot:8443")
    if len(set(targets)) != len(targets):
        raise ValueError("expected each Cuebot once")
    return targets


def parse_log_level(text: str) -> str:
    """One of the README's levels; ``warning`` is accepted as ``warn``."""
    lowered = text.strip().lower()
    lowered = "warn" if lowered == "warning" else lowered
    if lowered not in _LOG_LEVELS:
        raise ValueError("expected one of " + ", ".join(_LOG_LEVELS))
    return lowered


def parse_log_format(text: str) -> str:
    """text or json."""
    lowered = text.strip().lower()
    if lowered not in ("text", "json"):
        raise ValueError("expected text or json")
    return lowered


def parse_host(text: str) -> str:
    """An interface address to listen on."""
    host = text.strip()
    if not host or any(c.isspace() for c in host):
        raise ValueError("expected an interface address like 0.0.0.0 or 127.0.0.1")
    return host


def parse_text(text: str) -> str:
    """Free text, kept as given."""
    return text


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_listen(text: str) -> tuple[str, ...]:
    """Twisted server endpoint strings (``tcp:8448:interface=127.0.0.1``), comma-separated.

    Only the form is checked here; whether Twisted knows the endpoint type is
    checked when the listener is built, with the reactor at hand.
    """
    specs = parse_list(text)
    for spec in specs:
        if not _ENDPOINT_TYPE.match(spec):
            raise ValueError(
                f"expected Twisted endpoint strings like tcp:8448:interface=127.0.0.1, "
                f"unix:/run/opencue-gateway.sock or systemd:domain=INET:index=0; {spec!r} "
                "has no type"
            )
    return specs


def parse_rate(text: str) -> float:
    """Requests per second, 0 meaning no limit."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected requests per second, like 100 or 0.5 (0 disables)") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError("expected requests per second, like 100 or 0.5 (0 disables)")
    return value


def parse_algorithms(text: str) -> tuple[str, ...]:
    """JWT algorithms to accept, spelt as RFC 7518 does (case does not matter)."""
    known = {a.upper(): a for a in HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS}
    given = [a.upper() for a in parse_list(text)]
    if not given or any(a not in known for a in given):
        raise ValueError("expected a comma-separated list of "
                         + ", ".join(HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS))
    return tuple(dict.fromkeys(known[a] for a in given))


def parse_url(text: str) -> str:
    """An http(s) URL with a host and no credentials (it is shown in GET /config and the log)."""
    url = text.strip()
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment
            or parts.username is not None or not url.isprintable() or " " in url):
        raise ValueError("expected an http:// or https:// URL without user or password, like "
                         "https://idp.example.com/realms/studio/protocol/openid-connect/certs")
    return url


def parse_claim_paths(text: str) -> str:
    """Claim names or dotted paths into nested claims (``role,realm_access.roles``)."""
    paths = parse_list(text)
    if not paths or any(not p.isprintable() or "" in p.split(".") for p in paths):
        raise ValueError("expected claim names or dotted paths like role,realm_access.roles")
    return ",".join(paths)
