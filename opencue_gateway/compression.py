"""gzip for responses above 1 KiB, when the client accepts it.

List replies (frames, jobs, hosts) are the gateway's big answers and
compress tenfold; they are compressed in the worker thread, next to the JSON
encoding, never on the reactor.
"""

from __future__ import annotations

import zlib

MIN_BYTES = 1024
# Level 5 compresses JSON nearly as well as 9 at a fraction of the CPU.
LEVEL = 5


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


def maybe_gzip(body: bytes, accepted: bool) -> tuple[bytes, bool]:
    """The body to send and whether it is gzipped: only when accepted and worth it."""
    if accepted and len(body) > MIN_BYTES:
        return gzip_body(body), True
    return body, False
