"""The lively preset: the README's entities, as documented, inside a studio with a history,
every state on show, times relative to the start, and one farm per seed."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from opencue_proto import host_pb2, job_pb2

from opencue_gateway.sandbox import Farm, lively, seed
from opencue_gateway.sandbox.factory import sandbox_server
from opencue_gateway.sandbox.simulate import Simulator
from tests.sandbox.sandbox_support import START


def _lively(start: int = START, seed_value: int = 0) -> tuple[Farm, Simulator]:
    """The lively farm brought to ``start``, and its simulator."""
    farm = lively.build(dataclasses.replace(lively.SIZES, seed=seed_value), start)
    simulator = Simulator(farm, seed=seed_value, still_jobs=lively.STILL_JOBS)
    lively.bring_to_start(simulator, start)
    return farm, simulator


def _frame_states(farm: Farm) -> Counter[int]:
    """Frames per state over the whole farm."""
    return Counter({state: count for job in farm.jobs() for layer in job.layers.values()
                    for state, count in layer.counts.items() if count})


def test_at_start_the_farm_shows_every_state():
    """Several shows, a few dozen hosts (one locked, one in repair), jobs finished, pending
    and paused, and frames in every state with many running."""
    farm, simulator = _lively()
    assert simulator.now() == START
    assert len(farm.shows()) == 1 + lively.SIZES.shows
    hosts = farm.hosts()
    assert len(hosts) == 1 + lively.SIZES.hosts
    assert [h.lock_state for h in hosts].count(host_pb2.LOCKED) == 1
    assert [h.state for h in hosts].count(host_pb2.REPAIR) == 1
    jobs = Counter(job.state for job in farm.jobs())
    assert jobs[job_pb2.FINISHED] > 0 and jobs[job_pb2.PENDING] > 0
    assert sum(job.is_paused for job in farm.jobs()) == lively.SIZES.shows
    states = _frame_states(farm)
    for state in (job_pb2.WAITING, job_pb2.RUNNING, job_pb2.SUCCEEDED, job_pb2.DEAD,
                  job_pb2.EATEN, job_pb2.DEPEND):
        assert states[state] > 0, job_pb2.FrameState.Name(state)
    busy = sum(h.cores - h.idle_cores for h in hosts)
    assert busy > 0.5 * sum(h.cores for h in hosts if h.state == host_pb2.UP)


def test_the_readme_entities_stay_as_documented():
    """The README's show, job, frames, host, proc and deed keep their ids and documented
    states, at the start and as the simulation goes on."""
    farm, simulator = _lively()
    simulator.step(600)
    job = farm.job(seed.JOB_ID)
    assert (job.name, job.state, job.is_paused) == (seed.JOB_NAME, job_pb2.PENDING, False)
    assert [farm.frame(f).state for f in seed.FRAME_IDS] == [job_pb2.WAITING] * 6
    assert farm.proc(seed.PROC_ID).host is farm.host(seed.HOST_ID)
    assert farm.deed(seed.DEED_ID).host.name == seed.HOST_NAME
    assert farm.find_show(seed.SHOW_NAME).id == seed.SHOW_ID
    assert job.start_time == START - seed.JOB_AGE


def test_times_are_relative_to_the_start():
    """Jobs were launched over the history before the start; finished frames ran a plausible
    time within it; hosts reported at the start."""
    farm, _ = _lively()
    studio = [job for job in farm.jobs() if job.show.name != seed.SHOW_NAME]
    assert all(START - lively.HISTORY <= job.start_time <= START for job in studio)
    assert min(job.start_time for job in studio) < START - 2 * 3600
    assert max(job.start_time for job in studio) > START - 1800
    done = [frame for job in studio for layer in job.layers.values() for frame in layer.frames
            if frame.state == job_pb2.SUCCEEDED]
    assert all(START - lively.HISTORY < f.start_time < f.stop_time <= START for f in done)
    durations = sorted(f.stop_time - f.start_time for f in done)
    assert 30 <= durations[len(durations) // 2] <= 3600
    assert {host.ping_time for host in farm.hosts()} == {START}


def _shape(farm: Farm, start: int) -> list[tuple]:
    """Every job and frame, with times made relative to ``start``."""
    return [
        (job.id, job.name, job.state, job.start_time - start,
         [(f.id, f.state, f.retry_count, f.start_time and f.start_time - start, f.max_rss)
          for layer in job.layers.values() for f in layer.frames])
        for job in farm.jobs()
    ]


def test_one_seed_gives_one_farm_relative_to_its_start():
    """Built at two different starts with one seed, the farms agree relative to their
    starts; another seed gives another farm."""
    later = START + 123_456
    first, _ = _lively(START)
    again, _ = _lively(later)
    other, _ = _lively(START, seed_value=1)
    assert _shape(first, START) == _shape(again, later)
    assert _shape(first, START) != _shape(other, START)


def test_the_factory_builds_it_with_a_running_simulator_and_size_options():
    """preset="lively" attaches a simulator that holds the README's job still; size
    options resize the studio; an unknown preset is refused."""
    server = sandbox_server(preset="lively", sizes={"shows": 2, "hosts": 5}, seed=3)
    assert server.simulator is not None and server.simulator.farm is server.farm
    assert server.simulator.still_jobs == {seed.JOB_ID}
    assert [show.name for show in server.farm.shows()] == ["testing", "aurora", "borealis"]
    assert len(server.farm.hosts()) == 6
    with pytest.raises(ValueError, match="unknown preset 'busy'"):
        sandbox_server(preset="busy")
