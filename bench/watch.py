"""``python -m bench.watch``: many idle watch streams held open against one gateway.

Starts the sandbox Cuebot (the README farm, still, plus one generated show of
``--jobs`` jobs) and the gateway under twistd, then opens ``--watchers``
watches of one GetJobs (every job of both shows) from this process, over
real loopback connections, and measures the gateway process:

- memory per watcher: its resident set with every watcher connected (each
  with its snapshot), less its resident set before, divided by the watchers;
- CPU while idle: its CPU seconds per second over ``--idle-seconds`` during
  which nothing changes (the poller still asks Cuebot every ``--interval``,
  and heartbeats go out every 15 s);
- a change reaching everyone: a Pause (then a Resume, in turn) of the README
  job through the gateway, then the time until the first watcher and until
  the last one has the change event; the gap between the two is the fan-out
  itself, the rest is waiting for the next poll.

The clients are asyncio connections in this process (not measured); the
gateway and the sandbox are separate processes.  Progress goes to stderr,
the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import ROOT, procs, say
from bench.client import make_token, request
from bench.gateway import FAN_IN_ENV, start_gateway
from bench.procstat import cpu_seconds, rss_bytes, wait_until_idle
from opencue_gateway.parsers import parse_duration

README_JOB = "00000000-0000-0000-0000-000000000001"
GET_JOBS = "/job.JobInterface/GetJobs"
BODY = b'{"r": {"shows": ["testing", "show001"], "include_finished": true}}'
CHANGE = b"event: change\n"
SNAPSHOT = b"event: snapshot\n"
# Bytes kept from the previous read, so a marker split between two reads is still seen.
_OVERLAP = max(len(CHANGE), len(SNAPSHOT)) - 1
LISTENING = re.compile(rb"sandbox Cuebot listening on (\S+)")
CONNECT_BATCH = 100
WAIT_SECONDS = 120.0


@dataclass
class Watcher:
    """One watch as a client: when its snapshot came, and when each change did."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    snapshot_at: float | None = None
    changes: list[float] = field(default_factory=list)
    _tail: bytes = b""

    async def read(self) -> None:
        """Read the stream until it closes, noting when each event of interest arrives."""
        while data := await self.reader.read(65536):
            now = time.monotonic()
            seen = self._tail + data
            if self.snapshot_at is None and SNAPSHOT in seen:
                self.snapshot_at = now
            fresh = seen.count(CHANGE) - self._tail.count(CHANGE)
            self.changes.extend(now for _ in range(fresh))
            self._tail = seen[-_OVERLAP:]

    def close(self) -> None:
        self.writer.close()


async def open_watch(host: str, port: int, token: str, interval: str) -> Watcher:
    """Connect, send the watch request, check the head says 200 text/event-stream."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST {GET_JOBS}?interval={interval} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
        + BODY)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head:
        raise RuntimeError(f"the watch was refused: {head.decode(errors='replace')}")
    return Watcher(reader, writer)


async def until(condition, what: str, seconds: float = WAIT_SECONDS) -> float:
    """Wait (polling every 10 ms) until ``condition()`` holds; return the seconds waited."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise RuntimeError(f"{what}: not after {seconds:g}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def start_sandbox(processes: procs.Processes, workdir: Path, jobs: int) -> str:
    """The sandbox Cuebot in its own process; returns its address."""
    log_path = workdir / "sandbox.log"
    process = processes.add("sandbox", procs.spawn(
        [sys.executable, "-m", "opencue_gateway.sandbox", "--port", "0", "--shows", "1",
         "--jobs-per-show", str(jobs), "--hosts", "10"], log_path, cwd=ROOT))
    match = procs.wait_for(lambda: LISTENING.search(log_path.read_bytes()), 60,
                           "the sandbox Cuebot", process, log_path)
    return match.group(1).decode()


async def fan_out(url: str, pid: int, token: str, watchers: list[Watcher], rounds: int,
                  interval: float) -> list[tuple[float, float, float]]:
    """Pause and resume the README job in turn.

    Per round: seconds to the first watcher's change event, to the last one's,
    and the gateway's CPU seconds from the request until the last one had it.
    """
    results = []
    for number in range(rounds):
        verb = "Pause" if number % 2 == 0 else "Resume"
        seen = [len(w.changes) for w in watchers]
        started, cpu_before = time.monotonic(), cpu_seconds(pid)
        reply = await asyncio.to_thread(
            request, f"{url}/job.JobInterface/{verb}", json.dumps({"job": {"id": README_JOB}})
            .encode(), {"Authorization": f"Bearer {token}"})
        if reply.status != 200:
            raise RuntimeError(f"{verb} answered {reply.status}: {reply.body[:200]!r}")
        await until(lambda seen=seen: all(len(w.changes) > n
                                          for w, n in zip(watchers, seen, strict=True)),
                    f"round {number + 1}: every watcher's change", 2 * interval + 30)
        cpu = cpu_seconds(pid) - cpu_before
        arrivals = [w.changes[n] - started for w, n in zip(watchers, seen, strict=True)]
        results.append((min(arrivals), max(arrivals), cpu))
        say(f"  {verb}: first watcher after {min(arrivals) * 1000:.0f} ms, "
            f"last after {max(arrivals) * 1000:.0f} ms")
        await asyncio.sleep(interval)  # the next round starts in another poll's interval
    return results


async def measure(args: argparse.Namespace, url: str, pid: int, token: str) -> dict:
    """Open the watchers, then take the figures; the watchers are closed on the way out."""
    host, port = url.removeprefix("http://").split(":")
    interval = parse_duration(args.interval)
    reply = request(f"{url}{GET_JOBS}", BODY, {"Authorization": f"Bearer {token}",
                                              "Accept-Encoding": "identity"})
    jobs = len(json.loads(reply.body)["jobs"]["jobs"])
    await asyncio.to_thread(wait_until_idle, [pid])
    baseline = rss_bytes(pid)
    watchers: list[Watcher] = []
    readers: list[asyncio.Task] = []
    try:
        started = time.monotonic()
        for offset in range(0, args.watchers, CONNECT_BATCH):
            batch = await asyncio.gather(*(
                open_watch(host, int(port), token, args.interval)
                for _ in range(min(CONNECT_BATCH, args.watchers - offset))))
            watchers.extend(batch)
            readers.extend(asyncio.create_task(w.read()) for w in batch)
        await until(lambda: all(w.snapshot_at is not None for w in watchers), "every snapshot")
        opened = time.monotonic() - started
        say(f"{len(watchers)} watchers open, each with its snapshot, in {opened:.1f} s")
        await asyncio.to_thread(wait_until_idle, [pid])
        held = rss_bytes(pid)
        say(f"idle for {args.idle_seconds:g} s ...")
        cpu_before, idle_started = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(args.idle_seconds)
        idle_cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - idle_started)
        if any(w.changes for w in watchers):
            raise RuntimeError("a change came while the farm stood still")
        rounds = await fan_out(url, pid, token, watchers, args.rounds, interval)
    finally:
        for watcher in watchers:
            watcher.close()
        await asyncio.gather(*readers, return_exceptions=True)
    return {
        "watchers": len(watchers), "jobs_in_reply": jobs, "reply_bytes": len(reply.body),
        "interval_s": interval, "open_all_s": round(opened, 2),
        "rss_before_mib": round(baseline / 2**20, 1), "rss_held_mib": round(held / 2**20, 1),
        "memory_per_watcher_kib": round((held - baseline) / len(watchers) / 1024, 1),
        "idle_cpu_ms_per_s": round(idle_cpu * 1000, 1),
        "change_to_first_ms": round(statistics.median(r[0] for r in rounds) * 1000),
        "change_to_last_ms": round(statistics.median(r[1] for r in rounds) * 1000),
        "fan_out_ms": round(statistics.median(r[1] - r[0] for r in rounds) * 1000),
        "change_cpu_ms": round(statistics.median(r[2] for r in rounds) * 1000),
    }


def report(figures: dict) -> str:
    """The figures as a Markdown table."""
    rows = [
        ("watchers (one GetJobs, shared)", f"{figures['watchers']:,}"),
        ("reply", f"{figures['jobs_in_reply']} jobs, {figures['reply_bytes']:,} bytes"),
        ("interval", f"{figures['interval_s']:g} s"),
        ("time to open all and get every snapshot", f"{figures['open_all_s']} s"),
        ("gateway RSS before / with every watcher",
         f"{figures['rss_before_mib']} / {figures['rss_held_mib']} MiB"),
        ("memory per watcher", f"{figures['memory_per_watcher_kib']} KiB"),
        ("CPU while idle", f"{figures['idle_cpu_ms_per_s']} ms per second"),
        ("change to the first watcher (median)", f"{figures['change_to_first_ms']} ms"),
        ("change to the last watcher (median)", f"{figures['change_to_last_ms']} ms"),
        ("first to last watcher (the fan-out)", f"{figures['fan_out_ms']} ms"),
        ("gateway CPU from the change to the last watcher (median)",
         f"{figures['change_cpu_ms']} ms"),
    ]
    return "\n".join(["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.watch", description=__doc__.split(
        "\n\n")[0].strip("`"))
    parser.add_argument("--watchers", type=int, default=1000, help="watches held (%(default)s)")
    parser.add_argument("--interval", default="5s", help="the watches' interval (%(default)s)")
    parser.add_argument("--idle-seconds", type=float, default=30.0,
                        help="the idle window CPU is measured over (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="changes pushed to every watcher (%(default)s)")
    parser.add_argument("--jobs", type=int, default=100,
                        help="jobs of the generated show, in the watched reply (%(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the whole measurement; servers are stopped however it ends."""
    args = parse_args(argv)
    secret = secrets.token_urlsafe(32)
    token = make_token(secret, 86400)
    with tempfile.TemporaryDirectory() as directory, procs.Processes() as processes:
        workdir = Path(directory)
        cuebot = start_sandbox(processes, workdir, args.jobs)
        say(f"sandbox Cuebot at {cuebot}")
        gateway = start_gateway(processes, workdir, cuebot, secret, extra_env={
            **FAN_IN_ENV, "WATCH_MAX_PER_PRINCIPAL": str(args.watchers + 10),
            "WATCH_MAX_TOTAL": str(args.watchers + 10)})
        say(f"gateway at {gateway.url} (pid {gateway.pid})")
        figures = asyncio.run(measure(args, gateway.url, gateway.pid, token))
    print(report(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
