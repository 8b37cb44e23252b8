"""Search criteria filter as Cuebot's JobSearch, FrameSearch, HostSearch and ProcSearch do,
and page.  Each case's data holds entities on both sides of the criterion, so a criterion
the sandbox ignored, or applied in the wrong unit, would change the answer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from opencue_proto import criterion_pb2, host_pb2, job_pb2

from opencue_gateway.sandbox import Farm, seed
from opencue_gateway.sandbox.admin_records import Allocation, Facility
from opencue_gateway.sandbox.generate import generated_farm
from tests.sandbox.sandbox_support import GIB, START, FakeClock

HOUR = 3600


@pytest.fixture
def farm(clock: FakeClock) -> Farm:
    """The seed plus two generated shows of three jobs (two layers of 20 frames) and 4 hosts."""
    return generated_farm(
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
    """Pages follow frame dispatch order then layer order; a limit of 0 is a full page, not
    an empty one (how full: test_frame_pages_hold_at_most_1000_frames)."""
    job = farm.jobs()[1]
    order = [(n, layer) for n in range(1, 21) for layer in ("render", "comp")]
    assert _frames(cue, job.id, page=1, limit=3) == order[:3]
    assert _frames(cue, job.id, page=2, limit=3) == order[3:6]
    assert _frames(cue, job.id, page=14, limit=3) == order[39:]
    assert _frames(cue, job.id, page=15, limit=3) == []
    assert _frames(cue, job.id, limit=0) == order


def test_frame_pages_hold_at_most_1000_frames(serve):
    """A limit of 0, or over 1,000, pages by 1,000 frames, as Cuebot's FrameSearch caps it."""
    farm = generated_farm(clock=FakeClock(START), shows=1, jobs_per_show=1, layers_per_job=2,
                          frames_per_layer=600, hosts=0)
    job = next(j for j in farm.jobs() if j.show.name == "show001")
    cue = serve(farm)
    assert len(_frames(cue, job.id, limit=0)) == 1000
    assert len(_frames(cue, job.id, limit=5000)) == 1000
    assert len(_frames(cue, job.id, page=2, limit=5000)) == 200
    assert len(_frames(cue, job.id, page=2, limit=999)) == 201


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
    assert _hosts(cue, hosts=["host0001", "host0003"]) == ["host0001", "host0003"]
    ids = [farm.find_host(name).id for name in ("host0002", "host0004")]
    assert _hosts(cue, ids=ids) == ["host0002", "host0004"]
    assert _hosts(cue, hosts=["host0002", "host0003"], ids=ids) == ["host0002"]
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


@pytest.fixture
def procs(farm, clock):
    """Four procs, listed as GetProcs sorts them (by host name), booked at different times:

    ======  ==============  =======================  ==========  =======  ==============
    proc    host            job                      layer       memory   booked
    ======  ==============  =======================  ==========  =======  ==============
    p1      host0001        show001's first job      render      1 GiB    START
    p2      host0002        show002's first job      comp        4 GiB    START + 600
    p3      host0003        show001's first job      comp        16 GiB   START + 1200
    seed    render-host-001 testing-job-001          layer_name  8 GiB    START - 300
    ======  ==============  =======================  ==========  =======  ==============

    host0003 is in allocation ``local.desktop``; the clock ends at START + 1800.
    """
    facility = farm.get(Facility, seed.FACILITY_ID)
    farm.register(Allocation(id="alloc-desktop", name="local.desktop", tag="desktop",
                             facility=facility))
    farm.find_host("host0003").alloc_name = "local.desktop"
    first = {show: next(j for j in farm.jobs() if j.show.name == show)
             for show in ("show001", "show002")}
    booked = []
    for host, job, layer, memory in (("host0001", first["show001"], "render", GIB),
                                      ("host0002", first["show002"], "comp", 4 * GIB),
                                      ("host0003", first["show001"], "comp", 16 * GIB)):
        frame = job.layers[layer].frames[0]
        booked.append(farm.start_frame(frame, farm.find_host(host), 1.0, memory).id)
        clock.advance(600)
    return SimpleNamespace(p1=booked[0], p2=booked[1], p3=booked[2], seed=seed.PROC_ID,
                           show001=first["show001"].name)


def _procs(cue, **criteria):
    """Ids of the procs GetProcs returns for these criteria."""
    request = host_pb2.ProcGetProcsRequest(r=host_pb2.ProcSearchCriteria(**criteria))
    return [proc.id for proc in cue.proc.GetProcs(request).procs.procs]


def test_proc_criteria_names_each_narrow_and_combine(cue, procs):
    """hosts, jobs, layers, shows and allocs each narrow the procs, combined with AND."""
    p = procs
    assert _procs(cue) == [p.p1, p.p2, p.p3, p.seed]
    assert _procs(cue, hosts=["host0002", "render-host-001"]) == [p.p2, p.seed]
    assert _procs(cue, jobs=[p.show001]) == [p.p1, p.p3]
    assert _procs(cue, layers=["comp"]) == [p.p2, p.p3]
    assert _procs(cue, shows=["show002"]) == [p.p2]
    assert _procs(cue, allocs=["local.desktop"]) == [p.p3]
    assert _procs(cue, jobs=[p.show001], layers=["comp"]) == [p.p3]


def test_proc_criteria_memory_is_reserved_kb(cue, procs):
    """memory_range bounds reserved KB both ways; memory_greater_than and memory_less_than
    keep procs reserving at least their value, as Cuebot applies both (the proto types
    memory_less_than as a GreaterThan criterion)."""
    p = procs
    in_range = criterion_pb2.InRangeIntegerSearchCriterion(min=2 * GIB, max=8 * GIB)
    assert _procs(cue, memory_range=[in_range]) == [p.p2, p.seed]
    at_least = [criterion_pb2.GreaterThanIntegerSearchCriterion(value=4 * GIB)]
    assert _procs(cue, memory_greater_than=at_least) == [p.p2, p.p3, p.seed]
    assert _procs(cue, memory_less_than=at_least) == [p.p2, p.p3, p.seed]
    wide = criterion_pb2.InRangeIntegerSearchCriterion(min=GIB, max=16 * GIB)
    eight = [criterion_pb2.GreaterThanIntegerSearchCriterion(value=8 * GIB)]
    assert _procs(cue, memory_range=[wide], memory_greater_than=eight) == [p.p3, p.seed]


def test_proc_criteria_duration_is_seconds_since_dispatch(cue, procs):
    """duration_range keeps procs dispatched that many seconds before now."""
    p = procs
    recent = criterion_pb2.InRangeIntegerSearchCriterion(min=0, max=1200)
    assert _procs(cue, duration_range=[recent]) == [p.p2, p.p3]
    older = criterion_pb2.InRangeIntegerSearchCriterion(min=1500, max=3000)
    assert _procs(cue, duration_range=[older]) == [p.p1, p.seed]


def test_proc_paging_first_result_and_max_results(cue, procs):
    """first_result is 1-based and max_results caps the count, over the sorted procs."""
    p = procs
    assert _procs(cue, max_results=[2]) == [p.p1, p.p2]
    assert _procs(cue, first_result=2) == [p.p2, p.p3, p.seed]
    assert _procs(cue, first_result=3, max_results=[1]) == [p.p3]
    assert _procs(cue, first_result=5) == []


def test_unbook_procs_acts_on_the_memory_and_duration_criteria(cue, procs):
    """UnbookProcs unbooks only the procs the same criteria select."""
    at_least = [criterion_pb2.GreaterThanIntegerSearchCriterion(value=8 * GIB)]
    request = host_pb2.ProcUnbookProcsRequest(
        r=host_pb2.ProcSearchCriteria(memory_greater_than=at_least, max_results=[10])
    )
    assert cue.proc.UnbookProcs(request).num_procs == 2
    unbooked = {proc.id for proc in cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
                if proc.unbooked}
    assert unbooked == {procs.p3, procs.seed}
