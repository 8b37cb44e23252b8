"""``job.JobInterface``: jobs, their frames in bulk, depends, settings and launching.

Every ManageJob method that takes a ``Job`` message answers an unknown job
(or any other failed lookup inside the same call) with NOT_FOUND "Job not
found".  Bulk frame changes act on every frame matching the criteria, paging
ignored, as Cuebot's dispatch queue does.  Core settings are stored in whole
cores (``Convert.coresToWholeCoreUnits``).
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import job_pb2, renderPartition_pb2

from opencue_gateway.sandbox import errors, messages, ordering, search, spec
from opencue_gateway.sandbox.errors import job_not_found, not_found
from opencue_gateway.sandbox.farm import Farm, whole_cores
from opencue_gateway.sandbox.records import Frame, Job, Layer
from opencue_gateway.sandbox.rpc_local import book_local
from opencue_gateway.sandbox.rpc_registry import (
    comment_seq,
    depend_queries,
    depend_seq,
    frame_seq,
    job_frames,
    job_of,
    job_seq,
    layers_of,
    rpc,
)


@rpc("/job.JobInterface/GetJobs")
def get_jobs(farm: Farm, request: job_pb2.JobGetJobsRequest) -> Message:
    """Jobs matching a JobSearchCriteria."""
    return job_pb2.JobGetJobsResponse(jobs=job_seq(search.match_jobs(farm.jobs(), request.r)))


@rpc("/job.JobInterface/GetJobNames")
def get_job_names(farm: Farm, request: job_pb2.JobGetJobNamesRequest) -> Message:
    """Names of the jobs matching a JobSearchCriteria."""
    jobs = search.match_jobs(farm.jobs(), request.r)
    return job_pb2.JobGetJobNamesResponse(names=[job.name for job in jobs])


@rpc("/job.JobInterface/FindJob")
def find_job(farm: Farm, request: job_pb2.JobFindJobRequest) -> Message:
    """A pending job by name."""
    with not_found():
        job = farm.find_job(request.name)
    return job_pb2.JobFindJobResponse(job=messages.job(job))


@rpc("/job.JobInterface/GetJob")
def get_job(farm: Farm, request: job_pb2.JobGetJobRequest) -> Message:
    """A job by id, in any state."""
    with not_found():
        job = farm.job(request.id)
    return job_pb2.JobGetJobResponse(job=messages.job(job))


@rpc("/job.JobInterface/GetCurrent")
def get_current(farm: Farm, request: job_pb2.JobGetCurrentRequest) -> Message:
    """The current state of the job a Job message names."""
    return job_pb2.JobGetCurrentResponse(job=messages.job(job_of(farm, request.job)))


@rpc("/job.JobInterface/IsJobPending")
def is_job_pending(farm: Farm, request: job_pb2.JobIsJobPendingRequest) -> Message:
    """Whether a pending job has this name."""
    pending = any(
        job.name == request.name and job.state == job_pb2.PENDING for job in farm.jobs()
    )
    return job_pb2.JobIsJobPendingResponse(value=pending)


@rpc("/job.JobInterface/GetFrames")
def get_job_frames(farm: Farm, request: job_pb2.JobGetFramesRequest) -> Message:
    """One page of a job's frames matching a FrameSearchCriteria."""
    job = job_of(farm, request.job)
    return job_pb2.JobGetFramesResponse(
        frames=frame_seq(search.frame_page(layers_of(job), request.req, farm.now()))
    )


@rpc("/job.JobInterface/GetLayers")
def get_layers(farm: Farm, request: job_pb2.JobGetLayersRequest) -> Message:
    """A job's layers in dispatch order."""
    layers = [messages.layer(layer) for layer in layers_of(job_of(farm, request.job))]
    return job_pb2.JobGetLayersResponse(layers=job_pb2.LayerSeq(layers=layers))


@rpc("/job.JobInterface/GetComments")
def get_job_comments(farm: Farm, request: job_pb2.JobGetCommentsRequest) -> Message:
    """A job's comments."""
    return job_pb2.JobGetCommentsResponse(comments=comment_seq(job_of(farm, request.job).comments))


@rpc("/job.JobInterface/AddComment")
def add_job_comment(farm: Farm, request: job_pb2.JobAddCommentRequest) -> Message:
    """Comment on a job."""
    new = request.new_comment
    farm.add_comment(job_of(farm, request.job), new.user, new.subject, new.message)
    return job_pb2.JobAddCommentResponse()


@rpc("/job.JobInterface/Pause")
def pause(farm: Farm, request: job_pb2.JobPauseRequest) -> Message:
    """Pause a job; any job, finished or not, as Cuebot allows."""
    job_of(farm, request.job).is_paused = True
    return job_pb2.JobPauseResponse()


@rpc("/job.JobInterface/Resume")
def resume(farm: Farm, request: job_pb2.JobResumeRequest) -> Message:
    """Resume a paused job."""
    job_of(farm, request.job).is_paused = False
    return job_pb2.JobResumeResponse()


@rpc("/job.JobInterface/Kill")
def kill_job(farm: Farm, request: job_pb2.JobKillRequest) -> Message:
    """Kill a job; like Cuebot, a kill without a reason is accepted and ignored."""
    farm.kill_job(job_of(farm, request.job), request.reason)
    return job_pb2.JobKillResponse()


@rpc("/job.JobInterface/ShutdownIfCompleted")
def shutdown_if_completed(farm: Farm, request: job_pb2.JobShutdownIfCompletedRequest) -> Message:
    """Finish a job that has nothing left to render."""
    farm.finish_if_complete(job_of(farm, request.job))
    return job_pb2.JobShutdownIfCompletedResponse()


@rpc("/job.JobInterface/EatFrames")
def eat_job_frames(farm: Farm, request: job_pb2.JobEatFramesRequest) -> Message:
    """Eat every frame of a job matching the criteria."""
    farm.eat_frames(job_frames(farm, job_of(farm, request.job), request.req))
    return job_pb2.JobEatFramesResponse()


@rpc("/job.JobInterface/RetryFrames")
def retry_job_frames(farm: Farm, request: job_pb2.JobRetryFramesRequest) -> Message:
    """Retry every frame of a job matching the criteria."""
    farm.retry_frames(job_frames(farm, job_of(farm, request.job), request.req))
    return job_pb2.JobRetryFramesResponse()


@rpc("/job.JobInterface/KillFrames")
def kill_job_frames(farm: Farm, request: job_pb2.JobKillFramesRequest) -> Message:
    """Kill the running frames of a job matching the criteria (state filter ignored)."""
    job = job_of(farm, request.job)
    criteria = job_pb2.FrameSearchCriteria()
    criteria.CopyFrom(request.req)
    criteria.ClearField("states")
    farm.kill_frames(job_frames(farm, job, criteria))
    return job_pb2.JobKillFramesResponse()


@rpc("/job.JobInterface/MarkAsWaiting")
def mark_job_frames_waiting(farm: Farm, request: job_pb2.JobMarkAsWaitingRequest) -> Message:
    """Put the job's DEPEND frames matching the criteria back to WAITING."""
    farm.mark_as_waiting(job_frames(farm, job_of(farm, request.job), request.req))
    return job_pb2.JobMarkAsWaitingResponse()


@rpc("/job.JobInterface/MarkDoneFrames")
def mark_done_frames(farm: Farm, request: job_pb2.JobMarkDoneFramesRequest) -> Message:
    """Release whatever waits on the matching frames, as if they had succeeded."""
    for frame in list(job_frames(farm, job_of(farm, request.job), request.req)):
        for depend in farm.depends.what_depends_on(frame):
            farm.depends.satisfy(depend)
    return job_pb2.JobMarkDoneFramesResponse()


@rpc("/job.JobInterface/ReorderFrames")
def reorder_job_frames(farm: Farm, request: job_pb2.JobReorderFramesRequest) -> Message:
    """Move frames of every layer to the front or back, or reverse them."""
    for layer in job_of(farm, request.job).layers.values():
        ordering.reorder(layer, request.range, request.order)
    return job_pb2.JobReorderFramesResponse()


@rpc("/job.JobInterface/StaggerFrames")
def stagger_job_frames(farm: Farm, request: job_pb2.JobStaggerFramesRequest) -> Message:
    """Stagger frames of every layer."""
    for layer in job_of(farm, request.job).layers.values():
        ordering.stagger(layer, request.range, request.stagger)
    return job_pb2.JobStaggerFramesResponse()


@rpc("/job.JobInterface/GetUpdatedFrames")
def get_updated_frames(farm: Farm, request: job_pb2.JobGetUpdatedFramesRequest) -> Message:
    """Frames of a job changed since ``last_check``, with the job's state."""
    job = job_of(farm, request.job)
    layer_ids = [layer.id for layer in request.layer_filter.layers]
    frames = farm.updated_frames(job, request.last_check, layer_ids)
    return job_pb2.JobGetUpdatedFramesResponse(
        state=job.state,
        server_time=farm.now() - 1,
        updated_frames=job_pb2.UpdatedFrameSeq(
            updated_frames=[messages.updated_frame(frame) for frame in frames]
        ),
    )


@rpc("/job.JobInterface/SetPriority")
def set_priority(farm: Farm, request: job_pb2.JobSetPriorityRequest) -> Message:
    """Set a job's priority."""
    job_of(farm, request.job).priority = request.val
    return job_pb2.JobSetPriorityResponse()


@rpc("/job.JobInterface/SetMinCores")
def set_min_cores(farm: Farm, request: job_pb2.JobSetMinCoresRequest) -> Message:
    """Set a job's minimum cores."""
    job_of(farm, request.job).min_cores = whole_cores(request.val)
    return job_pb2.JobSetMinCoresResponse()


@rpc("/job.JobInterface/SetMaxCores")
def set_max_cores(farm: Farm, request: job_pb2.JobSetMaxCoresRequest) -> Message:
    """Set a job's maximum cores."""
    job_of(farm, request.job).max_cores = whole_cores(request.val)
    return job_pb2.JobSetMaxCoresResponse()


@rpc("/job.JobInterface/SetMinGpus")
def set_min_gpus(farm: Farm, request: job_pb2.JobSetMinGpusRequest) -> Message:
    """Set a job's minimum GPUs."""
    job_of(farm, request.job).min_gpus = float(request.val)
    return job_pb2.JobSetMinGpusResponse()


@rpc("/job.JobInterface/SetMaxGpus")
def set_max_gpus(farm: Farm, request: job_pb2.JobSetMaxGpusRequest) -> Message:
    """Set a job's maximum GPUs."""
    job_of(farm, request.job).max_gpus = float(request.val)
    return job_pb2.JobSetMaxGpusResponse()


@rpc("/job.JobInterface/SetAutoEat")
def set_auto_eat(farm: Farm, request: job_pb2.JobSetAutoEatRequest) -> Message:
    """Make a job eat its dead frames, or stop."""
    job_of(farm, request.job).auto_eat = request.value
    return job_pb2.JobSetAutoEatResponse()


@rpc("/job.JobInterface/SetMaxRetries")
def set_max_retries(farm: Farm, request: job_pb2.JobSetMaxRetriesRequest) -> Message:
    """Set how many times a failing frame is retried before it is DEAD."""
    job_of(farm, request.job).max_retries = request.max_retries
    return job_pb2.JobSetMaxRetriesResponse()


@rpc("/job.JobInterface/SetGroup")
def set_job_group(farm: Farm, request: job_pb2.JobSetGroupRequest) -> Message:
    """Move a job to another group of its show."""
    with job_not_found():
        farm.set_group(job_of(farm, request.job), farm.group(request.group_id))
    return job_pb2.JobSetGroupResponse()


@rpc("/job.JobInterface/AddSubscriber")
def add_subscriber(farm: Farm, request: job_pb2.JobAddSubscriberRequest) -> Message:
    """Add an address to the job's email list (a comma-separated set)."""
    job = job_of(farm, request.job)
    addresses = [a for a in job.email.split(",") if a]
    if request.subscriber not in addresses:
        addresses.append(request.subscriber)
    job.email = ",".join(addresses)
    return job_pb2.JobAddSubscriberResponse()


def _depend_on(farm: Farm, er: Job | Layer | Frame, on: Job | Layer | Frame) -> Message:
    """Create a depend and render it."""
    return messages.depend(farm.depends.create(er, on))


@rpc("/job.JobInterface/CreateDependencyOnJob")
def job_on_job(farm: Farm, request: job_pb2.JobCreateDependencyOnJobRequest) -> Message:
    """Make a job wait for another job."""
    with job_not_found():
        depend = _depend_on(farm, job_of(farm, request.job), farm.job(request.on_job.id))
    return job_pb2.JobCreateDependencyOnJobResponse(depend=depend)


@rpc("/job.JobInterface/CreateDependencyOnLayer")
def job_on_layer(farm: Farm, request: job_pb2.JobCreateDependencyOnLayerRequest) -> Message:
    """Make a job wait for a layer."""
    with job_not_found():
        depend = _depend_on(farm, job_of(farm, request.job), farm.layer(request.layer.id))
    return job_pb2.JobCreateDependencyOnLayerResponse(depend=depend)


@rpc("/job.JobInterface/CreateDependencyOnFrame")
def job_on_frame(farm: Farm, request: job_pb2.JobCreateDependencyOnFrameRequest) -> Message:
    """Make a job wait for a frame."""
    with job_not_found():
        depend = _depend_on(farm, job_of(farm, request.job), farm.frame(request.frame.id))
    return job_pb2.JobCreateDependencyOnFrameResponse(depend=depend)


depend_queries(
    "/job.JobInterface",
    lambda farm, request: job_of(farm, request.job),
    job_pb2.JobGetWhatThisDependsOnResponse,
    job_pb2.JobGetWhatDependsOnThisResponse,
    job_pb2.JobDropDependsResponse,
)


@rpc("/job.JobInterface/GetDepends")
def get_depends(farm: Farm, request: job_pb2.JobGetDependsRequest) -> Message:
    """Every depend of the job's own, active or satisfied."""
    depends = farm.depends.what_this_depends_on(job_of(farm, request.job), only_active=False)
    return job_pb2.JobGetDependsResponse(depends=depend_seq(depends))


@rpc("/job.JobInterface/AddRenderPartition")
def add_job_render_partition(farm: Farm, request: job_pb2.JobAddRenderPartRequest) -> Message:
    """Set a host's resources aside for the job (local booking)."""
    job = job_of(farm, request.job)
    partition = book_local(farm, request, job, renderPartition_pb2.JOB_PARTITION)
    return job_pb2.JobAddRenderPartResponse(render_partition=partition)


@rpc("/job.JobInterface/LaunchSpec")
def launch_spec(farm: Farm, request: job_pb2.JobLaunchSpecRequest) -> Message:
    """Launch the jobs of a spec and answer their names."""
    return job_pb2.JobLaunchSpecResponse(names=[job.name for job in _launch(farm, request, True)])


@rpc("/job.JobInterface/LaunchSpecAndWait")
def launch_spec_and_wait(farm: Farm, request: job_pb2.JobLaunchSpecAndWaitRequest) -> Message:
    """Launch the jobs of a spec and answer the jobs."""
    return job_pb2.JobLaunchSpecAndWaitResponse(jobs=job_seq(_launch(farm, request, False)))


def _launch(farm: Farm, request: job_pb2.JobLaunchSpecRequest, queued: bool) -> list[Job]:
    """Launch a spec; any failure is INTERNAL with Cuebot's prefix and the reason."""
    try:
        return spec.launch(farm, request.spec)
    except errors.JavaError as error:
        raise errors.launch_failed(error.message, queued) from error
