"""gzip levels for production-size replies: CPU against bytes, on the gateway's real answer.

The gateway streams every production-size reply and compresses it at one
constant level (:data:`opencue_gateway.compression.STREAM_LEVEL`, in
sync-flushed chunks; smaller replies use ``LEVEL``), so instead of running a
gateway per level, the harness compresses the very JSON body the gateway
answered in the verification pass, in its own process, after the load
measurements (nothing else of the benchmark runs then).  For each level it
reports the CPU time of one compression (this thread's CPU, the median of a
few repeats), the bytes out and the ratio, two ways:

- ``whole``: the body in one call, as the gateway compresses a reply it does not stream;
- ``chunks``: the body in 64 KiB pieces with a sync flush after each, as the
  gateway's streaming encoder gzips each chunk as it goes.

The compressor is the gateway's: zlib's deflate with a gzip header.
"""

from __future__ import annotations

import statistics
import time
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from opencue_gateway.compression import STREAM_LEVEL as GATEWAY_LEVEL
from opencue_gateway.compression import GzipStream
from opencue_gateway.largereply import PIECE_BYTES

REPEATS = 3
MODES = ("whole", "chunks")


@dataclass(frozen=True, slots=True)
class GzipFigure:
    """One level and mode on one reply's body."""

    reply: str
    level: int
    mode: str
    input_bytes: int
    output_bytes: int
    cpu_ms: float
    gateway_level: bool

    @property
    def ratio(self) -> float:
        """How many times smaller the body got."""
        return self.input_bytes / self.output_bytes

    @property
    def mb_per_cpu_second(self) -> float:
        """Input MB compressed per CPU second."""
        return self.input_bytes / 1e6 / (self.cpu_ms / 1000) if self.cpu_ms else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON file, with the derived figures."""
        return {**asdict(self), "ratio": self.ratio, "mb_per_cpu_second": self.mb_per_cpu_second}


def compress(body: bytes, level: int, mode: str) -> bytes:
    """gzip ``body`` at ``level`` with the gateway's compressor: in one call, or in chunks."""
    stream = GzipStream(level)
    if mode == "whole":
        return stream.finish(body)
    view = memoryview(body)
    parts = [stream.compress(view[i:i + PIECE_BYTES]) for i in range(0, len(body), PIECE_BYTES)]
    return b"".join(parts) + stream.finish()


def measure(reply: str, body: bytes, levels: list[int]) -> list[GzipFigure]:
    """Every level (and the gateway's own) in both modes; checks each output decompresses."""
    figures = []
    for level in sorted({*levels, GATEWAY_LEVEL}):
        for mode in MODES:
            times, output = [], b""
            for _ in range(REPEATS):
                started = time.thread_time()
                output = compress(body, level, mode)
                times.append(time.thread_time() - started)
            if zlib.decompress(output, 16 + zlib.MAX_WBITS) != body:
                raise RuntimeError(f"gzip level {level} ({mode}) did not round-trip {reply}")
            figures.append(GzipFigure(reply, level, mode, len(body), len(output),
                                      statistics.median(times) * 1000,
                                      level == GATEWAY_LEVEL))
    return figures
