"""Production-size replies: a few whole requests, each timed to its first and its last byte.

GetJobs with 20,000 or 60,000 jobs is not a load test: on 2 cores one such
answer takes a second or more to build.  A large scenario sends ``requests``
rounds of ``connections`` requests started together (1: one request at a
time; 10: ten browsers refreshing the same page at once), each request by
its own curl process so that they really run at once, on a new connection.

curl reports, per request, the time to the first byte of the answer and to
its last, both counted from the moment the request was sent (connection
set-up is left out), the status and the body size.  For direct gRPC it
also dumps the trailers, so a ``grpc-status`` other than 0 is an error even
inside an HTTP 200.  An answer is good when its status is 200, its body has
the size the target gave in the verification pass (a target that failed
that pass gets its status checked only) and, for gRPC, its status is OK;
latencies are those of good answers only, every other answer is counted
as an error by kind.

Each measurement starts its target afresh (a new gateway or Envoy
process, same settings): a process that has built a 60,000-job answer
keeps much of that memory, and its "idle" RSS would hide what the next
answers cost.  Around the rounds the harness reads the target's CPU time
and resets, then reads, its peak RSS (``VmHWM``).  CPU per request covers
all the target did for the requests until it is idle again.  The *extra*
peak RSS is the peak over the RSS the fresh target had, idle, just before
the first round: the memory the replies cost.  gRPC-level errors are the
stand-in's failed calls over the rounds, as in :mod:`bench.runner`.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import procstat
from bench.gateway import HttpServer
from bench.scenarios import Scenario

if TYPE_CHECKING:
    from bench.runner import Session

MIB = 1024 * 1024
INSTALL_HINT = "apt-get update && apt-get install -y curl"
# One 60,000-job answer takes about a second alone; ten at once on 2 cores, tens of seconds.
REQUEST_TIMEOUT_SECONDS = 300
# curl's -w: every variable as one JSON object per transfer.
_WRITE_OUT = "%{json}\n"


@dataclass(slots=True)
class Answer:
    """What curl saw of one request."""

    status: int
    body_bytes: int
    first_byte_s: float
    total_s: float
    exit_code: int
    message: str
    grpc_status: str | None = None


@dataclass(slots=True)
class LargeMeasurement:
    """One large scenario on one target: per-request timings, CPU, memory and errors."""

    run: int
    scenario: str
    target: str
    server: str
    settings: str
    connections: int
    requests: int
    good: int
    seconds: float
    first_byte_ms: list[float]
    total_ms: list[float]
    cpu_ms_per_request: float | None
    cpu_percent: float | None
    rss_idle_mib: float | None
    peak_rss_mib: float | None
    extra_peak_rss_mib: float | None
    peak_rss_is_lifetime: bool
    response_bytes: int | None
    errors: dict[str, int]
    error_messages: list[str]
    grpc_errors: int
    standin_cpu_ms_per_request: float
    load_cpu_percent: float
    other_cpu_percent: float
    figures: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.figures = {
            "first_byte_p50_ms": _median(self.first_byte_ms),
            "first_byte_max_ms": max(self.first_byte_ms, default=None),
            "total_p50_ms": _median(self.total_ms),
            "total_max_ms": max(self.total_ms, default=None),
        }

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON file."""
        return asdict(self)


def _median(values: list[float]) -> float | None:
    """The median, or None when no answer was good."""
    return statistics.median(values) if values else None


def prepare_files(session: Session, scenarios: list[Scenario]) -> None:
    """The request bodies, and the headers file (the token stays out of curl's argv)."""
    headers = session.workdir / "curl-headers.txt"
    headers.write_text(f"Authorization: Bearer {session.token}\n"
                       "Content-Type: application/json\nExpect:\n")
    for key in sorted({s.reply for s in scenarios if s.large}):
        body = json.dumps(session.replies[key].request_json).encode()
        (session.workdir / f"{key}.json").write_bytes(body)


def curl_argv(session: Session, scenario: Scenario, server: HttpServer | None,
              dump: Path) -> list[str]:
    """One curl request: HTTP/1.1 JSON to a gateway, or gRPC over h2c to the stand-in."""
    assert session.curl is not None
    reply = session.replies[scenario.reply]
    common = [session.curl, "-sS", "-o", "/dev/null", "-w", _WRITE_OUT,
              "--max-time", str(REQUEST_TIMEOUT_SECONDS)]
    if server is None:
        return [*common, "--http2-prior-knowledge", "-D", str(dump),
                "--data-binary", f"@{session.frames[scenario.reply]}",
                "-H", "content-type: application/grpc", "-H", "te: trailers",
                f"http://{session.standin.address}{reply.path}"]
    return [*common, "--http1.1", "-H", f"@{session.workdir / 'curl-headers.txt'}",
            "--data-binary", f"@{session.workdir / (scenario.reply + '.json')}",
            server.url + reply.path]


def run_round(argvs: list[list[str]], dumps: list[Path]) -> list[Answer]:
    """Start every request at once; wait for all; what curl saw of each."""
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for argv in argvs]
    answers = []
    try:
        for process, dump in zip(processes, dumps, strict=True):
            stdout, stderr = process.communicate(timeout=REQUEST_TIMEOUT_SECONDS + 60)
            answers.append(_answer(stdout, stderr, process.returncode, dump))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return answers


def _answer(stdout: str, stderr: str, returncode: int, dump: Path) -> Answer:
    """One curl's ``-w`` JSON (and header dump, for gRPC) as an :class:`Answer`."""
    try:
        out = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return Answer(0, 0, 0.0, 0.0, returncode or -1, (stderr or stdout).strip()[-200:])
    sent = out.get("time_pretransfer") or 0.0
    return Answer(
        status=int(out.get("http_code") or 0),
        body_bytes=int(out.get("size_download") or 0),
        first_byte_s=max(0.0, (out.get("time_starttransfer") or 0.0) - sent),
        total_s=max(0.0, (out.get("time_total") or 0.0) - sent),
        exit_code=int(out.get("exitcode") or returncode),
        message=out.get("errormsg") or stderr.strip()[-200:],
        grpc_status=read_grpc_status(dump),
    )


def read_grpc_status(dump: Path) -> str | None:
    """The last ``grpc-status`` in curl's header dump (trailers come last), if any."""
    if not dump.exists():
        return None
    found = None
    for line in dump.read_text(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "grpc-status":
            found = value.strip()
    return found


def classify(answer: Answer, expected_bytes: int | None, grpc: bool) -> str | None:
    """The kind of error an answer is, or None when it is good."""
    if answer.exit_code != 0:
        return f"curl exit {answer.exit_code}"
    if answer.status != 200:
        return f"status {answer.status}"
    if grpc and answer.grpc_status != "0":
        return f"grpc-status {answer.grpc_status or 'missing'}"
    if expected_bytes is not None and answer.body_bytes != expected_bytes:
        return "body size"
    return None


def expected_bytes(session: Session, scenario: Scenario, server: HttpServer | None) -> int | None:
    """The body size of a good answer: the verified one, or the gRPC frame of the reply."""
    if server is None:
        return 5 + session.replies[scenario.reply].reply.ByteSize()
    return session.verification.body_bytes(server.name, scenario.reply)


def measure(session: Session, scenario: Scenario, target: str, run: int) -> LargeMeasurement:
    """The scenario's rounds on one target, freshly started, with CPU, memory and errors."""
    server = session.server_for(scenario, target)
    if server is not None and session.restart is not None:
        server = session.restart(server.name)
    tree = procstat.process_tree(server.pid) if server else []
    watched = [*tree, session.standin.pid]
    procstat.wait_until_idle(watched)
    before = session.standin_counts()
    rss_idle = sum(procstat.rss_bytes(pid) for pid in tree) if tree else None
    lifetime_peak = not all(procstat.reset_peak_rss(pid) for pid in tree)
    start = _counters(tree, session.standin.pid)
    answers: list[Answer] = []
    began = time.monotonic()
    for round_number in range(scenario.requests):
        dumps = [session.workdir / f"curl-{scenario.name}-{run}-{round_number}-{i}.headers"
                 for i in range(scenario.connections)]
        for dump in dumps:
            dump.unlink(missing_ok=True)
        answers += run_round([curl_argv(session, scenario, server, d) for d in dumps], dumps)
    seconds = time.monotonic() - began
    peak = sum(procstat.peak_rss_bytes(pid) for pid in tree) if tree else None
    procstat.wait_until_idle(watched)
    end = _counters(tree, session.standin.pid)
    after = session.standin_counts()
    return _measurement(session, scenario, target, server, run, answers, seconds,
                        (start, end), (rss_idle, peak, lifetime_peak),
                        after.failed - before.failed)


@dataclass(frozen=True, slots=True)
class _Counters:
    """CPU seconds at one instant: the target's, the stand-in's, curl's, the harness's, all."""

    target: float
    standin: float
    children: float
    harness: float
    machine: float
    at: float


def _counters(tree: list[int], standin_pid: int) -> _Counters:
    """Read every CPU counter the measurement needs, now."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _Counters(procstat.tree_cpu_seconds(tree), procstat.cpu_seconds(standin_pid),
                     children.ru_utime + children.ru_stime, procstat.cpu_seconds(os.getpid()),
                     procstat.machine_busy_seconds(), time.monotonic())


def _measurement(
    session: Session, scenario: Scenario, target: str, server: HttpServer | None, run: int,
    answers: list[Answer], seconds: float, cpu: tuple[_Counters, _Counters],
    memory: tuple[int | None, int | None, bool], grpc_errors: int,
) -> LargeMeasurement:
    """The figures of one measurement from its answers and counters."""
    start, end = cpu
    rss_idle, peak, lifetime_peak = memory
    expected = expected_bytes(session, scenario, server)
    errors: dict[str, int] = {}
    messages: list[str] = []
    good = []
    for answer in answers:
        kind = classify(answer, expected, server is None)
        if kind is None:
            good.append(answer)
            continue
        errors[kind] = errors.get(kind, 0) + 1
        if answer.message and answer.message not in messages:
            messages.append(answer.message)
    sent = len(answers)
    target_cpu = end.target - start.target
    standin_cpu = end.standin - start.standin
    load_cpu = end.children - start.children
    elapsed = end.at - start.at
    known = target_cpu + standin_cpu + load_cpu + (end.harness - start.harness)
    other = max(0.0, (end.machine - start.machine) - known)
    return LargeMeasurement(
        run=run, scenario=scenario.name, target=target,
        server=server.name if server else "grpc", settings=server.settings if server else "",
        connections=scenario.connections, requests=sent, good=len(good), seconds=seconds,
        first_byte_ms=[a.first_byte_s * 1000 for a in good],
        total_ms=[a.total_s * 1000 for a in good],
        cpu_ms_per_request=target_cpu / sent * 1000 if server and sent else None,
        cpu_percent=target_cpu / elapsed * 100 if server and elapsed else None,
        rss_idle_mib=rss_idle / MIB if rss_idle is not None else None,
        peak_rss_mib=peak / MIB if peak is not None else None,
        extra_peak_rss_mib=(peak - rss_idle) / MIB if peak is not None and rss_idle is not None
        else None,
        peak_rss_is_lifetime=lifetime_peak,
        response_bytes=expected,
        errors=errors,
        error_messages=messages[:5],
        grpc_errors=grpc_errors,
        standin_cpu_ms_per_request=standin_cpu / sent * 1000 if sent else 0.0,
        load_cpu_percent=load_cpu / elapsed * 100 if elapsed else 0.0,
        other_cpu_percent=other / elapsed * 100 if elapsed else 0.0,
    )


def progress_line(m: LargeMeasurement) -> str:
    """One line of progress on stderr for a large measurement."""
    f = m.figures

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f} ms"

    parts = [f"{m.good}/{m.requests} good", f"first byte p50 {ms(f['first_byte_p50_ms'])}",
             f"total p50 {ms(f['total_p50_ms'])}"]
    if m.cpu_ms_per_request is not None:
        parts.append(f"{m.cpu_ms_per_request:,.0f} ms CPU/req")
    if m.extra_peak_rss_mib is not None:
        parts.append(f"+{m.extra_peak_rss_mib:,.0f} MiB peak RSS")
    if m.errors:
        parts.append("errors " + ", ".join(f"{k}: {v}" for k, v in m.errors.items()))
    if m.grpc_errors:
        parts.append(f"{m.grpc_errors} gRPC errors")
    return "  ".join(parts)
