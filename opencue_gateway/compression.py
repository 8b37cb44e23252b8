"""gzip for responses above 1 KiB when the client accepts it, and compressed request bodies.

List replies (frames, jobs, hosts) are the gateway's big answers and
compress tenfold; they are compressed in the worker thread, next to the JSON
encoding, never on the reactor.  A request body sent with
``Content-Encoding: gzip`` or ``deflate`` is inflated in the worker thread
too, and MAX_REQUEST_BYTES bounds what it inflates to, so a small "zip bomb"
cannot make the gateway hold gigabytes.
"""

from __future__ import annotations

import zlib

import grpc

from opencue_gateway.errors import GatewayError

MIN_BYTES = 1024
# Content-Encodings a request body may use; anything else gets 415.
REQUEST_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})
# Level 5 compresses JSON nearly as well as 9 at a fraction of the CPU.
LEVEL = 5
# Streamed (large) replies: level 1 (see README, Performance).
STREAM_LEVEL = 1


def accepts_gzip(header: bytes | None) -> bool:
    """Does an Accept-Encoding header allow gzip (``gzip`` or ``*``, with q > 0)?"""
    if not header:
        return False
    weights: dict[str, float] = {}
    for item in header.decode("latin-1").lower().split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        weights[coding.strip()] = quality
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def gzip_body(body: bytes) -> bytes:
    """The gzip encoding (RFC 1952) of a body, compressed at LEVEL."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


class GzipStream:
    """One gzip member written a piece at a time, each piece flushed to a byte boundary.

    A client can inflate every piece as it arrives; gunzipped, the pieces
    are exactly the input.  The sync flush costs a few bytes per piece.
    """

    def __init__(self, level: int = STREAM_LEVEL) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def compress(self, piece: bytes) -> bytes:
        """The gzip bytes of one more piece, complete up to its last byte."""
        return self._compressor.compress(piece) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, piece: bytes = b"") -> bytes:
        """The gzip bytes of the last piece and the member's trailer."""
        return self._compressor.compress(piece) + self._compressor.flush()


def maybe_gzip(body: bytes, accepted: bool) -> tuple[bytes, bool]:
    """The body to send and whether it is gzipped: only when accepted and worth it."""
    if accepted and len(body) > MIN_BYTES:
        return gzip_body(body), True
    return body, False


def request_encoding(header: bytes | None) -> str | None:
    """The request body's Content-Encoding, or raise 415 naming one the gateway cannot read."""
    if header is None:
        return None
    encoding = header.decode("latin-1").strip().lower()
    if encoding not in REQUEST_ENCODINGS:
        shown = encoding[:40] if encoding.isprintable() else "(unprintable)"
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request body's Content-Encoding {shown!r} is not supported; send it "
            "uncompressed, or as gzip or deflate",
            http_status=415,
        )
    return None if encoding == "identity" else encoding


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body decompressed (gzip, deflate), refused with 413 past ``limit`` bytes."""
    if encoding is None:
        return body
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        inflated = inflater.decompress(body, limit + 1)
        complete = inflater.eof and not inflater.unconsumed_tail
    except zlib.error:
        complete = False
        inflated = b""
    if len(inflated) > limit:
        raise GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the request body inflates to more than the {limit}-byte limit (MAX_REQUEST_BYTES)",
            http_status=413,
        )
    if not complete:
        raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"the request body is not valid {encoding} data")
    return inflated
