"""Load generators: wrk for the HTTP/JSON targets, h2load for direct gRPC.

Both are C programs, far below what they can send at these rates, so they
are not the bottleneck of a Python gateway on 2 cores.  The harness samples
their CPU time too (their pid is passed to the sampler), so the report shows
how much of the machine the load generator took.

**One continuous run, a measured window inside it.**  A run lasts
warm-up + window + one second.  The window starts and ends on whole
wall-clock seconds; at those two instants the harness samples the servers
(CPU time, the stand-in's counts) through a callback.  Requests are counted
by the instant they *completed*, so the window holds only steady-state
traffic: no ramp-up at its start (the connections are already busy), and no
half-served requests at its end (those complete, or are abandoned, in the
tail second).  Separate warm-up and measured runs would either start the
window with an idle server or with one still serving the warm-up's abandoned
requests; with 10,000-frame replies at 32 connections either error is as
large as the figure.

**Throughput and latency come from successful answers completed inside the
window**, and nothing else: the warm-up's requests, and any failed answer,
are in no percentile.  **Errors are counted over the whole run** (warm-up
and tail too), so a run that failed anywhere says so.

- **wrk** (Debian ``wrk``, built on LuaJIT): a Lua script sets POST, the
  headers and the body, and does the bookkeeping wrk does not: it times
  each request itself (``clock_gettime`` through LuaJIT's FFI, from the
  ``request`` hook, which wrk calls right before sending, to the
  ``response`` hook), and keeps that latency only for a 2xx answer whose
  body has exactly the size the target gave in the verification pass, and
  that completed inside the window.  Any other status, and a 2xx with
  another body size (a truncated or error body), is counted as an error.
  An answer cut off by a closed connection is a read error for wrk, which
  then hands its partial body, in front of the next answer on the new
  connection, to the script: that answer counts as a body error too.
  A hook has no handle on the connection it serves, so wrk runs one
  thread per connection (``-t`` = ``-c``): within a thread, requests and
  answers then alternate.  The ``done`` hook prints one JSON line with the
  counts, wrk's socket errors (connect, read, write, timeout) and the
  latencies, so nothing is parsed from wrk's human-readable text.
- **h2load** (Debian ``nghttp2-client``): sends a pre-built gRPC frame (the
  5-byte length prefix and the serialized request) with
  ``content-type: application/grpc`` and ``te: trailers``, one stream per
  connection at a time (``-m 1``) so concurrency means what it means for
  wrk's connections.  Its ``--log-file`` has each request's start, HTTP
  status and duration: latencies and window completions are taken from it
  for 2xx answers; other statuses and reset streams are errors.  h2load
  does not read ``grpc-status`` (Debian's 1.52 does not even print
  trailers), so gRPC-level errors inside an HTTP 200 are counted by the
  server that sent them, the stand-in (see :mod:`bench.standin`): the
  runner adds them to every target's errors.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINTS = {
    "wrk": "apt-get update && apt-get install -y wrk",
    "h2load": "apt-get update && apt-get install -y nghttp2-client",
}
# wrk waits this long for a reply before counting a timeout (10,000 frames can take a while).
REQUEST_TIMEOUT_SECONDS = 30
# Beyond its planned duration, how long a load generator may take to exit.
EXIT_GRACE_SECONDS = 60
# Connections need a moment to open before the window may start, even without warm-up.
MIN_LEAD_SECONDS = 0.3
TAIL_SECONDS = 1
_MARK = "BENCH_JSON "

# Called at the window's edges with the load generator's pid.
Sampler = Callable[[int], Any]


@dataclass(slots=True)
class LoadResult:
    """One run: good answers inside the window, their latency, and whole-run errors."""

    requests: int
    seconds: float
    latency_us: dict[str, float | None]
    errors: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    total_requests: int = 0
    sent: int = 0
    window_samples: tuple[Any, Any] = (None, None)
    # Answers with a status other than 2xx, by status (as the tool printed it).
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Good answers completed per second inside the window."""
        return self.requests / self.seconds if self.seconds else 0.0


def find_tool(name: str) -> str | None:
    """The path of a load generator, or None (the caller prints :data:`INSTALL_HINTS`)."""
    return shutil.which(name)


def _lua_string(text: str) -> str:
    """A Lua long-bracket literal that cannot be closed early by ``text``."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def write_wrk_script(path: Path, body: bytes, token: str) -> Path:
    """The Lua script of one reply: POST, JSON body, Bearer token, and the bookkeeping.

    Its arguments (after ``--`` on wrk's command line) are the window's start
    and end (epoch seconds) and the body size a successful answer has.
    """
    path.write_text(f"""-- generated by bench/load.py
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
local clock = ffi.new("bench_timespec")
local function now(clock_id)
  ffi.C.clock_gettime(clock_id, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

wrk.method = "POST"
wrk.body = {_lua_string(body.decode())}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end

-- Per thread (each has its own Lua state and, with -t = -c, one connection).
sent = 0            -- requests sent, answered or not (Cuebot calls per client request)
latencies = {{}}      -- µs, of good answers completed inside the window
statuses = {{}}       -- answers with a status outside 2xx, by status
wrong_body = 0      -- 2xx answers whose body is not the verified size
local prepared, window_start, window_end, body_bytes, started
function init(args)
  window_start, window_end, body_bytes = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  prepared = wrk.format()
end
function request()
  sent = sent + 1
  started = now(CLOCK_MONOTONIC)
  return prepared
end

function response(status, headers, body)
  local elapsed = now(CLOCK_MONOTONIC) - started
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
  elseif #body ~= body_bytes then
    wrong_body = wrong_body + 1
  else
    local finished = now(CLOCK_REALTIME)
    if finished >= window_start and finished < window_end then
      latencies[#latencies + 1] = math.floor(elapsed * 1e6 + 0.5)
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_sent, wrong, good, by_status = 0, 0, {{}}, {{}}
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    wrong = wrong + thread:get("wrong_body")
    for _, value in ipairs(thread:get("latencies")) do
      good[#good + 1] = value
    end
    for status, count in pairs(thread:get("statuses")) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local codes = {{}}
  for status, count in pairs(by_status) do
    codes[#codes + 1] = string.format('"%d":%d', status, count)
  end
  io.write(string.format(
    '{_MARK}{{"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"sent":%d,"wrong_body":%d,"statuses":{{%s}},"latencies_us":[%s]}}\\n',
    summary.requests, summary.bytes, e.connect, e.read, e.write, e.timeout, total_sent, wrong,
    table.concat(codes, ","), table.concat(good, ",")))
end
""")
    return path


@dataclass(slots=True)
class _Window:
    """A finished run: the tool's stdout, and the window's bounds and samples."""

    stdout: str
    start: int
    end: int
    samples: tuple[Any, Any]


def _run_windowed(
    argv_for: Callable[[int, int, int], list[str]], warmup: float, seconds: int,
    sample: Sampler,
) -> _Window:
    """Run a tool for warm-up + window + tail; call ``sample(pid)`` at the window's two edges.

    ``argv_for(total, start, end)`` gets the run's whole length in seconds
    and the window's bounds (epoch seconds).
    """
    launched = time.time()
    start = math.ceil(launched + max(warmup, MIN_LEAD_SECONDS))
    end = start + seconds
    total = math.ceil(end + TAIL_SECONDS - launched)
    argv = argv_for(total, start, end)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _sleep_until(start)
        first = sample(process.pid)
        _sleep_until(end)
        second = sample(process.pid)
        stdout, stderr = process.communicate(timeout=total + EXIT_GRACE_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({process.returncode}): "
                           f"{(stderr or stdout).strip()[-800:]}")
    return _Window(stdout, start, end, (first, second))


def _sleep_until(moment: float) -> None:
    """Sleep until a wall-clock instant (bounded by the instant itself)."""
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def run_wrk(
    wrk: str, url: str, script: Path, connections: int, warmup: float, seconds: int,
    sample: Sampler, body_bytes: int,
) -> LoadResult:
    """wrk, one thread per keep-alive connection; good answers and errors as the script counts.

    ``body_bytes`` is the size of the body the target answered in the
    verification pass: a 2xx answer of any other size is an error.
    """
    window = _run_windowed(
        lambda total, start, end: [
            wrk, f"-t{connections}", f"-c{connections}", f"-d{total}s",
            f"--timeout={REQUEST_TIMEOUT_SECONDS}s", "-s", str(script), url,
            "--", str(start), str(end), str(body_bytes)],
        warmup, seconds, sample,
    )
    line = next((x for x in window.stdout.splitlines() if x.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{window.stdout[-800:]}")
    raw = json.loads(line[len(_MARK):])
    errors = {k: raw[k] for k in ("connect", "read", "write", "timeout") if raw[k]}
    statuses = sum(raw["statuses"].values())
    if statuses:
        errors["status"] = statuses
    if raw["wrong_body"]:
        errors["body"] = raw["wrong_body"]
    latencies = raw["latencies_us"]
    return LoadResult(
        requests=len(latencies),
        seconds=float(window.end - window.start),
        latency_us=_percentiles(latencies),
        errors=errors,
        bytes_read=raw["bytes"],
        total_requests=raw["requests"],
        sent=raw["sent"],
        window_samples=window.samples,
        statuses=raw["statuses"],
    )


def write_grpc_frame(path: Path, message: bytes) -> Path:
    """A gRPC length-prefixed message (uncompressed) for h2load's ``-d``."""
    path.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    return path


def run_h2load(
    h2load: str, url: str, frame: Path, connections: int, warmup: float, seconds: int,
    sample: Sampler, log_path: Path,
) -> LoadResult:
    """h2load: ``connections`` HTTP/2 connections, one gRPC call in flight on each."""
    window = _run_windowed(
        lambda total, start, end: [
            h2load, "-c", str(connections), "-m", "1", "-t", "1", "-D", str(total),
            "-d", str(frame), "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--log-file", str(log_path), url],
        warmup, seconds, sample,
    )
    latencies, statuses, total = [], Counter(), 0
    with log_path.open() as log:
        for line in log:
            parts = line.split()
            if len(parts) < 3:
                continue
            total += 1
            # A stream that ended without an answer (reset, connection lost) logs -1.
            if not parts[1].startswith("2"):
                statuses[parts[1]] += 1
                continue
            finished = (int(parts[0]) + int(parts[2])) / 1e6
            if window.start <= finished < window.end:
                latencies.append(float(parts[2]))
    errors = {}
    if statuses["-1"]:
        errors["stream"] = statuses.pop("-1")
    if statuses:
        errors["status"] = sum(statuses.values())
    return LoadResult(
        requests=len(latencies),
        seconds=float(window.end - window.start),
        latency_us=_percentiles(latencies),
        errors=errors,
        bytes_read=_h2load_data_bytes(window.stdout),
        total_requests=total,
        sent=_h2load_started(window.stdout) or total,
        window_samples=window.samples,
        statuses=dict(statuses),
    )


def _h2load_started(stdout: str) -> int:
    """Requests h2load sent: ``requests: 100 total, 132 started, 100 done, ...``."""
    for line in stdout.splitlines():
        if line.startswith("requests:") and " started," in line:
            return int(line.split(" started,")[0].rsplit(" ", 1)[1])
    return 0


def _h2load_data_bytes(stdout: str) -> int:
    """The DATA bytes h2load received: ``traffic: ..., 4.46MB (4678332) data``."""
    for line in stdout.splitlines():
        if line.startswith("traffic:") and line.rstrip().endswith(") data"):
            return int(line.rsplit("(", 1)[1].split(")")[0])
    return 0


def _percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean by nearest rank; None without a single good answer."""
    if not values:
        return {k: None for k in ("p50", "p90", "p99", "max", "mean")}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1],
            "mean": sum(ordered) / len(ordered)}
