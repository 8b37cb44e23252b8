"""The benchmark harness works end to end, and it counts every failure it is shown.

``python -m bench --smoke`` runs as a subprocess: it starts the stand-in, the
gateway (and Envoy and h2load where installed), measures, stops everything
and writes its JSON.  The other tests drive the harness's own pieces (wrk's
script, the large-reply client, the stand-in's gRPC error count) against
servers that fail on purpose, and check that each failure is counted; and
the pieces that choose what is measured (which gateway process, which
replies, which gzip levels).  They
assert counts and settings, never throughput or latency: performance is not
part of the test suite's pass/fail, and no assertion depends on how fast the
machine is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from bench import gzip_levels, large, load, procs, runner
from bench.__main__ import server_starters
from bench.data import Reply, build_replies
from bench.envoy import descriptor_set
from bench.gateway import (
    FAN_IN_ENV,
    FAN_IN_SERVER,
    GATEWAY_SERVER,
    HttpServer,
    gateway_env,
    settings,
)
from bench.scenarios import SCENARIOS, Scenario, select_scenarios
from bench.standin import start_standin
from bench.verify import Checked
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.compression import STREAM_LEVEL

ROOT = Path(__file__).resolve().parents[2]
# The smoke run takes about half a minute; this bound only stops a hung harness.
TIMEOUT_SECONDS = 300
FIGURES = ("rps", "p50_ms", "p99_ms", "response_bytes")
SERVER_FIGURES = ("cpu_us_per_request", "peak_rss_mib")
GOOD_BODY = b'{"shows":[]}' + b" " * 88

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install -y wrk): the benchmark harness needs it "
           "to send HTTP load",
)
needs_h2load = pytest.mark.skipif(
    shutil.which("h2load") is None,
    reason="h2load is not installed (apt-get install -y nghttp2-client)",
)
needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install -y curl)",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the smoke benchmark once for this module's tests."""
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install -y wrk)")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads(out.read_text())


def test_smoke_run_has_figures_and_no_failure_on_any_target(smoke):
    """Every small scenario was measured on every runnable target without a single failure."""
    _, document = smoke
    measured = document["measurements"]
    targets = document["meta"]["targets"]
    assert {(m["scenario"], m["target"]) for m in measured} == {
        (scenario, target) for scenario in ("shows.c1", "shows.c32") for target in targets}
    for measurement in measured:
        assert measurement["requests"] > 0, measurement
        assert measurement["errors"] == {}, measurement
        assert measurement["grpc_errors"] == 0, measurement
        names = FIGURES + (SERVER_FIGURES if measurement["target"] != "grpc" else ())
        for name in names:
            assert isinstance(measurement[name], int | float), (name, measurement)
    summary = {(row["scenario"], row["target"]) for row in document["summary"]}
    assert {("shows.c1", "gateway"), ("shows.c32", "gateway")} <= summary


def test_smoke_gateway_runs_like_for_like(smoke):
    """The default gateway has fan-in off: every request it was sent cost a Cuebot call."""
    result, document = smoke
    assert "FAN_IN=false" in document["meta"]["settings"]["gateway"]
    assert "gateway: FAN_IN=false" in result.stdout
    for measurement in document["measurements"]:
        if measurement["target"] != "gateway":
            continue
        assert measurement["server"] == "gateway"
        assert "FAN_IN=false" in measurement["settings"]
        # Only requests in flight when the load stopped (one per connection) may lack a call;
        # with fan-in on, 32 identical requests share far fewer calls than that.
        assert measurement["cuebot_calls"] >= \
            measurement["requests_sent"] - measurement["connections"], measurement


def test_smoke_run_names_every_target_it_skipped(smoke):
    """A target whose tool is missing is reported as skipped, with how to install it."""
    result, document = smoke
    meta = document["meta"]
    assert set(meta["targets"]) | set(meta["skipped"]) == {"gateway", "envoy", "grpc"}
    for target, reason in meta["skipped"].items():
        assert "install" in reason, reason
        assert f"skipping target {target}" in result.stderr
    assert "req/s" in result.stdout


class _FailingHandler(BaseHTTPRequestHandler):
    """Answers the first requests wrongly, one way each, then always well.

    The server's ``script`` lists what the n-th request gets: ``"500"``, a
    2xx with a ``"short"`` body, a body ``"cut"`` off by closing the
    connection, or ``"good"`` (the default once the list is used up).
    """

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            index = self.server.served
            self.server.served += 1
        kind = self.server.script[index] if index < len(self.server.script) else "good"
        body = b'{"code":13}' if kind == "500" else GOOD_BODY
        if kind == "short":
            body = body[:10]
        self.send_response(500 if kind == "500" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "cut":
            self.wfile.write(body[:10])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads counts, not logs."""


@pytest.fixture
def failing_server() -> Iterator[ThreadingHTTPServer]:
    """A loopback HTTP server whose first answers fail as its ``script`` says."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FailingHandler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.served = 0
    server.script = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@needs_wrk
def test_wrk_counts_every_failed_answer_and_times_only_good_ones(failing_server, tmp_path):
    """A 500, a short 2xx body and a cut-off answer are all errors, and no good answer."""
    failing_server.script = ["500", "short", "cut"]
    script = load.write_wrk_script(tmp_path / "probe.lua", b"{}", "token")
    url = f"http://127.0.0.1:{failing_server.server_address[1]}/show.ShowInterface/GetShows"
    result = load.run_wrk(shutil.which("wrk"), url, script, connections=2, warmup=1, seconds=1,
                          sample=lambda pid: None, body_bytes=len(GOOD_BODY))
    # wrk keeps the cut answer's partial body and hands it, in front of the next answer on
    # the new connection, to the script: that answer is a body error too.
    assert result.errors == {"status": 1, "body": 2, "read": 1}
    assert result.statuses == {"500": 1}
    # Answers completed in the warm-up (a whole second of them) are in no figure.
    assert 0 < result.requests < result.total_requests - 3
    assert result.latency_us["p50"] is not None


def _session(tmp_path: Path, standin, replies: dict[str, Reply],
             servers: dict[str, HttpServer] | None = None) -> runner.Session:
    """A harness session over the given servers, with the tools found on PATH."""
    return runner.Session(
        workdir=tmp_path, token="token", replies=replies, standin=standin,
        servers=servers or {}, wrk=shutil.which("wrk"), h2load=shutil.which("h2load"),
        curl=shutil.which("curl"),
    )


def _unknown_method_reply() -> Reply:
    """A reply whose path the stand-in does not serve: gRPC answers UNIMPLEMENTED in a 200."""
    shows = build_replies(MethodCatalog.default())["shows"]
    return Reply("shows", "/show.ShowInterface/NoSuchMethod", shows.request_json,
                 shows.request, shows.reply)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The benchmark's Cuebot stand-in, started and stopped by the harness's own code."""
    with procs.Processes() as processes:
        yield start_standin(processes, tmp_path_factory.mktemp("standin"), lifetime=600)


@needs_h2load
def test_grpc_errors_inside_http_200_are_counted(standin, tmp_path):
    """Calls h2load sees as HTTP 200 but gRPC failed are counted from the stand-in, all of them."""
    reply = _unknown_method_reply()
    session = _session(tmp_path, standin, {"shows": reply})
    scenario = Scenario("probe.c2", "shows", 2, "unknown method, 2 connections")
    runner.prepare_files(session, [scenario])
    try:
        measured = runner.measure(session, scenario, "grpc", run=1, seconds=1, warmup=0)
    finally:
        session.close()
    assert measured.errors == {}  # what h2load alone can tell: every answer was an HTTP 200
    assert measured.requests > 0
    assert measured.grpc_errors >= measured.requests


def _measure_large(session: runner.Session, scenario: Scenario,
                   target: str) -> large.LargeMeasurement:
    """One production-size measurement through the harness's own code."""
    runner.prepare_files(session, [scenario])
    try:
        return large.measure(session, scenario, target, run=1)
    finally:
        session.close()


@needs_curl
def test_large_client_reads_grpc_status_from_the_trailers(standin, tmp_path):
    """Real gRPC answers are good only through curl's trailers: grpc-status 0 on each."""
    replies = build_replies(MethodCatalog.default())
    session = _session(tmp_path, standin, {"shows": replies["shows"]})
    scenario = Scenario("probe.c2", "shows", 2, "GetShows", large=True, requests=1)
    measured = _measure_large(session, scenario, "grpc")
    assert measured.errors == {}
    assert measured.good == measured.requests == 2
    assert measured.grpc_errors == 0


@needs_curl
def test_large_client_counts_grpc_errors(standin, tmp_path):
    """Calls that gRPC failed inside an HTTP 200 are errors, each one, and none is timed."""
    session = _session(tmp_path, standin, {"shows": _unknown_method_reply()})
    scenario = Scenario("probe.c2", "shows", 2, "unknown method", large=True, requests=2)
    measured = _measure_large(session, scenario, "grpc")
    assert measured.requests == 4
    assert measured.good == 0
    # grpcio may answer UNIMPLEMENTED before it has read the request, then reset the
    # stream: curl then reports an HTTP/2 stream error (exit 92) instead of the trailer.
    assert sum(measured.errors.values()) == 4
    assert set(measured.errors) <= {"grpc-status 12", "curl exit 92"}
    assert measured.grpc_errors == 4
    assert measured.first_byte_ms == [] and measured.total_ms == []


def test_large_client_classifies_a_grpc_error_trailer(tmp_path):
    """A grpc-status in the trailers of curl's header dump decides whether an answer is good."""
    dump = tmp_path / "headers"
    dump.write_text("HTTP/2 200\r\ncontent-type: application/grpc\r\n\r\n"
                    "grpc-status: 13\r\ngrpc-message: boom\r\n\r\n")
    answer = large.Answer(200, 105, 0.001, 0.002, 0, "", large.read_grpc_status(dump))
    assert large.classify(answer, 105, grpc=True) == "grpc-status 13"
    dump.write_text("HTTP/2 200\r\ncontent-type: application/grpc\r\n\r\ngrpc-status: 0\r\n")
    answer.grpc_status = large.read_grpc_status(dump)
    assert large.classify(answer, 105, grpc=True) is None
    assert large.classify(answer, 106, grpc=True) == "body size"
    dump.write_text("HTTP/2 200\r\ncontent-type: application/grpc\r\n\r\n")
    answer.grpc_status = large.read_grpc_status(dump)
    assert large.classify(answer, 105, grpc=True) == "grpc-status missing"


@needs_curl
def test_large_client_counts_wrong_status_and_body_size(failing_server, standin, tmp_path):
    """Of three answers sent at once, a 500 and a short body are errors; only one is good."""
    failing_server.script = ["500", "short"]
    reply = build_replies(MethodCatalog.default())["shows"]
    server = HttpServer("probe", os.getpid(),
                        f"http://127.0.0.1:{failing_server.server_address[1]}", tmp_path / "log")
    session = _session(tmp_path, standin, {"shows": reply}, {"envoy": server})
    session.verification.checked.append(
        Checked("probe", "shows", 200, len(GOOD_BODY), "application/json"))
    scenario = Scenario("probe.c3", "shows", 3, "failing server", large=True, requests=1)
    measured = _measure_large(session, scenario, "envoy")
    assert measured.errors == {"status 500": 1, "body size": 1}
    assert measured.good == 1
    assert len(measured.total_ms) == 1
    assert measured.grpc_errors == 0


def test_fan_in_scenario_alone_runs_on_a_gateway_with_fan_in():
    """Only fanin.c200 is measured on the FAN_IN=true process; every other on FAN_IN=false."""
    args = argparse.Namespace(workers=None, gateway_env={})
    starters = server_starters(None, args, select_scenarios("shows"), ["gateway"], {},
                               Path("."), "127.0.0.1:1", "secret")
    assert set(starters) == {GATEWAY_SERVER}
    starters = server_starters(None, args, select_scenarios("shows,fanin"), ["gateway"], {},
                               Path("."), "127.0.0.1:1", "secret")
    assert set(starters) == {GATEWAY_SERVER, FAN_IN_SERVER}
    servers = {name: HttpServer(name, 0, "http://127.0.0.1:1", Path("log"))
               for name in (GATEWAY_SERVER, FAN_IN_SERVER)}
    session = _session(Path("."), None, {}, servers)
    for scenario in SCENARIOS:
        expected = FAN_IN_SERVER if scenario.fan_in else GATEWAY_SERVER
        assert session.server_for(scenario, "gateway").name == expected, scenario.name
    assert settings(gateway_env("127.0.0.1:1", "s", None), {}) == \
        "FAN_IN=false LOG_LEVEL=warn RATE_LIMIT_RPS=0"
    assert "FAN_IN=true" in settings(gateway_env("127.0.0.1:1", "s", None, FAN_IN_ENV),
                                     FAN_IN_ENV)


def test_processes_stop_ends_only_the_named_process():
    """A production-size measurement can restart one server without touching the others."""
    with procs.Processes() as processes:
        first = processes.add("first", subprocess.Popen(["sleep", "60"]))
        second = processes.add("second", subprocess.Popen(["sleep", "60"]))
        processes.stop("first")
        assert first.poll() is not None
        assert second.poll() is None
    assert second.poll() is not None


def test_large_replies_leave_the_small_ones_unchanged():
    """Asking for a production-size reply changes none of the small replies' bytes."""
    catalog = MethodCatalog.default()
    small = build_replies(catalog)
    both = build_replies(catalog, ["jobs20k"])
    assert set(both) == {*small, "jobs20k"}
    for key, reply in small.items():
        assert both[key].reply.SerializeToString() == reply.reply.SerializeToString(), key
    jobs = both["jobs20k"].reply.jobs.jobs
    assert len(jobs) == 20_000
    assert {job.show for job in jobs} == set(both["jobs20k"].request.r.shows)


def test_gzip_levels_cover_the_gateways_level_and_round_trip():
    """Each level asked for, and the gateway's own for streamed replies, is measured whole
    and in chunks."""
    body = build_replies(MethodCatalog.default())["jobs100"].reply.SerializeToString() * 4
    figures = gzip_levels.measure("probe", body, [6, 9])
    assert {(f.level, f.mode) for f in figures} == {
        (level, mode) for level in {6, 9, STREAM_LEVEL} for mode in gzip_levels.MODES}
    assert {f.level for f in figures if f.gateway_level} == {STREAM_LEVEL}
    for figure in figures:
        assert figure.input_bytes == len(body)
        assert 0 < figure.output_bytes < len(body)


def test_envoys_descriptor_set_holds_the_catalogs_services_imports_first(catalog, studio):
    """Envoy builds its pool file by file from the set: imports come first, and every
    service the gateway serves is in it, for the installed protos and a studio's."""
    for served in (catalog, studio.catalog):
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set(served))
        pool = descriptor_pool.DescriptorPool()
        for proto in files.file:
            pool.Add(proto)  # refused if one of its imports came later
        for service in served.services:
            assert pool.FindServiceByName(service).full_name == service
