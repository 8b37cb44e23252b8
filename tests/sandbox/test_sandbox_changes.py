"""Changes made through the sandbox show on the next read, with stats kept consistent."""

from __future__ import annotations

from opencue_proto import comment_pb2, host_pb2, job_pb2, show_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.farm import new_id
from opencue_gateway.sandbox.records import Host, Proc
from tests.sandbox.sandbox_support import START

JOB = job_pb2.Job(id=seed.JOB_ID)
LAYER = job_pb2.Layer(id=seed.LAYER_ID)
HOST = host_pb2.Host(id=seed.HOST_ID)
GROUP = job_pb2.Group(id=seed.GROUP_ID)
SHOW = show_pb2.Show(id=seed.SHOW_ID)


def _job(cue):
    """The seed job as GetJob returns it now."""
    return cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job


def _frame(cue, index):
    """Seed frame number ``index + 1`` as GetFrame returns it now."""
    return cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_IDS[index])).frame


def _stats(cue):
    """Job, layer, group and show stats, read now."""
    layer = cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=seed.LAYER_ID)).layer
    group = cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=seed.GROUP_ID)).group
    show = cue.show.FindShow(show_pb2.ShowFindShowRequest(name="testing")).show
    return _job(cue).job_stats, layer.layer_stats, group.group_stats, show.show_stats


def _host(cue):
    """The seed host as GetHost returns it now."""
    return cue.host.GetHost(host_pb2.HostGetHostRequest(id=seed.HOST_ID)).host


def _run_frame(sandbox, index):
    """Book a 2-core proc on seed frame ``index + 1`` and mark it RUNNING, as a dispatch would."""
    farm = sandbox.farm
    with farm.lock:
        frame = farm.frame(seed.FRAME_IDS[index])
        proc = Proc(
            id=new_id(), host=farm.host(seed.HOST_ID), job=frame.layer.job, layer=frame.layer,
            reserved_cores=2.0, reserved_memory=1, used_memory=1, log_path="/tmp/x.log",
            booked_time=START, frame=frame,
        )
        farm.add_proc(proc)
        frame.set_state(job_pb2.RUNNING, farm.now())
        return proc.id


def test_pause_and_resume(cue):
    """Pause shows as is_paused on the next GetJobs, and Resume clears it."""
    cue.job.Pause(job_pb2.JobPauseRequest(job=JOB))
    jobs = cue.job.GetJobs(job_pb2.JobGetJobsRequest()).jobs.jobs
    assert jobs[0].is_paused
    cue.job.Resume(job_pb2.JobResumeRequest(job=JOB))
    assert not _job(cue).is_paused


def test_lock_and_unlock(cue):
    """Lock shows as LOCKED on the next GetHost, and Unlock opens the host again."""
    cue.host.Lock(host_pb2.HostLockRequest(host=HOST))
    assert _host(cue).lock_state == host_pb2.LOCKED
    cue.host.Unlock(host_pb2.HostUnlockRequest(host=HOST))
    assert _host(cue).lock_state == host_pb2.OPEN


def test_eat_frame_updates_every_level_of_stats(cue):
    """Eating a waiting frame moves it from pending to eaten in job, layer, group and show."""
    cue.frame.Eat(job_pb2.FrameEatRequest(frame=job_pb2.Frame(id=seed.FRAME_ID)))
    job, layer, group, show = _stats(cue)
    assert _frame(cue, 0).state == job_pb2.EATEN
    assert (job.waiting_frames, job.eaten_frames, job.pending_frames) == (5, 1, 5)
    assert (layer.waiting_frames, layer.eaten_frames, layer.pending_frames) == (5, 1, 5)
    assert (group.waiting_frames, show.pending_frames) == (5, 5)


def test_eating_every_frame_finishes_the_job(cue):
    """Eating the last unfinished frames finishes the job and frees its proc's cores."""
    cue.layer.EatFrames(job_pb2.LayerEatFramesRequest(layer=LAYER))
    job = _job(cue)
    show = cue.show.FindShow(show_pb2.ShowFindShowRequest(name="testing")).show
    assert job.state == job_pb2.FINISHED
    assert job.stop_time == START
    assert job.job_stats.eaten_frames == 6
    assert (show.show_stats.pending_jobs, show.show_stats.pending_frames) == (0, 0)
    assert _host(cue).idle_cores == 16


def test_retry_eaten_frame_makes_it_waiting_and_reopens_the_job(cue):
    """Retrying an eaten frame of a finished job makes it WAITING and the job PENDING."""
    cue.layer.EatFrames(job_pb2.LayerEatFramesRequest(layer=LAYER))
    cue.frame.Retry(job_pb2.FrameRetryRequest(frame=job_pb2.Frame(id=seed.FRAME_IDS[1])))
    job = _job(cue)
    assert _frame(cue, 1).state == job_pb2.WAITING
    assert job.state == job_pb2.PENDING
    assert (job.job_stats.waiting_frames, job.job_stats.eaten_frames) == (1, 5)


def test_job_eat_and_retry_frames_use_criteria(cue):
    """JobInterface EatFrames and RetryFrames act on every frame matching the criteria."""
    cue.job.EatFrames(
        job_pb2.JobEatFramesRequest(job=JOB, req=job_pb2.FrameSearchCriteria(frame_range="1-4"))
    )
    assert [_frame(cue, i).state for i in range(6)] == [job_pb2.EATEN] * 4 + [job_pb2.WAITING] * 2
    eaten = job_pb2.FrameStateSeq(frame_states=[job_pb2.EATEN])
    cue.job.RetryFrames(job_pb2.JobRetryFramesRequest(
        job=JOB, req=job_pb2.FrameSearchCriteria(states=eaten, frame_range="3-6")
    ))
    states = [_frame(cue, i).state for i in range(6)]
    assert states == [job_pb2.EATEN] * 2 + [job_pb2.WAITING] * 4
    assert _job(cue).job_stats.pending_frames == 4


def test_layer_retry_frames_retries_every_frame(cue):
    """LayerInterface.RetryFrames makes every frame of the layer WAITING."""
    cue.layer.EatFrames(job_pb2.LayerEatFramesRequest(layer=LAYER))
    cue.layer.RetryFrames(job_pb2.LayerRetryFramesRequest(layer=LAYER))
    assert _job(cue).job_stats.waiting_frames == 6


def test_kill_frame_stops_a_running_frame_and_frees_its_proc(sandbox, cue):
    """Killing a running frame puts it back to WAITING and removes its proc."""
    proc_id = _run_frame(sandbox, 2)
    assert _job(cue).job_stats.running_frames == 1
    assert _host(cue).idle_cores == 10
    cue.frame.Kill(job_pb2.FrameKillRequest(frame=job_pb2.Frame(id=seed.FRAME_IDS[2])))
    procs = cue.host.GetProcs(host_pb2.HostGetProcsRequest(host=HOST)).procs.procs
    assert _frame(cue, 2).state == job_pb2.WAITING
    assert proc_id not in [p.id for p in procs]
    assert (_job(cue).job_stats.running_frames, _host(cue).idle_cores) == (0, 12)


def test_kill_frames_leaves_frames_that_are_not_running(cue):
    """Kill only stops running frames, as Cuebot only kills procs."""
    cue.frame.Kill(job_pb2.FrameKillRequest(frame=job_pb2.Frame(id=seed.FRAME_ID)))
    cue.layer.KillFrames(job_pb2.LayerKillFramesRequest(layer=LAYER))
    cue.job.KillFrames(job_pb2.JobKillFramesRequest(job=JOB))
    assert _job(cue).job_stats.waiting_frames == 6


def test_job_and_layer_kill_frames_stop_running_frames(sandbox, cue):
    """JobInterface and LayerInterface KillFrames stop the frames they match that are running."""
    _run_frame(sandbox, 0)
    _run_frame(sandbox, 1)
    waiting = job_pb2.FrameStateSeq(frame_states=[job_pb2.WAITING])
    cue.job.KillFrames(job_pb2.JobKillFramesRequest(
        job=JOB, req=job_pb2.FrameSearchCriteria(frame_range="1", states=waiting)
    ))
    assert [_frame(cue, i).state for i in (0, 1)] == [job_pb2.WAITING, job_pb2.RUNNING]
    cue.layer.KillFrames(job_pb2.LayerKillFramesRequest(layer=LAYER))
    assert _job(cue).job_stats.waiting_frames == 6


def test_eat_and_retry_running_frames(sandbox, cue):
    """Eating or retrying a running frame stops it first and frees its proc."""
    _run_frame(sandbox, 0)
    _run_frame(sandbox, 1)
    cue.frame.Eat(job_pb2.FrameEatRequest(frame=job_pb2.Frame(id=seed.FRAME_IDS[0])))
    cue.frame.Retry(job_pb2.FrameRetryRequest(frame=job_pb2.Frame(id=seed.FRAME_IDS[1])))
    assert [_frame(cue, i).state for i in (0, 1)] == [job_pb2.EATEN, job_pb2.WAITING]
    assert _frame(cue, 0).stop_time == START
    assert _host(cue).idle_cores == 12


def test_kill_job_finishes_it(clock, sandbox, cue):
    """Kill with a reason finishes the job: running frames go back to WAITING, others stay;
    the frameless seed proc, which RQD never reports on, leaves after Cuebot's 300 s."""
    _run_frame(sandbox, 0)
    cue.frame.Eat(job_pb2.FrameEatRequest(frame=job_pb2.Frame(id=seed.FRAME_IDS[5])))
    cue.job.Kill(job_pb2.JobKillRequest(job=JOB, username="artist1", reason="test over"))
    job = _job(cue)
    assert (job.state, job.stop_time) == (job_pb2.FINISHED, START)
    assert (job.job_stats.waiting_frames, job.job_stats.eaten_frames) == (5, 1)
    assert job.job_stats.running_frames == 0
    assert cue.job.GetJobs(job_pb2.JobGetJobsRequest()).jobs.jobs == []
    finished = job_pb2.JobSearchCriteria(include_finished=True)
    assert [j.id for j in cue.job.GetJobs(job_pb2.JobGetJobsRequest(r=finished)).jobs.jobs] == [
        seed.JOB_ID
    ]
    assert _host(cue).idle_cores == 12
    clock.advance(300)
    assert _host(cue).idle_cores == 16


def test_kill_job_without_reason_is_ignored(cue):
    """A Kill without a reason succeeds but changes nothing, as Cuebot ignores it."""
    cue.job.Kill(job_pb2.JobKillRequest(job=JOB, username="artist1"))
    assert _job(cue).state == job_pb2.PENDING


def test_group_min_and_max_cores(cue):
    """SetMinCores and SetMaxCores show on GetGroup, rounded down to whole cores."""
    cue.group.SetMinCores(job_pb2.GroupSetMinCoresRequest(group=GROUP, min_cores=2.7))
    cue.group.SetMaxCores(job_pb2.GroupSetMaxCoresRequest(group=GROUP, max_cores=50))
    group = cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=seed.GROUP_ID)).group
    assert (group.min_cores, group.max_cores) == (2, 50)
    cue.group.SetMaxCores(job_pb2.GroupSetMaxCoresRequest(group=GROUP, max_cores=-1))
    group = cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=seed.GROUP_ID)).group
    assert group.max_cores == -1


def test_job_comments(clock, cue):
    """AddComment on a job shows in GetComments, stamped by the server, and sets has_comment."""
    assert not _job(cue).has_comment
    clock.advance(5)
    for subject in ("first", "second"):
        cue.job.AddComment(job_pb2.JobAddCommentRequest(
            job=JOB, new_comment=comment_pb2.Comment(user="artist1", subject=subject,
                                                     message="hello", timestamp=1)
        ))
    comments = cue.job.GetComments(job_pb2.JobGetCommentsRequest(job=JOB)).comments.comments
    assert [(c.subject, c.user, c.timestamp) for c in comments] == [
        ("first", "artist1", START + 5), ("second", "artist1", START + 5)
    ]
    assert all(c.id for c in comments)
    assert _job(cue).has_comment


def test_host_comments(cue):
    """AddComment on a host shows in GetComments and sets has_comment."""
    cue.host.AddComment(host_pb2.HostAddCommentRequest(
        host=HOST, new_comment=comment_pb2.Comment(user="admin", subject="disk", message="full")
    ))
    comments = cue.host.GetComments(host_pb2.HostGetCommentsRequest(host=HOST)).comments.comments
    assert [(c.subject, c.message) for c in comments] == [("disk", "full")]
    assert _host(cue).has_comment


def test_create_show(cue):
    """CreateShow conforms the name, and the show and its root group appear in later reads."""
    created = cue.show.CreateShow(show_pb2.ShowCreateShowRequest(name="New-Show")).show
    shows = cue.show.GetShows(show_pb2.ShowGetShowsRequest()).shows.shows
    root = cue.show.GetRootGroup(show_pb2.ShowGetRootGroupRequest(show=created)).group
    assert created.name == "new_show"
    assert [s.name for s in shows] == ["testing", "new_show"]
    assert (created.default_min_cores, created.default_max_cores) == (1, 100)
    assert created.show_stats.pending_jobs == 0
    assert (root.name, root.level, root.department) == ("new_show", 0, "Unknown")


def test_take_ownership_replaces_the_hosts_deed(cue):
    """TakeOwnership gives the host a new deed, replacing the old one."""
    owner = host_pb2.Owner(id=seed.OWNER_ID)
    cue.owner.TakeOwnership(host_pb2.OwnerTakeOwnershipRequest(owner=owner, host="render-host-001"))
    deeds = cue.owner.GetDeeds(host_pb2.OwnerGetDeedsRequest(owner=owner)).deeds.deeds
    assert len(deeds) == 1
    assert deeds[0].id != seed.DEED_ID and deeds[0].host == "render-host-001"
    assert cue.host.GetDeed(host_pb2.HostGetDeedRequest(host=HOST)).deed.id == deeds[0].id


def test_take_ownership_of_a_second_host(sandbox, cue):
    """An owner taking a second NIMBY host counts two hosts."""
    with sandbox.farm.lock:
        sandbox.farm.add_host(Host(
            id=new_id(), name="desk-002", alloc_name="local.desktop", cores=8.0, memory=1,
            gpus=0.0, gpu_memory=0, total_memory=1, free_memory=1, boot_time=START,
            ping_time=START, os="linux", nimby_enabled=True,
        ))
    owner = host_pb2.Owner(id=seed.OWNER_ID)
    cue.owner.TakeOwnership(host_pb2.OwnerTakeOwnershipRequest(owner=owner, host="desk-002"))
    hosts = cue.owner.GetHosts(host_pb2.OwnerGetHostsRequest(owner=owner)).hosts.hosts
    assert sorted(h.name for h in hosts) == ["desk-002", "render-host-001"]
    assert cue.owner.GetOwner(host_pb2.OwnerGetOwnerRequest(name="artist1")).owner.host_count == 2


def test_kill_proc_frees_the_host(clock, cue):
    """A killed proc with no frame stays unbooked until Cuebot's orphan check clears it
    (300 s), then its cores go back to the host and job."""
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=host_pb2.Proc(id=seed.PROC_ID)))
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert [(p.id, p.unbooked) for p in procs] == [(seed.PROC_ID, True)]
    clock.advance(299)
    assert len(cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs) == 1
    clock.advance(1)
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert list(procs) == []
    assert (_host(cue).idle_cores, _host(cue).idle_gpus) == (16, 1)
    assert _job(cue).job_stats.reserved_cores == 0


def test_kill_proc_running_a_frame_requeues_the_frame(sandbox, cue):
    """Killing a proc that runs a frame puts the frame back to WAITING."""
    proc_id = _run_frame(sandbox, 3)
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=host_pb2.Proc(id=proc_id)))
    assert _frame(cue, 3).state == job_pb2.WAITING


def test_unbook_proc(clock, cue):
    """Unbook marks the proc unbooked; a frameless unbooked proc leaves 300 s later."""
    proc = host_pb2.Proc(id=seed.PROC_ID)
    cue.proc.Unbook(host_pb2.ProcUnbookRequest(proc=proc))
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert [p.unbooked for p in procs] == [True]
    clock.advance(200)
    cue.proc.Unbook(host_pb2.ProcUnbookRequest(proc=proc, kill=True))
    assert len(cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs) == 1
    clock.advance(100)
    assert list(cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs) == []
