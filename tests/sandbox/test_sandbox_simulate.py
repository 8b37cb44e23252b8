"""The simulated farm moves: frames dispatch, run and end, stats add up, no host is over-booked."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from opencue_proto import host_pb2, job_pb2, show_pb2

from opencue_gateway.sandbox import Farm, SandboxServer, seed
from opencue_gateway.sandbox.generate import generated_farm
from opencue_gateway.sandbox.seed import seeded_farm
from opencue_gateway.sandbox.simulate import Simulator
from tests.sandbox.sandbox_support import START, FakeClock

# A live simulator must have ticked within this many seconds.
LIVE_TIMEOUT = 10.0


def _farm(**spec) -> Farm:
    """A small generated farm on a fake clock."""
    sizes = {"shows": 2, "jobs_per_show": 3, "layers_per_job": 2, "frames_per_layer": 30,
             "hosts": 6, "seed": 11, **spec}
    return generated_farm(clock=FakeClock(START), **sizes)


def _states(farm: Farm) -> list[tuple[str, int, int, int]]:
    """Every frame's id, state, retry count and start time, for comparing two runs."""
    return [
        (frame.id, frame.state, frame.retry_count, frame.start_time)
        for job in farm.jobs() for layer in job.layers.values() for frame in layer.frames
    ]


def test_after_some_ticks_frames_succeed_and_every_stat_adds_up(serve):
    """After N ticks some frames succeeded, stats agree at every level, no host is over-booked."""
    farm = _farm()
    simulator = Simulator(farm, seed=3, tick_seconds=30, failure_rate=0.2)
    simulator.step(40)
    cue = serve(farm)
    jobs = cue.job.GetJobs(job_pb2.JobGetJobsRequest(
        r=job_pb2.JobSearchCriteria(include_finished=True)
    )).jobs.jobs
    succeeded = sum(job.job_stats.succeeded_frames for job in jobs)
    assert succeeded > 0
    for job in jobs:
        stats = job.job_stats
        layers = cue.job.GetLayers(job_pb2.JobGetLayersRequest(job=job)).layers.layers
        states = ("waiting", "running", "dead", "eaten", "depend", "succeeded")
        parts = sum(getattr(stats, f"{state}_frames") for state in states)
        assert parts == stats.total_frames == sum(lay.layer_stats.total_frames for lay in layers)
        for state in states:
            assert getattr(stats, f"{state}_frames") == sum(
                getattr(lay.layer_stats, f"{state}_frames") for lay in layers
            )
        assert stats.rendered_frame_count == stats.succeeded_frames
        assert stats.reserved_cores == sum(lay.layer_stats.reserved_cores for lay in layers)
    for show in cue.show.GetShows(show_pb2.ShowGetShowsRequest()).shows.shows:
        pending = [j for j in jobs if j.show == show.name and j.state == job_pb2.PENDING]
        assert show.show_stats.running_frames == sum(j.job_stats.running_frames for j in pending)
        assert show.show_stats.pending_jobs == len(pending)
    hosts = cue.host.GetHosts(host_pb2.HostGetHostsRequest()).hosts.hosts
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    for host in hosts:
        assert 0 <= host.idle_cores <= host.cores
        assert 0 <= host.idle_memory <= host.memory
        booked = sum(p.reserved_cores for p in procs if p.name.startswith(f"{host.name}/"))
        assert host.cores - host.idle_cores == pytest.approx(booked)
    running = sum(job.job_stats.running_frames for job in jobs)
    assert running == len([p for p in procs if p.frame_name])


def test_frames_have_realistic_times_and_memory(serve):
    """Finished frames carry start and stop times a tick or more apart, exit status, peak memory."""
    farm = _farm()
    Simulator(farm, seed=5, tick_seconds=60, failure_rate=0.0).step(30)
    done = [
        frame for job in farm.jobs() for layer in job.layers.values() for frame in layer.frames
        if frame.state == job_pb2.SUCCEEDED
    ]
    assert done
    for frame in done:
        assert frame.stop_time - frame.start_time >= 60
        assert frame.exit_status == 0
        assert 0 < frame.max_rss <= frame.layer.min_memory


def test_the_same_seed_gives_the_same_farm():
    """Two runs with the same spec, seed and ticks end with identical frames."""
    runs = []
    for _ in range(2):
        farm = _farm()
        Simulator(farm, seed=9, tick_seconds=20, failure_rate=0.3).step(25)
        runs.append(_states(farm))
    assert runs[0] == runs[1]
    assert Counter(state for _, state, _, _ in runs[0])[job_pb2.SUCCEEDED] > 0


def test_time_is_simulated_and_the_farm_clock_follows():
    """Each tick moves the farm's clock by tick_seconds, whatever the wall clock does."""
    farm = _farm()
    simulator = Simulator(farm, tick_seconds=15)
    simulator.step(4)
    assert farm.now() == START + 60 == simulator.now()
    comment = farm.add_comment(farm.job(seed.JOB_ID), "me", "s", "m")
    assert comment.timestamp == START + 60


def test_failing_frames_retry_then_die(serve):
    """With every run failing, frames are retried max_retries times, then DEAD."""
    farm = _farm(shows=1, jobs_per_show=1, layers_per_job=1, frames_per_layer=4)
    for job in farm.jobs():
        job.max_retries = 2
    Simulator(farm, seed=1, tick_seconds=1000, failure_rate=1.0).step(20)
    dead = [
        frame for job in farm.jobs() for layer in job.layers.values() for frame in layer.frames
        if frame.state == job_pb2.DEAD
    ]
    assert len(dead) == 10
    assert {frame.retry_count for frame in dead} == {2}


def test_paused_jobs_locked_hosts_and_undispatchable_shows_get_nothing():
    """Paused jobs, locked hosts and shows with dispatching off are never booked."""
    farm = _farm()
    jobs = farm.jobs()
    jobs[1].is_paused = True
    farm.find_show("show002").dispatch_enabled = False
    farm.find_host("host0001").lock_state = host_pb2.LOCKED
    Simulator(farm, seed=2, tick_seconds=30).step(10)
    assert not jobs[1].procs
    assert not any(job.procs for job in jobs if job.show.name == "show002")
    assert not farm.find_host("host0001").procs
    assert any(job.procs or job.state == job_pb2.FINISHED for job in jobs[2:4])


def test_reboot_when_idle_reboots_and_comes_back():
    """A host told to reboot when idle reboots once its procs end, then comes back UP."""
    farm = _farm(hosts=1)
    host = farm.find_host("host0001")
    host.state = host_pb2.REBOOT_WHEN_IDLE
    simulator = Simulator(farm, tick_seconds=10)
    simulator.step(1)
    assert host.state == host_pb2.REBOOTING
    simulator.step(1)
    assert (host.state, host.boot_time) == (host_pb2.UP, START + 20)


def test_live_simulation_ticks_on_its_own_thread_and_stops():
    """start() ticks in the background (speed shortens the wait); stop() ends the thread."""
    farm = _farm()
    simulator = Simulator(farm, tick_seconds=10, speed=1000)
    server = SandboxServer(farm=farm, simulator=simulator)
    server.start()
    try:
        deadline = time.monotonic() + LIVE_TIMEOUT
        while simulator.ticks < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert simulator.ticks >= 3
    finally:
        server.stop(grace=None)
    stopped_at = simulator.ticks
    time.sleep(0.05)
    assert simulator.ticks == stopped_at
    assert farm.now() == START + 10 * stopped_at


def test_simulator_refuses_nonsense_settings():
    """Ticks and speed must be positive, and a server's simulator must drive its farm."""
    farm = _farm()
    with pytest.raises(ValueError, match="positive"):
        Simulator(farm, tick_seconds=0)
    with pytest.raises(ValueError, match="farm"):
        SandboxServer(farm=seeded_farm(), simulator=Simulator(farm))
