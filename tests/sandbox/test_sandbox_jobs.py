"""Job and frame changes: each shows on the next read, with every level of stats consistent."""

from __future__ import annotations

import grpc
from opencue_proto import job_pb2, show_pb2

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import GIB, SPEC, launch, rpc_error

JOB = job_pb2.Job(id=seed.JOB_ID)


def _stats(cue):
    """(job, layer, group, show) stats of the seed job's family, read now."""
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    layer = cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=seed.LAYER_ID)).layer
    group = cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=seed.GROUP_ID)).group
    show = cue.show.FindShow(show_pb2.ShowFindShowRequest(name="testing")).show
    return job.job_stats, layer.layer_stats, group.group_stats, show.show_stats


def _fail(sandbox, index):
    """Run seed frame ``index + 1`` on the seed host and end it with exit status 1."""
    farm = sandbox.farm
    frame = farm.frame(seed.FRAME_IDS[index])
    farm.start_frame(frame, farm.host(seed.HOST_ID), 1.0, GIB)
    farm.complete_frame(frame, 1, GIB // 2)
    return frame


def _numbers(cue, job=JOB):
    """Frame numbers of a job in dispatch order."""
    request = job_pb2.JobGetFramesRequest(job=job, req=job_pb2.FrameSearchCriteria())
    return [f.number for f in cue.job.GetFrames(request).frames.frames]


def test_retrying_a_dead_frame_moves_it_from_dead_to_waiting_everywhere(sandbox, cue):
    """A frame out of retries is DEAD in layer, job, group and show; Retry makes it WAITING."""
    cue.job.SetMaxRetries(job_pb2.JobSetMaxRetriesRequest(job=JOB, max_retries=1))
    _fail(sandbox, 0)
    job, layer, group, show = _stats(cue)
    assert (job.dead_frames, layer.dead_frames, group.dead_frames, show.dead_frames) == (1,) * 4
    assert (job.waiting_frames, layer.waiting_frames, group.waiting_frames) == (5,) * 3
    assert (job.failed_frame_count, show.failed_frame_count) == (1, 1)
    cue.frame.Retry(job_pb2.FrameRetryRequest(frame=job_pb2.Frame(id=seed.FRAME_ID)))
    job, layer, group, show = _stats(cue)
    assert (job.dead_frames, layer.dead_frames, group.dead_frames, show.dead_frames) == (0,) * 4
    assert (job.waiting_frames, layer.waiting_frames, group.waiting_frames) == (6,) * 3
    assert (job.pending_frames, layer.pending_frames, show.pending_frames) == (6,) * 3


def test_a_failure_with_retries_left_goes_back_to_waiting(sandbox, cue):
    """A failed frame under max_retries is WAITING again, its retry count up by one."""
    frame = _fail(sandbox, 1)
    got = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=frame.id)).frame
    assert (got.state, got.retry_count, got.exit_status) == (job_pb2.WAITING, 1, 1)


def test_auto_eat_eats_dead_frames(sandbox, cue):
    """With SetAutoEat, a frame out of retries is EATEN instead of DEAD."""
    cue.job.SetAutoEat(job_pb2.JobSetAutoEatRequest(job=JOB, value=True))
    cue.job.SetMaxRetries(job_pb2.JobSetMaxRetriesRequest(job=JOB, max_retries=1))
    _fail(sandbox, 0)
    job, layer, _, _ = _stats(cue)
    assert (job.eaten_frames, job.dead_frames, layer.eaten_frames) == (1, 0, 1)
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.auto_eat


def test_job_settings_show_on_the_next_read(cue):
    """Priority, cores (truncated to whole cores, as Cuebot converts them) and GPUs read back."""
    cue.job.SetPriority(job_pb2.JobSetPriorityRequest(job=JOB, val=250))
    cue.job.SetMinCores(job_pb2.JobSetMinCoresRequest(job=JOB, val=2.4))
    cue.job.SetMaxCores(job_pb2.JobSetMaxCoresRequest(job=JOB, val=20.6))
    cue.job.SetMinGpus(job_pb2.JobSetMinGpusRequest(job=JOB, val=1))
    cue.job.SetMaxGpus(job_pb2.JobSetMaxGpusRequest(job=JOB, val=4))
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    assert (job.priority, job.min_cores, job.max_cores) == (250, 2.0, 20.0)
    assert (job.min_gpus, job.max_gpus) == (1, 4)


def test_kill_with_a_reason_finishes_the_job(cue):
    """Kill with a reason makes the job FINISHED; it leaves the pending lists."""
    cue.job.Kill(job_pb2.JobKillRequest(job=JOB, reason="not needed"))
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    pending = cue.job.IsJobPending(job_pb2.JobIsJobPendingRequest(name=job.name)).value
    assert (job.state, pending) == (job_pb2.FINISHED, False)


def test_kill_without_a_reason_is_ignored(cue):
    """Kill without a reason answers OK and changes nothing, as Cuebot logs and ignores it."""
    cue.job.Kill(job_pb2.JobKillRequest(job=JOB))
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.state == job_pb2.PENDING


def test_reorder_frames_first_last_and_reverse(cue):
    """ReorderFrames moves a range to the front or back, or reverses it in place."""
    cue.job.ReorderFrames(job_pb2.JobReorderFramesRequest(job=JOB, range="5-6", order=0))
    assert _numbers(cue) == [5, 6, 1, 2, 3, 4]
    cue.job.ReorderFrames(job_pb2.JobReorderFramesRequest(job=JOB, range="5", order=1))
    assert _numbers(cue) == [6, 1, 2, 3, 4, 5]
    layer = job_pb2.Layer(id=seed.LAYER_ID)
    cue.layer.ReorderFrames(job_pb2.LayerReorderFramesRequest(layer=layer, range="1-3", order=2))
    assert _numbers(cue) == [6, 3, 2, 1, 4, 5]


def test_stagger_frames(cue):
    """StaggerFrames puts every n-th frame of the range first, then the ones between."""
    cue.job.StaggerFrames(job_pb2.JobStaggerFramesRequest(job=JOB, range="1-6", stagger=3))
    assert _numbers(cue) == [1, 4, 2, 5, 3, 6]


def test_eat_by_criteria_and_mark_as_waiting(cue):
    """EatFrames acts on the criteria's frames; MarkAsWaiting leaves frames not in DEPEND alone."""
    criteria = job_pb2.FrameSearchCriteria(frame_range="1-2")
    cue.job.EatFrames(job_pb2.JobEatFramesRequest(job=JOB, req=criteria))
    cue.job.MarkAsWaiting(job_pb2.JobMarkAsWaitingRequest(job=JOB, req=criteria))
    job, *_ = _stats(cue)
    assert (job.eaten_frames, job.waiting_frames) == (2, 4)


def test_set_group_moves_the_job(cue):
    """JobInterface.SetGroup moves a job into another group of its show."""
    root = job_pb2.Group(id=seed.GROUP_ID)
    sub = cue.group.CreateSubGroup(job_pb2.GroupCreateSubGroupRequest(group=root, name="sub")).group
    cue.job.SetGroup(job_pb2.JobSetGroupRequest(job=JOB, group_id=sub.id))
    jobs = cue.group.GetJobs(job_pb2.GroupGetJobsRequest(group=sub)).jobs.jobs
    assert [j.id for j in jobs] == [seed.JOB_ID]
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.group == "sub"


def test_add_subscriber_keeps_a_set(sandbox, cue):
    """AddSubscriber adds an address once."""
    for address in ("a@example.com", "b@example.com", "a@example.com"):
        cue.job.AddSubscriber(job_pb2.JobAddSubscriberRequest(job=JOB, subscriber=address))
    assert sandbox.farm.job(seed.JOB_ID).email == "a@example.com,b@example.com"


def test_launch_spec_creates_pending_jobs_with_cuebots_names(cue):
    """LaunchSpecAndWait creates the spec's jobs, named show-shot-user_name, in the show."""
    jobs = launch(cue)
    assert [j.name for j in jobs] == [
        "testing-shot002-artist2_lighting", "testing-shot002-artist2_comp_job"
    ]
    assert all(j.state == job_pb2.PENDING and j.group == "default" for j in jobs)
    layers = cue.job.GetLayers(job_pb2.JobGetLayersRequest(job=jobs[0])).layers.layers
    assert [(lay.name, lay.min_cores, lay.min_memory, list(lay.services)) for lay in layers] == [
        ("beauty", 2.0, 4 * GIB, ["arnold"])
    ]
    assert jobs[0].job_stats.total_frames == 4
    names = cue.job.LaunchSpec(job_pb2.JobLaunchSpecRequest(
        spec=SPEC.replace("lighting", "lighting2").replace("comp-job", "comp-job2")
    )).names
    assert list(names) == [
        "testing-shot002-artist2_lighting2", "testing-shot002-artist2_comp_job2"
    ]


def test_launch_spec_failures_are_internal_and_leave_nothing_behind(cue):
    """A bad spec answers INTERNAL with Cuebot's prefix, and no job of it stays."""
    error = rpc_error(cue.job.LaunchSpecAndWait, job_pb2.JobLaunchSpecAndWaitRequest(
        spec=SPEC.replace("<onlayer>render</onlayer>", "<onlayer>missing</onlayer>")
    ))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details().startswith("Failed to launch and add job: ")
    unknown_show = rpc_error(cue.job.LaunchSpec, job_pb2.JobLaunchSpecRequest(
        spec=SPEC.replace("<show>testing</show>", "<show>nope</show>")
    ))
    assert unknown_show.details().startswith("Failed to add job to launch queue: ")
    jobs = cue.job.GetJobs(job_pb2.JobGetJobsRequest()).jobs.jobs
    assert [j.name for j in jobs] == ["testing-job-001"]
