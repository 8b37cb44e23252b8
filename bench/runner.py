"""One benchmark session: start everything, check it, measure each scenario and target.

The order of a session is fixed: the stand-in, then the gateway and Envoy
(both pointed at it), one verification pass, then ``runs`` rounds.  Each
round goes through every scenario and, inside it, every target, so slow
drift of the machine (thermal, page cache, other tenants) spreads evenly
over the targets instead of landing on whichever ran last.

A measurement is one continuous load run: a warm-up, then the measured
window (see :mod:`bench.load`).  At the window's two edges the harness
samples the CPU time of the target process and of the stand-in, so
throughput and CPU per request belong to the window alone.  Before the run
the harness waits until the target is idle (it may still be serving
requests abandoned by the previous run) and resets its peak-RSS mark, so the
peak covers this run.

Cuebot calls per client request are counted over the whole run instead:
the stand-in's calls from before the first request until the target is
idle again after the last, divided by the requests the load generator
sent (answered or abandoned).  A window cannot pair them: with 200 clients
a call reaches Cuebot a second or more before its answer reaches the
client, so calls and completions in the same 10 s differ by several percent.

gRPC-level errors are the calls the stand-in ended with a status other
than OK (see :mod:`bench.standin`), from before the first request to the
window's end, for every target: for direct gRPC they are the errors h2load
cannot see inside an HTTP 200; through a gateway they are failed Cuebot
calls.  The tail second is left out because stopping the load generator
cancels the calls still in flight, and gRPC counts a cancelled call as
failed.

The fan-in scenario is measured on its own gateway process (``FAN_IN=true``),
every other gateway scenario on the like-for-like one: each measurement
records which process it measured and with which settings.  The
production-size scenarios are measured by :mod:`bench.large`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import large, load, procstat, standin
from bench import say as bench_say
from bench.data import Reply
from bench.gateway import FAN_IN_SERVER, GATEWAY_SERVER, HttpServer
from bench.scenarios import Scenario
from bench.verify import (
    Checked,
    Verification,
    check_forged_token,
    check_grpc,
    check_http,
    check_http_large,
    compare_answers,
)

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StandinCounts:
    """The stand-in's counters at one instant: calls served, calls ended with an error."""

    calls: int
    failed: int


@dataclass(slots=True)
class Session:
    """Everything a measurement needs: servers (by name), tools, files and the token."""

    workdir: Path
    token: str
    replies: dict[str, Reply]
    standin: standin.StandIn
    servers: dict[str, HttpServer]
    wrk: str | None
    h2load: str | None
    curl: str | None = None
    # Stops a server by name and starts it afresh (production-size measurements).
    restart: Callable[[str], HttpServer] | None = None
    scripts: dict[str, Path] = field(default_factory=dict)
    frames: dict[str, Path] = field(default_factory=dict)
    verification: Verification = field(default_factory=Verification)
    _control: grpc.Channel | None = None

    def standin_counts(self) -> StandinCounts:
        """The stand-in's counters now (one long-lived channel: a sample is quick)."""
        if self._control is None:
            self._control = grpc.insecure_channel(self.standin.address)
        raw = json.loads(self._control.unary_unary(standin.CONTROL_CALLS)(b"", timeout=10))
        return StandinCounts(raw["total"], raw["failed"])

    def server_for(self, scenario: Scenario, target: str) -> HttpServer | None:
        """The process a scenario measures for a target; None for direct gRPC."""
        if target == "grpc":
            return None
        if target == "gateway":
            return self.servers[FAN_IN_SERVER if scenario.fan_in else GATEWAY_SERVER]
        return self.servers[target]

    def close(self) -> None:
        """Close the control channel."""
        if self._control is not None:
            self._control.close()
            self._control = None


@dataclass(slots=True)
class Measurement:
    """One measured window of one scenario on one target."""

    run: int
    scenario: str
    target: str
    server: str
    settings: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors: dict[str, int]
    grpc_errors: int
    cpu_us_per_request: float | None
    cpu_percent: float | None
    peak_rss_mib: float | None
    rss_start_mib: float | None
    peak_rss_is_lifetime: bool
    response_bytes: int | None
    standin_cpu_us_per_request: float | None
    standin_cpu_percent: float
    load_cpu_percent: float
    other_cpu_percent: float
    requests_sent: int
    cuebot_calls: int
    cuebot_calls_per_request: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON file."""
        return asdict(self)


def prepare_files(session: Session, scenarios: list[Scenario]) -> None:
    """Write the wrk scripts, gRPC frames and curl files once per reply, before any load."""
    for key in sorted({s.reply for s in scenarios}):
        reply = session.replies[key]
        body = json.dumps(reply.request_json).encode()
        session.scripts[key] = load.write_wrk_script(
            session.workdir / f"{key}.lua", body, session.token)
        session.frames[key] = load.write_grpc_frame(
            session.workdir / f"{key}.grpc", reply.request.SerializeToString())
    large.prepare_files(session, scenarios)


def verify(session: Session, scenarios: list[Scenario], targets: list[str]) -> Verification:
    """Check every process on every reply it will serve; record sizes and Envoy's differences.

    A small reply that a target answers wrongly stops the benchmark: its
    figures would measure error pages.  A production-size reply may fail
    on a target (Envoy's buffers, a gateway's limits): that is recorded,
    reported, and measured as it is.
    """
    result = session.verification
    order = list(session.replies)
    checked: set[tuple[str, str]] = set()
    answers: dict[tuple[str, str], Checked] = {}
    for scenario in sorted(scenarios, key=lambda s: order.index(s.reply)):
        reply = session.replies[scenario.reply]
        for target in targets:
            server = session.server_for(scenario, target)
            name = server.name if server else "grpc"
            if (name, reply.key) in checked:
                continue
            checked.add((name, reply.key))
            if server is None:
                result.checked.append(check_grpc(session.standin.address, reply))
                continue
            check = check_http_large if scenario.large else check_http
            answers[name, reply.key] = check(server, reply, session.token)
            result.checked.append(answers[name, reply.key])
    for key in dict.fromkeys(k for _, k in answers):
        ours, envoy = answers.get((GATEWAY_SERVER, key)), answers.get(("envoy", key))
        if ours and envoy:
            result.differences[key] = compare_answers(ours, envoy)
        if ours and ours.raw and any(s.large and s.reply == key for s in scenarios):
            result.bodies[key] = ours.raw
    for checked_answer in answers.values():
        checked_answer.document, checked_answer.raw = None, b""
    for server in {session.server_for(s, t) for s in scenarios for t in targets} - {None}:
        check_forged_token(server, session.replies[scenarios[0].reply])
    return result


@dataclass(frozen=True, slots=True)
class Sample:
    """The servers' counters at one edge of the measured window."""

    target_cpu: float
    standin_cpu: float
    tool_cpu: float
    harness_cpu: float
    machine_busy: float
    standin: StandinCounts


def _load(session: Session, scenario: Scenario, target: str, warmup: float, seconds: int,
          sample: load.Sampler, tag: str) -> load.LoadResult:
    """Run the right load generator for a target: warm-up, then the measured window."""
    reply = session.replies[scenario.reply]
    server = session.server_for(scenario, target)
    if server is None:
        assert session.h2load is not None
        return load.run_h2load(
            session.h2load, f"http://{session.standin.address}{reply.path}",
            session.frames[scenario.reply], scenario.connections, warmup, seconds, sample,
            session.workdir / f"h2load-{tag}.log",
        )
    assert session.wrk is not None
    body_bytes = session.verification.body_bytes(server.name, scenario.reply)
    assert body_bytes is not None, (server.name, scenario.reply)
    return load.run_wrk(session.wrk, server.url + reply.path, session.scripts[scenario.reply],
                        scenario.connections, warmup, seconds, sample, body_bytes)


def _ms(microseconds: float | None) -> float | None:
    """A latency in ms, or None when no answer was good enough to have one."""
    return None if microseconds is None else microseconds / 1000


def measure(
    session: Session, scenario: Scenario, target: str, run: int, seconds: int,
    warmup: float,
) -> Measurement:
    """One continuous run; every figure but latency is a delta over the measured window."""
    server = session.server_for(scenario, target)
    tree = procstat.process_tree(server.pid) if server else []
    watched = [*tree, session.standin.pid]
    procstat.wait_until_idle(watched)
    before = session.standin_counts()
    rss_start = sum(procstat.rss_bytes(pid) for pid in tree) if tree else None
    lifetime_peak = not all(procstat.reset_peak_rss(pid) for pid in tree)

    def sample(tool_pid: int) -> Sample:
        return Sample(procstat.tree_cpu_seconds(tree),
                      procstat.cpu_seconds(session.standin.pid),
                      procstat.tree_cpu_seconds([tool_pid]),
                      procstat.cpu_seconds(os.getpid()),
                      procstat.machine_busy_seconds(),
                      session.standin_counts())

    result = _load(session, scenario, target, warmup, seconds, sample,
                   f"{scenario.name}-{run}")
    first, last = result.window_samples
    peak = sum(procstat.peak_rss_bytes(pid) for pid in tree) if tree else None
    procstat.wait_until_idle(watched)
    calls = session.standin_counts().calls - before.calls
    cpu = last.target_cpu - first.target_cpu
    standin_cpu = last.standin_cpu - first.standin_cpu
    known = cpu + standin_cpu + (last.tool_cpu - first.tool_cpu) \
        + (last.harness_cpu - first.harness_cpu)
    other = max(0.0, (last.machine_busy - first.machine_busy) - known)
    done = result.requests or None
    return Measurement(
        run=run, scenario=scenario.name, target=target,
        server=server.name if server else "grpc", settings=server.settings if server else "",
        connections=scenario.connections,
        requests=result.requests, seconds=result.seconds, rps=result.rps,
        p50_ms=_ms(result.latency_us["p50"]), p90_ms=_ms(result.latency_us["p90"]),
        p99_ms=_ms(result.latency_us["p99"]), max_ms=_ms(result.latency_us["max"]),
        errors=result.errors,
        grpc_errors=last.standin.failed - before.failed,
        cpu_us_per_request=cpu / done * 1e6 if tree and done else None,
        cpu_percent=cpu / result.seconds * 100 if tree else None,
        peak_rss_mib=peak / MIB if peak is not None else None,
        rss_start_mib=rss_start / MIB if rss_start is not None else None,
        peak_rss_is_lifetime=lifetime_peak,
        response_bytes=_response_bytes(session, scenario, server, result),
        standin_cpu_us_per_request=standin_cpu / done * 1e6 if done else None,
        standin_cpu_percent=standin_cpu / result.seconds * 100,
        load_cpu_percent=(last.tool_cpu - first.tool_cpu) / result.seconds * 100,
        other_cpu_percent=other / result.seconds * 100,
        requests_sent=result.sent,
        cuebot_calls=calls,
        cuebot_calls_per_request=calls / result.sent if result.sent else None,
    )


def _response_bytes(session: Session, scenario: Scenario, server: HttpServer | None,
                    result: load.LoadResult) -> int | None:
    """Body size: JSON body for HTTP targets; gRPC DATA bytes per call for direct gRPC."""
    if server is None:
        return round(result.bytes_read / result.total_requests) if result.total_requests \
            else None
    return session.verification.body_bytes(server.name, scenario.reply)


def run_rounds(
    session: Session, scenarios: list[Scenario], targets: list[str], runs: int,
    seconds: int, warmup: float, progress: Callable[[str], None] | None = None,
) -> tuple[list[Measurement], list[large.LargeMeasurement]]:
    """All rounds: for each run, each scenario, each target (interleaved, see module doc)."""
    say = progress or bench_say
    results: list[Measurement] = []
    large_results: list[large.LargeMeasurement] = []
    total = runs * len(scenarios) * len(targets)
    done = 0
    for run in range(1, runs + 1):
        for scenario in scenarios:
            for target in targets:
                done += 1
                if scenario.large:
                    big = large.measure(session, scenario, target, run)
                    large_results.append(big)
                    say(f"[{done}/{total}] run {run} {scenario.name:<14} {target:<8} "
                        + large.progress_line(big))
                    continue
                m = measure(session, scenario, target, run, seconds, warmup)
                results.append(m)
                errors = sum(m.errors.values())
                failures = (f", {errors} errors" if errors else "") \
                    + (f", {m.grpc_errors} gRPC errors" if m.grpc_errors else "")
                cpu = f", {m.cpu_us_per_request:.0f} µs CPU/req" \
                    if m.cpu_us_per_request is not None else ""
                say(f"[{done}/{total}] run {run} {scenario.name:<14} {target:<8} "
                    f"{m.rps:9.1f} req/s  p50 {_fmt_ms(m.p50_ms)}  p99 {_fmt_ms(m.p99_ms)}"
                    f"{cpu}{failures}")
    return results, large_results


def _fmt_ms(value: float | None) -> str:
    """A latency for the progress line."""
    return "       - ms" if value is None else f"{value:8.2f} ms"
