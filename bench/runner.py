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
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import load, procstat, standin
from bench.data import Reply
from bench.gateway import HttpServer
from bench.scenarios import Scenario
from bench.verify import (
    Checked,
    Verification,
    check_forged_token,
    check_grpc,
    check_http,
    json_differences,
)

MIB = 1024 * 1024


@dataclass(slots=True)
class Session:
    """Everything a measurement needs: servers, tools, files and the token."""

    workdir: Path
    token: str
    replies: dict[str, Reply]
    standin: standin.StandIn
    servers: dict[str, HttpServer]
    wrk: str | None
    h2load: str | None
    scripts: dict[str, Path] = field(default_factory=dict)
    frames: dict[str, Path] = field(default_factory=dict)
    verification: Verification = field(default_factory=Verification)
    _control: grpc.Channel | None = None

    def standin_counts(self) -> int:
        """Calls the stand-in has served so far (one long-lived channel: a sample is quick)."""
        if self._control is None:
            self._control = grpc.insecure_channel(self.standin.address)
        raw = self._control.unary_unary(standin.CONTROL_CALLS)(b"", timeout=10)
        return json.loads(raw)["total"]

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
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
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
    """Write the wrk scripts and gRPC frames once per reply, before any load."""
    for key in sorted({s.reply for s in scenarios}):
        reply = session.replies[key]
        body = json.dumps(reply.request_json).encode()
        session.scripts[key] = load.write_wrk_script(
            session.workdir / f"{key}.lua", body, session.token)
        session.frames[key] = load.write_grpc_frame(
            session.workdir / f"{key}.grpc", reply.request.SerializeToString())


def verify(session: Session, scenarios: list[Scenario], targets: list[str]) -> Verification:
    """Check every target on every reply; record sizes and Envoy's differences from ours."""
    result = session.verification
    keys = sorted({s.reply for s in scenarios}, key=list(session.replies).index)
    for key in keys:
        reply = session.replies[key]
        answers: dict[str, Checked] = {}
        for target in targets:
            if target == "grpc":
                result.checked.append(check_grpc(session.standin.address, reply))
                continue
            answers[target] = check_http(session.servers[target], reply, session.token)
            result.checked.append(answers[target])
        if "gateway" in answers and "envoy" in answers:
            ours, envoy = answers["gateway"], answers["envoy"]
            differences = json_differences(ours.document, envoy.document)
            if not differences and ours.raw != envoy.raw:
                differences = ["same document, but the bytes differ (spacing or number form)"]
            result.differences[key] = differences
        for checked in answers.values():
            checked.document, checked.raw = None, b""
    for target in targets:
        if target != "grpc":
            check_forged_token(session.servers[target], session.replies[keys[0]])
    return result


@dataclass(frozen=True, slots=True)
class Sample:
    """The servers' counters at one edge of the measured window."""

    target_cpu: float
    standin_cpu: float
    tool_cpu: float
    harness_cpu: float
    machine_busy: float


def _load(session: Session, scenario: Scenario, target: str, warmup: float, seconds: int,
          sample: load.Sampler, tag: str) -> load.LoadResult:
    """Run the right load generator for a target: warm-up, then the measured window."""
    reply = session.replies[scenario.reply]
    if target == "grpc":
        assert session.h2load is not None
        return load.run_h2load(
            session.h2load, f"http://{session.standin.address}{reply.path}",
            session.frames[scenario.reply], scenario.connections, warmup, seconds, sample,
            session.workdir / f"h2load-{tag}.log",
        )
    assert session.wrk is not None
    return load.run_wrk(session.wrk, session.servers[target].url + reply.path,
                        session.scripts[scenario.reply], scenario.connections, warmup,
                        seconds, sample)


def measure(
    session: Session, scenario: Scenario, target: str, run: int, seconds: int,
    warmup: float,
) -> Measurement:
    """One continuous run; every figure but latency is a delta over the measured window."""
    server_pid = session.servers[target].pid if target in session.servers else None
    tree = procstat.process_tree(server_pid) if server_pid else []
    watched = [*tree, session.standin.pid]
    procstat.wait_until_idle(watched)
    calls_before = session.standin_counts()
    rss_start = sum(procstat.rss_bytes(pid) for pid in tree) if tree else None
    lifetime_peak = not all(procstat.reset_peak_rss(pid) for pid in tree)

    def sample(tool_pid: int) -> Sample:
        return Sample(procstat.tree_cpu_seconds(tree),
                      procstat.cpu_seconds(session.standin.pid),
                      procstat.tree_cpu_seconds([tool_pid]),
                      procstat.cpu_seconds(os.getpid()),
                      procstat.machine_busy_seconds())

    result = _load(session, scenario, target, warmup, seconds, sample,
                   f"{scenario.name}-{run}")
    first, last = result.window_samples
    peak = sum(procstat.peak_rss_bytes(pid) for pid in tree) if tree else None
    procstat.wait_until_idle(watched)
    calls = session.standin_counts() - calls_before
    cpu = last.target_cpu - first.target_cpu
    standin_cpu = last.standin_cpu - first.standin_cpu
    known = cpu + standin_cpu + (last.tool_cpu - first.tool_cpu) \
        + (last.harness_cpu - first.harness_cpu)
    other = max(0.0, (last.machine_busy - first.machine_busy) - known)
    done = result.requests or None
    return Measurement(
        run=run, scenario=scenario.name, target=target, connections=scenario.connections,
        requests=result.requests, seconds=result.seconds, rps=result.rps,
        p50_ms=result.latency_us["p50"] / 1000, p90_ms=result.latency_us["p90"] / 1000,
        p99_ms=result.latency_us["p99"] / 1000, max_ms=result.latency_us["max"] / 1000,
        errors=result.errors,
        cpu_us_per_request=cpu / done * 1e6 if tree and done else None,
        cpu_percent=cpu / result.seconds * 100 if tree else None,
        peak_rss_mib=peak / MIB if peak is not None else None,
        rss_start_mib=rss_start / MIB if rss_start is not None else None,
        peak_rss_is_lifetime=lifetime_peak,
        response_bytes=_response_bytes(session, scenario, target, result),
        standin_cpu_us_per_request=standin_cpu / done * 1e6 if done else None,
        standin_cpu_percent=standin_cpu / result.seconds * 100,
        load_cpu_percent=(last.tool_cpu - first.tool_cpu) / result.seconds * 100,
        other_cpu_percent=other / result.seconds * 100,
        requests_sent=result.sent,
        cuebot_calls=calls,
        cuebot_calls_per_request=calls / result.sent if result.sent else None,
    )


def _response_bytes(session: Session, scenario: Scenario, target: str,
                    result: load.LoadResult) -> int | None:
    """Body size: JSON body for HTTP targets; gRPC DATA bytes per call for direct gRPC."""
    if target == "grpc":
        return round(result.bytes_read / result.total_requests) if result.total_requests \
            else None
    return session.verification.body_bytes(target, scenario.reply)


def run_rounds(
    session: Session, scenarios: list[Scenario], targets: list[str], runs: int,
    seconds: int, warmup: float, progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """All rounds: for each run, each scenario, each target (interleaved, see module doc)."""
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))
    results = []
    total = runs * len(scenarios) * len(targets)
    for run in range(1, runs + 1):
        for scenario in scenarios:
            for target in targets:
                m = measure(session, scenario, target, run, seconds, warmup)
                results.append(m)
                errors = f", {sum(m.errors.values())} errors" if m.errors else ""
                cpu = f", {m.cpu_us_per_request:.0f} µs CPU/req" \
                    if m.cpu_us_per_request is not None else ""
                say(f"[{len(results)}/{total}] run {run} {scenario.name:<14} {target:<8} "
                    f"{m.rps:9.1f} req/s  p50 {m.p50_ms:8.2f} ms  p99 {m.p99_ms:8.2f} ms"
                    f"{cpu}{errors}")
    return results
