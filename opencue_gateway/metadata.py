"""HTTP headers and gRPC metadata, both ways (COMPATIBILITY.md section 6).

Requests: ``Grpc-Metadata-<key>`` headers become metadata ``<key>`` (``-bin``
keys carry base64), ``Grpc-Timeout`` sets a shorter deadline, the client's
address, host, principal and request id are added, W3C trace context passes
when well-formed, and credentials never do.  Replies: Cuebot's metadata
becomes ``Grpc-Metadata-*``/``Grpc-Trailer-*`` headers, named as grpc-gateway
names them.  Nothing here imports Twisted or calls gRPC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import grpc

from opencue_gateway.errors import GatewayError
from opencue_gateway.tracing import TRACE_HEADERS, valid_traceparent
from opencue_gateway.transcode import bytes_json, decode_base64

Metadata = tuple[tuple[str, str | bytes], ...]

# Request headers that carry credentials never travel upstream, whatever their
# spelling (COMPATIBILITY.md section 5; grpc-gateway forwards them, we do not).
CREDENTIAL_KEYS = frozenset({"authorization", "cookie"})
METADATA_PREFIX = b"grpc-metadata-"
# Who made the call, for Cuebot-side logs (COMPATIBILITY.md section 6).
PRINCIPAL_KEY = "opencue-gateway-sub"
REQUEST_ID_KEY = "x-request-id"

_GRPC_TIMEOUT = re.compile(rb"(\d{1,8})([HMSmun])\Z")
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+\Z")


def parse_grpc_timeout(value: bytes) -> float:
    """Seconds from a ``Grpc-Timeout`` header (gRPC wire format: digits and one unit)."""
    match = _GRPC_TIMEOUT.match(value.strip())
    if not match:
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid Grpc-Timeout header: expected up to 8 digits and a unit "
            "(H, M, S, m, u or n), like 500m or 10S",
        )
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]


def metadata_from_headers(
    headers: Iterable[tuple[bytes, Sequence[bytes]]],
    client_address: str | None,
    principal_sub: str,
    request_id: str = "",
    trace_context: dict[str, str] | None = None,
) -> Metadata:
    """The gRPC metadata for a request (COMPATIBILITY.md section 6).

    ``Grpc-Metadata-<key>`` headers become ``<key>``; ``-bin`` keys carry
    base64 in HTTP and bytes in gRPC.  X-Forwarded-For gains the client's
    address, X-Forwarded-Host is the Host header, and the caller's ``sub``
    is added, and so is the request id.  W3C ``traceparent``/``tracestate``
    pass when well-formed (``trace_context``, the gateway's own span, wins
    over the client's).  Credentials and gRPC's reserved ``grpc-*`` keys
    never pass.

    Every text value must be printable ASCII, or grpcio fails the call
    ("Invalid metadata").  Headers the client sends are refused with a 400
    naming the header when they hold anything else; a malformed tracestate
    is dropped; the ``sub`` is percent-encoded (:func:`percent_encode`).
    """
    metadata: list[tuple[str, str | bytes]] = []
    forwarded_for: list[str] = []
    trace: dict[str, str] = {}
    host = None
    for raw_name, values in headers:
        name = raw_name.lower()
        if name == b"x-request-id":
            continue
        if name in TRACE_HEADERS:
            trace[name.decode("ascii")] = values[0].decode("latin-1").strip()
            continue
        if name == b"x-forwarded-for":
            forwarded_for.extend(_ascii(v, "the X-Forwarded-For header") for v in values)
        elif name == b"host":
            host = _ascii(values[0], "the Host header")
        elif name.startswith(METADATA_PREFIX):
            key = name[len(METADATA_PREFIX):].decode("latin-1")
            if key in CREDENTIAL_KEYS or key.startswith("grpc-"):
                continue
            metadata.extend((key, _metadata_value(key, v)) for v in values)
    if client_address:
        forwarded_for.append(client_address)
    if forwarded_for:
        metadata.append(("x-forwarded-for", ", ".join(forwarded_for)))
    if host:
        metadata.append(("x-forwarded-host", host))
    if principal_sub:
        metadata.append((PRINCIPAL_KEY, percent_encode(principal_sub)))
    if request_id:
        metadata.append((REQUEST_ID_KEY, request_id))
    trace.update(trace_context or {})
    if valid_traceparent(trace.get("traceparent")):
        metadata.append(("traceparent", trace["traceparent"]))
        if _is_metadata_text(trace.get("tracestate", "")) and trace.get("tracestate"):
            metadata.append(("tracestate", trace["tracestate"]))
    return tuple(metadata)


def forwarded_metadata(headers: Iterable[tuple[bytes, Sequence[bytes]]]) -> tuple:
    """The Grpc-Metadata-* headers of a request, in a canonical order (part of a fan-in key)."""
    return tuple(sorted(
        (name.lower(), tuple(values)) for name, values in headers
        if name.lower().startswith(METADATA_PREFIX)
    ))


def _metadata_value(key: str, raw: bytes) -> str | bytes:
    """Check a metadata key and convert its header value to what gRPC wants."""
    if not _METADATA_KEY.match(key):
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid Grpc-Metadata header key {key!r}: use letters, digits, '-', '_' and '.'",
        )
    if key.endswith("-bin"):
        try:
            return decode_base64(raw.strip().decode("latin-1"))
        except ValueError:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Grpc-Metadata-{key} must hold base64, as binary metadata keys do",
            ) from None
    return _ascii(raw, f"Grpc-Metadata-{key}")


def _ascii(raw: bytes, header: str) -> str:
    """A header value that may travel as metadata text, or a 400 naming the header."""
    text = raw.decode("latin-1").strip()
    if not _is_metadata_text(text):
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{header} holds characters gRPC metadata cannot carry (only printable ASCII)",
        )
    return text


def _is_metadata_text(text: str) -> bool:
    """Printable ASCII: what gRPC accepts in a text metadata value."""
    return text.isascii() and text.isprintable()


def percent_encode(text: str) -> str:
    """Text as metadata the way gRPC encodes ``grpc-message``, so any identity can travel.

    The UTF-8 bytes outside printable ASCII, and ``%`` itself, become
    ``%XX``: ``José`` arrives as ``Jos%C3%A9``, ``100%`` as ``100%25``; plain
    ASCII names arrive unchanged.  Percent-decoding gives the exact text back
    (``urllib.parse.unquote`` in Python; ``+`` is not a space here).
    """
    if _is_metadata_text(text) and "%" not in text:
        return text
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}"
                   for b in text.encode("utf-8"))


def response_headers(
    initial: Iterable[tuple[str, str | bytes]] | None,
    trailing: Iterable[tuple[str, str | bytes]] | None,
) -> list[tuple[str, str]]:
    """Cuebot's metadata as HTTP headers, named the way grpc-gateway names them."""
    headers = []
    for prefix, metadata in (("Grpc-Metadata-", initial), ("Grpc-Trailer-", trailing)):
        for key, value in metadata or ():
            text = bytes_json(value) if isinstance(value, bytes) else value
            if text.isprintable():
                headers.append((prefix + key, text))
    return headers
