"""Search criteria filter as Cuebot's JobSearch, FrameSearch and HostSearch do, and page."""

from __future__ import annotations

import pytest
from opencue_proto import host_pb2, job_pb2

from opencue_gateway.sandbox import Farm, seed
from tests.sandbox.sandbox_support import GIB, START, FakeClock

HOUR = 3600


@pytest.fixture
def farm(clock: FakeClock) -> Farm:
    """The seed plus two generated shows of three jobs (two layers of 20 frames) and 4 hosts."""
    return Farm.generated(
        clock=clock, shows=2, jobs_per_show=3, layers_per_job=2, frames_per_layer=20, hosts=4,
        seed=7,
    )


@pytest.fixture
def cue(serve, farm):
    """Stubs for a sandbox over the generated farm."""
    return serve(farm)


def _jobs(cue, **criteria):
    """Names of the jobs GetJobs returns for these criteria."""
    request = job_pb2.JobGetJobsRequest(r=job_pb2.JobSearchCriteria(**criteria))
    return [job.name for job in cue.job.GetJobs(request).jobs.jobs]


def _frames(cue, job_id=seed.JOB_ID, **criteria):
    """(number, layer) of the frames JobInterface.GetFrames returns for these criteria."""
    request = job_pb2.JobGetFramesRequest(
        job=job_pb2.Job(id=job_id), req=job_pb2.FrameSearchCriteria(**criteria)
    )
    return [(f.number, f.layer_name) for f in cue.job.GetFrames(request).frames.frames]


def _hosts(cue, **criteria):
    """Names of the hosts GetHosts returns for these criteria."""
    request = host_pb2.HostGetHostsRequest(r=host_pb2.HostSearchCriteria(**criteria))
    return [host.name for host in cue.host.GetHosts(request).hosts.hosts]


def test_job_criteria_each_narrow_and_combine(cue, farm):
    """shows, users, shots, ids, jobs, regex and substr each narrow the list, combined with AND."""
    every = _jobs(cue)
    generated = [job for job in farm.jobs() if job.show.name != "testing"]
    first = generated[0]
    assert every == sorted(job.name for job in farm.jobs())
    assert _jobs(cue, shows=["show002"]) == sorted(
        job.name for job in generated if job.show.name == "show002"
    )
    assert _jobs(cue, users=[first.user]) == sorted(
        job.name for job in farm.jobs() if job.user == first.user
    )
    assert _jobs(cue, shots=[first.shot]) == sorted(
        job.name for job in farm.jobs() if job.shot == first.shot
    )
    assert _jobs(cue, ids=[first.id]) == [first.name]
    assert _jobs(cue, jobs=[first.name, "testing-job-001"]) == sorted(
        [first.name, "testing-job-001"]
    )
    assert _jobs(cue, regex=[r"^show001-.*job00[12]$"]) == sorted(
        job.name for job in generated
        if job.show.name == "show001" and job.name.endswith(("job001", "job002"))
    )
    assert _jobs(cue, substr=["job003"]) == sorted(
        job.name for job in generated if job.name.endswith("job003")
    )
    assert _jobs(cue, shows=["show001"], users=["nobody"]) == []
    names = cue.job.GetJobNames(job_pb2.JobGetJobNamesRequest(
        r=job_pb2.JobSearchCriteria(shows=["show001"])
    )).names
    assert list(names) == _jobs(cue, shows=["show001"])


def test_job_criteria_include_finished(cue, farm):
    """A finished job is listed only when include_finished is set."""
    first = farm.jobs()[1]
    cue.job.Kill(job_pb2.JobKillRequest(job=job_pb2.Job(id=first.id), reason="test"))
    assert first.name not in _jobs(cue)
    assert first.name in _jobs(cue, include_finished=True)
    assert _jobs(cue, ids=[first.id], include_finished=True) == [first.name]


def test_frame_criteria_ids_names_layers_states_and_ranges(cue, farm):
    """ids, frames, layers, states and frame_range narrow a job's frames, combined with AND."""
    job = farm.jobs()[1]
    render, comp = job.layers["render"], job.layers["comp"]
    assert _frames(cue, job.id, ids=[render.frames[4].id]) == [(5, "render")]
    assert _frames(cue, job.id, frames=["0007-comp", "0002-render"]) == [
        (2, "render"), (7, "comp")
    ]
    assert _frames(cue, job.id, layers=["comp"], frame_range="3-5") == [
        (3, "comp"), (4, "comp"), (5, "comp")
    ]
    farm.eat_frames([comp.frames[0], render.frames[9]])
    eaten = job_pb2.FrameStateSeq(frame_states=[job_pb2.EATEN])
    assert _frames(cue, job.id, states=eaten) == [(1, "comp"), (10, "render")]
    assert _frames(cue, job.id, states=eaten, layers=["render"]) == [(10, "render")]


def test_frame_criteria_memory_and_duration_ranges(cue, farm, clock):
    """memory_range (GiB of peak memory) and duration_range (hours run) filter finished frames."""
    host = farm.host(seed.HOST_ID)
    frames = [farm.frame(frame_id) for frame_id in seed.FRAME_IDS[:3]]
    for hours, (frame, peak) in zip((1, 2, 3), zip(frames, (1, 3, 5), strict=True), strict=True):
        farm.start_frame(frame, host, 1.0, GIB)
        clock.advance(hours * HOUR)
        farm.complete_frame(frame, 0, peak * GIB)
    assert _frames(cue, memory_range="2-4") == [(2, "layer_name")]
    assert _frames(cue, memory_range="3") == [(2, "layer_name"), (3, "layer_name")]
    assert _frames(cue, duration_range="1.5-2.5") == [(2, "layer_name")]
    assert _frames(cue, duration_range="2") == [(2, "layer_name"), (3, "layer_name")]
    assert _frames(cue, memory_range="not a range") == _frames(cue)


def test_frame_criteria_duration_counts_running_frames_to_now(cue, farm, clock):
    """A running frame's duration runs to now, and WAITING frames never match a duration."""
    farm.start_frame(farm.frame(seed.FRAME_ID), farm.host(seed.HOST_ID), 1.0, GIB)
    clock.advance(2 * HOUR)
    assert _frames(cue, duration_range="1.5-3") == [(1, "layer_name")]
    assert _frames(cue, duration_range="0") == [(1, "layer_name")]


def test_frame_criteria_change_date(cue, farm, clock):
    """change_date keeps the frames updated after it."""
    clock.advance(100)
    farm.retry_frames([farm.frame(seed.FRAME_IDS[3])])
    assert _frames(cue, change_date=START + 50) == [(4, "layer_name")]
    assert _frames(cue, change_date=START + 200) == []


def test_frame_paging_walks_layers_in_dispatch_order(cue, farm):
    """Pages follow frame dispatch order then layer order; limit 0 or over 1,000 means 1,000."""
    job = farm.jobs()[1]
    order = [(n, layer) for n in range(1, 21) for layer in ("render", "comp")]
    assert _frames(cue, job.id, page=1, limit=3) == order[:3]
    assert _frames(cue, job.id, page=2, limit=3) == order[3:6]
    assert _frames(cue, job.id, page=14, limit=3) == order[39:]
    assert _frames(cue, job.id, page=15, limit=3) == []
    assert _frames(cue, job.id, limit=0) == order
    assert _frames(cue, job.id, limit=5000) == order


def test_frame_offset_max_results_and_include_finished_are_ignored(cue, farm):
    """offset, max_results and include_finished change nothing, as in Cuebot's FrameSearch."""
    job = farm.jobs()[1]
    plain = _frames(cue, job.id, page=2, limit=4)
    assert _frames(cue, job.id, page=2, limit=4, offset=3, max_results=1) == plain
    cue.job.Kill(job_pb2.JobKillRequest(job=job_pb2.Job(id=job.id), reason="test"))
    assert _frames(cue, job.id, page=2, limit=4, include_finished=False) == plain


def test_host_criteria_each_narrow_and_combine(cue, farm):
    """hosts, ids, allocs, states, lock_states, regex and substr each narrow the host list."""
    generated = ["host0001", "host0002", "host0003", "host0004"]
    assert _hosts(cue) == [*generated, "render-host-001"]
    assert _hosts(cue, hosts=["host0002"], ids=[farm.find_host("host0002").id]) == ["host0002"]
    assert _hosts(cue, allocs=["local.general"]) == [*generated, "render-host-001"]
    assert _hosts(cue, allocs=["local.other"]) == []
    host = host_pb2.Host(id=farm.find_host("host0003").id)
    cue.host.SetHardwareState(host_pb2.HostSetHardwareStateRequest(host=host, state=host_pb2.DOWN))
    cue.host.Lock(host_pb2.HostLockRequest(host=host_pb2.Host(id=farm.find_host("host0001").id)))
    assert _hosts(cue, states=host_pb2.HardwareStateSeq(state=[host_pb2.DOWN])) == ["host0003"]
    locked = host_pb2.LockStateSeq(state=[host_pb2.LOCKED])
    assert _hosts(cue, lock_states=locked) == ["host0001"]
    assert _hosts(cue, regex=["^host000[12]$"]) == ["host0001", "host0002"]
    assert _hosts(cue, substr=["render"]) == ["render-host-001"]
    assert _hosts(cue, substr=["host"], lock_states=locked) == ["host0001"]
