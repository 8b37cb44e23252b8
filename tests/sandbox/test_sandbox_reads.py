"""Every read the sandbox implements answers with the right message and contents.

Reads that filter run on data with entities on both sides of each criterion (the
spec's two launched jobs, a finished one, a second host, an inactive show), so a
criterion the sandbox ignored would change the answer."""

from __future__ import annotations

from collections import Counter

from opencue_proto import host_pb2, job_pb2, show_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.farm import new_id
from opencue_gateway.sandbox.generate import generated_farm
from opencue_gateway.sandbox.records import Host
from tests.sandbox.sandbox_support import START, launch

# The names of SPEC's two jobs once launched.
LIGHTING = "testing-shot002-artist2_lighting"
COMP = "testing-shot002-artist2_comp_job"

JOB = job_pb2.Job(id=seed.JOB_ID)
LAYER = job_pb2.Layer(id=seed.LAYER_ID)
HOST = host_pb2.Host(id=seed.HOST_ID)
SHOW = show_pb2.Show(id=seed.SHOW_ID)


def _job_names(cue, **criteria):
    """Names of the jobs GetJobs returns for these criteria."""
    request = job_pb2.JobGetJobsRequest(r=job_pb2.JobSearchCriteria(**criteria))
    return [job.name for job in cue.job.GetJobs(request).jobs.jobs]


def _frame_numbers(cue, **criteria):
    """Numbers of the frames JobInterface.GetFrames returns for these criteria."""
    request = job_pb2.JobGetFramesRequest(job=JOB, req=job_pb2.FrameSearchCriteria(**criteria))
    return [frame.number for frame in cue.job.GetFrames(request).frames.frames]


def _kill(cue, job):
    """Kill a job with a reason, so it is FINISHED."""
    cue.job.Kill(job_pb2.JobKillRequest(job=job, reason="done with it"))


def test_get_shows_and_active_shows(cue):
    """GetShows lists every show, GetActiveShows only the active ones."""
    other = cue.show.CreateShow(show_pb2.ShowCreateShowRequest(name="other")).show
    cue.show.SetActive(show_pb2.ShowSetActiveRequest(show=other, value=False))
    shows = cue.show.GetShows(show_pb2.ShowGetShowsRequest()).shows.shows
    active = cue.show.GetActiveShows(show_pb2.ShowGetActiveShowsRequest()).shows.shows
    assert [s.name for s in shows] == ["testing", "other"]
    assert [s.name for s in active] == ["testing"]


def test_show_groups_root_group_and_jobs(cue):
    """A show lists its groups, its root group and its pending jobs (not finished ones)."""
    lighting, comp = launch(cue)
    _kill(cue, comp)
    groups = cue.show.GetGroups(show_pb2.ShowGetGroupsRequest(show=SHOW)).groups.groups
    root = cue.show.GetRootGroup(show_pb2.ShowGetRootGroupRequest(show=SHOW)).group
    jobs = cue.show.GetJobs(show_pb2.ShowGetJobsRequest(show=SHOW)).jobs.jobs
    assert [g.id for g in groups] == [root.id] == [seed.GROUP_ID]
    assert [j.id for j in jobs] == [seed.JOB_ID, lighting.id]


def test_get_jobs_filters_by_each_criterion(cue):
    """GetJobs matches on shows, users, shots, ids, names, substrings, regexes and finished."""
    _, comp = launch(cue)
    everyone = ["testing-job-001", COMP, LIGHTING]
    assert _job_names(cue) == everyone
    assert _job_names(cue, shows=["testing"]) == everyone
    assert _job_names(cue, users=["artist2"]) == [COMP, LIGHTING]
    assert _job_names(cue, shots=["shot001"]) == ["testing-job-001"]
    assert _job_names(cue, ids=[comp.id]) == [COMP]
    assert _job_names(cue, jobs=["testing-job-001", LIGHTING]) == ["testing-job-001", LIGHTING]
    assert _job_names(cue, substr=["job-0", "lighting"]) == ["testing-job-001", LIGHTING]
    assert _job_names(cue, regex=["_comp_"]) == [COMP]
    assert _job_names(cue, users=["artist2"], regex=["light"]) == [LIGHTING]
    assert _job_names(cue, shows=["other"]) == []
    _kill(cue, comp)
    assert _job_names(cue) == ["testing-job-001", LIGHTING]
    assert _job_names(cue, include_finished=True) == everyone


def test_find_job_get_current_and_is_job_pending(cue):
    """FindJob finds the pending job by name; GetCurrent and IsJobPending agree."""
    found = cue.job.FindJob(job_pb2.JobFindJobRequest(name="testing-job-001")).job
    current = cue.job.GetCurrent(job_pb2.JobGetCurrentRequest(job=JOB)).job
    assert found == current
    assert found.id == seed.JOB_ID
    pending = cue.job.IsJobPending(job_pb2.JobIsJobPendingRequest(name="testing-job-001"))
    absent = cue.job.IsJobPending(job_pb2.JobIsJobPendingRequest(name="nope"))
    assert pending.value and not absent.value


def test_job_frames_filters(cue):
    """JobInterface.GetFrames filters by ids, names, layers, states and frame range."""
    assert _frame_numbers(cue) == [1, 2, 3, 4, 5, 6]
    assert _frame_numbers(cue, ids=[seed.FRAME_ID]) == [1]
    assert _frame_numbers(cue, frames=["0003-layer_name"]) == [3]
    assert _frame_numbers(cue, layers=["layer_name"], frame_range="2-4") == [2, 3, 4]
    assert _frame_numbers(cue, frame_range="1-6x2") == [1, 3, 5]
    assert _frame_numbers(cue, frame_range="1-6y2") == [2, 4, 6]
    assert _frame_numbers(cue, frame_range="6,1") == [1, 6]
    assert _frame_numbers(cue, layers=["other"]) == []
    waiting = job_pb2.FrameStateSeq(frame_states=[job_pb2.WAITING])
    dead = job_pb2.FrameStateSeq(frame_states=[job_pb2.DEAD])
    assert _frame_numbers(cue, states=waiting) == [1, 2, 3, 4, 5, 6]
    assert _frame_numbers(cue, states=dead) == []


def test_job_frames_paging(cue):
    """Pages are 1-based and ``limit`` frames long; page 0 means page 1."""
    assert _frame_numbers(cue, page=1, limit=4) == [1, 2, 3, 4]
    assert _frame_numbers(cue, page=2, limit=4) == [5, 6]
    assert _frame_numbers(cue, page=3, limit=4) == []
    assert _frame_numbers(cue, page=0, limit=2) == [1, 2]


def test_layers(cue):
    """GetLayers, GetLayer and FindLayer return the same layer."""
    listed = cue.job.GetLayers(job_pb2.JobGetLayersRequest(job=JOB)).layers.layers
    by_id = cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=seed.LAYER_ID)).layer
    by_name = cue.layer.FindLayer(
        job_pb2.LayerFindLayerRequest(job="testing-job-001", layer="layer_name")
    ).layer
    assert list(listed) == [by_id] == [by_name]


def test_layer_frames_honour_criteria(cue):
    """LayerInterface.GetFrames applies its FrameSearchCriteria."""
    request = job_pb2.LayerGetFramesRequest(
        layer=LAYER, s=job_pb2.FrameSearchCriteria(frame_range="5-6")
    )
    assert [f.number for f in cue.layer.GetFrames(request).frames.frames] == [5, 6]


def test_frames_by_id_by_name_and_by_job_name(cue):
    """GetFrame, FindFrame and FrameInterface.GetFrames find the same frame."""
    by_id = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_IDS[2])).frame
    by_name = cue.frame.FindFrame(
        job_pb2.FrameFindFrameRequest(job="testing-job-001", layer="layer_name", frame=3)
    ).frame
    listed = cue.frame.GetFrames(
        job_pb2.FrameGetFramesRequest(
            job="testing-job-001", r=job_pb2.FrameSearchCriteria(frame_range="3")
        )
    ).frames.frames
    assert by_id == by_name == listed[0]
    assert (by_id.name, by_id.number, by_id.layer_name) == ("0003-layer_name", 3, "layer_name")


def test_groups(cue):
    """GetGroup, FindGroup and the group's list of pending jobs agree."""
    _, comp = launch(cue)
    _kill(cue, comp)
    by_id = cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=seed.GROUP_ID)).group
    by_name = cue.group.FindGroup(
        job_pb2.GroupFindGroupRequest(show="testing", name="default")
    ).group
    jobs = cue.group.GetJobs(job_pb2.GroupGetJobsRequest(group=by_id)).jobs.jobs
    assert by_id == by_name
    assert [j.name for j in jobs] == ["testing-job-001", LIGHTING]


def test_hosts_filters(sandbox, cue):
    """GetHosts matches on names, ids, allocations, states, lock states, substrings and
    regexes, against a second host that differs in each."""
    with sandbox.farm.lock:
        desk = sandbox.farm.add_host(Host(
            id=new_id(), name="desk-002", alloc_name="local.desktop", cores=8.0, memory=1,
            gpus=0.0, gpu_memory=0, total_memory=1, free_memory=1, boot_time=START,
            ping_time=START, os="linux", state=host_pb2.DOWN, lock_state=host_pb2.LOCKED,
        ))

    def names(**criteria):
        """Host names GetHosts returns for these criteria."""
        request = host_pb2.HostGetHostsRequest(r=host_pb2.HostSearchCriteria(**criteria))
        return [h.name for h in cue.host.GetHosts(request).hosts.hosts]

    both = ["desk-002", "render-host-001"]
    assert names() == both
    assert names(hosts=["render-host-001"]) == ["render-host-001"]
    assert names(ids=[desk.id]) == ["desk-002"]
    assert names(hosts=["render-host-001"], ids=[desk.id]) == []
    assert names(allocs=["local.general"]) == ["render-host-001"]
    assert names(states=host_pb2.HardwareStateSeq(state=[host_pb2.DOWN])) == ["desk-002"]
    assert names(lock_states=host_pb2.LockStateSeq(state=[host_pb2.OPEN])) == ["render-host-001"]
    assert names(substr=["desk", "render"]) == both
    assert names(substr=["render"]) == ["render-host-001"]
    assert names(regex=["^desk"]) == ["desk-002"]
    assert names(hosts=["other"]) == []


def test_find_host_and_host_owner(cue):
    """FindHost finds the host by name, and the host reports its deed and owner."""
    host = cue.host.FindHost(host_pb2.HostFindHostRequest(name="render-host-001")).host
    deed = cue.host.GetDeed(host_pb2.HostGetDeedRequest(host=host)).deed
    owner = cue.host.GetOwner(host_pb2.HostGetOwnerRequest(host=host)).owner
    assert host.id == seed.HOST_ID
    assert (deed.id, owner.name) == (seed.DEED_ID, "artist1")


def test_owner_by_id_and_its_hosts(cue):
    """GetOwner also accepts the owner's id, and GetHosts lists the hosts it owns."""
    owner = cue.owner.GetOwner(host_pb2.OwnerGetOwnerRequest(name=seed.OWNER_ID)).owner
    hosts = cue.owner.GetHosts(host_pb2.OwnerGetHostsRequest(owner=owner)).hosts.hosts
    assert owner.name == "artist1"
    assert [h.name for h in hosts] == ["render-host-001"]


def test_deed_owner_and_host(cue):
    """A deed names its owner and its host."""
    deed = host_pb2.Deed(id=seed.DEED_ID)
    owner = cue.deed.GetOwner(host_pb2.DeedGetOwnerRequest(deed=deed)).owner
    host = cue.deed.GetHost(host_pb2.DeedGetHostRequest(deed=deed)).host
    assert (owner.id, host.id) == (seed.OWNER_ID, seed.HOST_ID)


def test_get_procs_lists_the_seed_proc(cue):
    """ProcInterface.GetProcs lists the seed proc (criteria and paging: test_sandbox_search)."""
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert [(p.id, p.name, p.job_name) for p in procs] == [
        (seed.PROC_ID, "render-host-001/4.00/1", seed.JOB_NAME)
    ]


def test_get_updated_frames_caps_at_100_and_filters_layers(clock, serve):
    """GetUpdatedFrames answers at most 100 changed frames, and with a layer filter only
    that layer's."""
    farm = generated_farm(clock=clock, shows=1, jobs_per_show=1, layers_per_job=2,
                          frames_per_layer=120, hosts=0)
    job = next(j for j in farm.jobs() if j.show.name == "show001")
    clock.advance(10)
    farm.retry_frames(frame for layer in job.layers.values() for frame in layer.frames)
    cue = serve(farm)

    def updated(*layers):
        """Layer names of the updated frames GetUpdatedFrames answers."""
        request = job_pb2.JobGetUpdatedFramesRequest(
            job=job_pb2.Job(id=job.id), last_check=START + 5,
            layer_filter=job_pb2.LayerSeq(layers=[job_pb2.Layer(id=lay.id) for lay in layers]),
        )
        frames = cue.job.GetUpdatedFrames(request).updated_frames.updated_frames
        return Counter(farm.frame(f.id).layer.name for f in frames)

    assert sum(updated().values()) == 100
    assert updated(job.layers["comp"]) == {"comp": 100}


def test_get_updated_frames(clock, cue):
    """GetUpdatedFrames returns frames changed since the check, and the job state."""
    clock.advance(10)
    last_check = START + 5
    unchanged = cue.job.GetUpdatedFrames(
        job_pb2.JobGetUpdatedFramesRequest(job=JOB, last_check=last_check)
    )
    cue.frame.Eat(job_pb2.FrameEatRequest(frame=job_pb2.Frame(id=seed.FRAME_ID)))
    changed = cue.job.GetUpdatedFrames(
        job_pb2.JobGetUpdatedFramesRequest(job=JOB, last_check=last_check)
    )
    assert list(unchanged.updated_frames.updated_frames) == []
    assert [(f.id, f.state) for f in changed.updated_frames.updated_frames] == [
        (seed.FRAME_ID, job_pb2.EATEN)
    ]
    assert changed.state == job_pb2.PENDING
    assert changed.server_time == START + 9
