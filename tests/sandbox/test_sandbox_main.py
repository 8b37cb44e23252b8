"""``python -m opencue_gateway.sandbox`` announces its address, stops cleanly on signals,
and takes farm-size and simulation flags."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opencue_proto import job_pb2, job_pb2_grpc, show_pb2, show_pb2_grpc

from opencue_gateway.config import sandbox_config
from opencue_gateway.sandbox.__main__ import DEFAULT_PORT, build_server, main, parse_args
from opencue_gateway.sandbox.generate import FarmSpec
from tests.sandbox.sandbox_support import CALL_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^sandbox Cuebot listening on (127\.0\.0\.1:(\d+))$")
STARTUP_TIMEOUT = 30.0


@pytest.fixture
def sandbox_process() -> Iterator[subprocess.Popen[str]]:
    """The sandbox as a child process on a free port; killed if a test leaves it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "opencue_gateway.sandbox", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=CALL_TIMEOUT)
        process.stdout.close()


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first line the process prints, failing the test if none comes in time."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=STARTUP_TIMEOUT), "the sandbox printed nothing"
    return process.stdout.readline().rstrip("\n")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_prints_listening_line_serves_and_exits_zero(sandbox_process, stop_signal):
    """The process prints its real address, serves gRPC, and exits 0 on SIGTERM or SIGINT."""
    match = LISTENING.match(_first_line(sandbox_process))
    assert match is not None
    assert int(match.group(2)) > 0
    with grpc.insecure_channel(match.group(1)) as channel:
        stub = show_pb2_grpc.ShowInterfaceStub(channel)
        shows = stub.GetShows(show_pb2.ShowGetShowsRequest(), timeout=CALL_TIMEOUT).shows.shows
    assert [show.name for show in shows] == ["testing"]
    sandbox_process.send_signal(stop_signal)
    assert sandbox_process.wait(timeout=15) == 0


def test_defaults_are_loopback_and_cuebots_port():
    """Without arguments the sandbox binds 127.0.0.1 on Cuebot's port 8443."""
    args = parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", DEFAULT_PORT) == ("127.0.0.1", 8443)


def test_scale_and_simulation_flags():
    """The preset, farm-size, seed, simulation and log flags reach the settings, typed."""
    args = parse_args([
        "--shows", "2", "--jobs-per-show", "3", "--layers-per-job", "4", "--frames-per-layer",
        "5", "--hosts", "6", "--seed", "7", "--simulate", "--tick-seconds", "2.5", "--speed",
        "10", "--failure-rate", "0.5", "--preset", "lively", "--log-root", "/tmp/logs",
    ])
    flags = {"enabled": "true", **{k: v for k, v in vars(args).items()
                                   if k not in ("host", "port", "simulate")},
             "simulate": "true"}
    config = sandbox_config(flags, environ={})
    assert (config.preset, config.log_root) == ("lively", "/tmp/logs")
    assert (config.shows, config.jobs_per_show, config.layers_per_job) == (2, 3, 4)
    assert (config.frames_per_layer, config.hosts, config.seed) == (5, 6, 7)
    assert (config.simulate, config.tick_seconds, config.speed, config.failure_rate) == (
        True, 2.5, 10.0, 0.5
    )


@pytest.mark.parametrize(("flags", "words"), [
    (["--hosts", "-1"], "--hosts: expected a whole number from 0"),
    (["--speed", "0"], "--speed: expected a factor from 0.001"),
    (["--tick-seconds", "x"], "--tick-seconds: expected seconds from 0.001"),
    (["--preset", "busy"], "--preset: expected lively or readme"),
])
def test_bad_flag_values_are_refused(flags, words, capsys):
    """Negative sizes, non-positive speeds or ticks and unknown presets stop the command with
    one line naming the flag, exit status 2."""
    assert main(["--port", "0", *flags]) == 2
    assert capsys.readouterr().err.startswith(f"python -m opencue_gateway.sandbox: {words}")


def test_without_size_flags_the_farm_is_the_seed_and_still():
    """No size flag: the README's seed farm, and no simulator."""
    server = build_server(parse_args([]))
    assert [show.name for show in server.farm.shows()] == ["testing"]
    assert server.simulator is None


def test_the_lively_preset_simulates_and_logs_where_asked(tmp_path):
    """--preset lively builds the studio with a simulator; --log-root makes it write logs."""
    server = build_server(parse_args(["--preset", "lively", "--log-root", str(tmp_path)]))
    assert len(server.farm.shows()) > 1 and server.simulator is not None
    assert server.simulator.logs.root == tmp_path.resolve()
    assert list(tmp_path.rglob("*.rqlog"))


def test_a_log_root_that_cannot_be_made_exits_2_with_one_line(tmp_path, capsys):
    """A log root under a file cannot be created: one line on stderr, exit status 2."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--port", "0", "--log-root", str(blocker / "logs")]) == 2
    assert capsys.readouterr().err.startswith(
        f"python -m opencue_gateway.sandbox: --log-root: log root {blocker / 'logs'}: "
    )


def test_size_flags_generate_and_simulate_drives_the_farm():
    """Any size flag adds a generated farm (others at their defaults); --simulate attaches one."""
    server = build_server(parse_args(["--shows", "2", "--frames-per-layer", "2", "--simulate",
                                      "--tick-seconds", "5", "--speed", "4", "--seed", "3"]))
    assert [show.name for show in server.farm.shows()] == ["testing", "show001", "show002"]
    assert len(server.farm.jobs()) == 1 + 2 * FarmSpec().jobs_per_show
    assert len(server.farm.hosts()) == 1 + FarmSpec().hosts
    simulator = server.simulator
    assert (simulator.farm, simulator.tick_seconds, simulator.speed) == (server.farm, 5.0, 4.0)


def test_simulated_process_runs_frames():
    """With --simulate the process's farm moves: a frame is RUNNING or done within seconds."""
    process = subprocess.Popen(
        [sys.executable, "-m", "opencue_gateway.sandbox", "--port", "0", "--shows", "1",
         "--jobs-per-show", "1", "--hosts", "2", "--simulate", "--tick-seconds", "30",
         "--speed", "300"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        match = LISTENING.match(_first_line(process))
        assert match is not None
        with grpc.insecure_channel(match.group(1)) as channel:
            stub = job_pb2_grpc.JobInterfaceStub(channel)
            request = job_pb2.JobGetJobsRequest(r=job_pb2.JobSearchCriteria(shows=["show001"]))
            deadline = time.monotonic() + STARTUP_TIMEOUT
            started = 0
            while not started and time.monotonic() < deadline:
                jobs = stub.GetJobs(request, timeout=CALL_TIMEOUT).jobs.jobs
                started = sum(j.job_stats.running_frames + j.job_stats.succeeded_frames
                              for j in jobs)
                time.sleep(0.1)
        assert started > 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        process.stdout.close()
