"""The RPCs the sandbox Cuebot implements, one function per method.

Each handler takes the farm and the request message and returns the response
message.  It fails by raising: :class:`~opencue_gateway.sandbox.errors.CuebotError`
for a status the Cuebot servant sends on purpose (wrapping a lookup in
``errors.not_found()`` or ``errors.job_not_found()`` where the servant catches
the lookup's exception), or the farm's Java-like exceptions where Cuebot's
servant lets them escape; the server turns both into the status a Cuebot
client would see.  The server holds ``Farm.lock`` around each call.

``HANDLERS`` maps each implemented method path to its handler; every other
catalog method answers UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from opencue_proto import comment_pb2, host_pb2, job_pb2, show_pb2

from opencue_gateway.sandbox import messages, search
from opencue_gateway.sandbox.errors import job_not_found, not_found, show_not_created
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Comment, Frame, Group, Job, Layer

Handler = Callable[[Farm, Any], Message]

HANDLERS: dict[str, Handler] = {}


def rpc(path: str) -> Callable[[Handler], Handler]:
    """Register a handler for the method at ``path`` (``/package.Service/Method``)."""

    def register(handler: Handler) -> Handler:
        """Record the handler under its path and return it unchanged."""
        HANDLERS[path] = handler
        return handler

    return register


def _job(farm: Farm, job: job_pb2.Job) -> Job:
    """The job a ``Job`` message names, failing as ManageJob does ("Job not found")."""
    with job_not_found():
        return farm.job(job.id)


def _job_seq(jobs: list[Job]) -> job_pb2.JobSeq:
    """Render jobs as a JobSeq."""
    return job_pb2.JobSeq(jobs=[messages.job(job) for job in jobs])


def _frame_seq(frames: list[Frame]) -> job_pb2.FrameSeq:
    """Render frames as a FrameSeq."""
    return job_pb2.FrameSeq(frames=[messages.frame(frame) for frame in frames])


def _comment_seq(comments: list[Comment]) -> comment_pb2.CommentSeq:
    """Render comments, oldest first as Cuebot orders them."""
    return comment_pb2.CommentSeq(comments=[messages.comment(c) for c in comments])


def _pending_jobs_by_name(jobs: list[Job]) -> list[Job]:
    """Pending jobs sorted by name: what Cuebot lists for a show or a group."""
    return search.match_jobs(jobs, job_pb2.JobSearchCriteria())


def _layers(job: Job) -> list[Layer]:
    """A job's layers in dispatch order."""
    return sorted(job.layers.values(), key=lambda layer: layer.dispatch_order)


def _groups_in_order(groups: list[Group]) -> list[Group]:
    """Groups by level, then name, as Cuebot lists a show's groups."""
    return sorted(groups, key=lambda group: (group.level, group.name))


# -- show.ShowInterface ---------------------------------------------------------


@rpc("/show.ShowInterface/GetShows")
def get_shows(farm: Farm, _request: show_pb2.ShowGetShowsRequest) -> Message:
    """Every show."""
    shows = [messages.show(show) for show in farm.shows()]
    return show_pb2.ShowGetShowsResponse(shows=show_pb2.ShowSeq(shows=shows))


@rpc("/show.ShowInterface/GetActiveShows")
def get_active_shows(farm: Farm, _request: show_pb2.ShowGetActiveShowsRequest) -> Message:
    """The shows marked active."""
    shows = [messages.show(show) for show in farm.shows() if show.active]
    return show_pb2.ShowGetActiveShowsResponse(shows=show_pb2.ShowSeq(shows=shows))


@rpc("/show.ShowInterface/FindShow")
def find_show(farm: Farm, request: show_pb2.ShowFindShowRequest) -> Message:
    """A show by name."""
    with not_found():
        show = farm.find_show(request.name)
    return show_pb2.ShowFindShowResponse(show=messages.show(show))


@rpc("/show.ShowInterface/CreateShow")
def create_show(farm: Farm, request: show_pb2.ShowCreateShowRequest) -> Message:
    """Create a show and its root group."""
    with show_not_created():
        show = farm.create_show(request.name)
    return show_pb2.ShowCreateShowResponse(show=messages.show(show))


@rpc("/show.ShowInterface/GetGroups")
def get_show_groups(farm: Farm, request: show_pb2.ShowGetGroupsRequest) -> Message:
    """Every group of a show."""
    show = farm.show(request.show.id)
    groups = _groups_in_order(list(show.groups.values()))
    return show_pb2.ShowGetGroupsResponse(
        groups=job_pb2.GroupSeq(groups=[messages.group(group) for group in groups])
    )


@rpc("/show.ShowInterface/GetRootGroup")
def get_root_group(farm: Farm, request: show_pb2.ShowGetRootGroupRequest) -> Message:
    """A show's root group."""
    show = farm.show(request.show.id)
    return show_pb2.ShowGetRootGroupResponse(group=messages.group(show.root))


@rpc("/show.ShowInterface/GetJobs")
def get_show_jobs(farm: Farm, request: show_pb2.ShowGetJobsRequest) -> Message:
    """A show's pending jobs."""
    show = farm.show(request.show.id)
    return show_pb2.ShowGetJobsResponse(
        jobs=_job_seq(_pending_jobs_by_name(list(show.jobs.values())))
    )


# -- job.JobInterface -----------------------------------------------------------


@rpc("/job.JobInterface/GetJobs")
def get_jobs(farm: Farm, request: job_pb2.JobGetJobsRequest) -> Message:
    """Jobs matching a JobSearchCriteria."""
    return job_pb2.JobGetJobsResponse(jobs=_job_seq(search.match_jobs(farm.jobs(), request.r)))


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
    return job_pb2.JobGetCurrentResponse(job=messages.job(_job(farm, request.job)))


@rpc("/job.JobInterface/IsJobPending")
def is_job_pending(farm: Farm, request: job_pb2.JobIsJobPendingRequest) -> Message:
    """Whether a pending job has this name."""
    pending = any(job.name == request.name for job in _pending_jobs_by_name(farm.jobs()))
    return job_pb2.JobIsJobPendingResponse(value=pending)


@rpc("/job.JobInterface/GetFrames")
def get_job_frames(farm: Farm, request: job_pb2.JobGetFramesRequest) -> Message:
    """One page of a job's frames matching a FrameSearchCriteria."""
    job = _job(farm, request.job)
    frames = search.frame_page(_layers(job), request.req)
    return job_pb2.JobGetFramesResponse(frames=_frame_seq(frames))


@rpc("/job.JobInterface/GetLayers")
def get_layers(farm: Farm, request: job_pb2.JobGetLayersRequest) -> Message:
    """A job's layers in dispatch order."""
    job = _job(farm, request.job)
    layers = [messages.layer(layer) for layer in _layers(job)]
    return job_pb2.JobGetLayersResponse(layers=job_pb2.LayerSeq(layers=layers))


@rpc("/job.JobInterface/GetComments")
def get_job_comments(farm: Farm, request: job_pb2.JobGetCommentsRequest) -> Message:
    """A job's comments."""
    job = _job(farm, request.job)
    return job_pb2.JobGetCommentsResponse(comments=_comment_seq(job.comments))


@rpc("/job.JobInterface/AddComment")
def add_job_comment(farm: Farm, request: job_pb2.JobAddCommentRequest) -> Message:
    """Comment on a job."""
    job = _job(farm, request.job)
    new = request.new_comment
    farm.add_comment(job, new.user, new.subject, new.message)
    return job_pb2.JobAddCommentResponse()


@rpc("/job.JobInterface/Pause")
def pause(farm: Farm, request: job_pb2.JobPauseRequest) -> Message:
    """Pause a job."""
    farm.set_paused(_job(farm, request.job), True)
    return job_pb2.JobPauseResponse()


@rpc("/job.JobInterface/Resume")
def resume(farm: Farm, request: job_pb2.JobResumeRequest) -> Message:
    """Resume a paused job."""
    farm.set_paused(_job(farm, request.job), False)
    return job_pb2.JobResumeResponse()


@rpc("/job.JobInterface/Kill")
def kill_job(farm: Farm, request: job_pb2.JobKillRequest) -> Message:
    """Kill a job; like Cuebot, a kill without a reason is accepted and ignored."""
    farm.kill_job(_job(farm, request.job), request.reason)
    return job_pb2.JobKillResponse()


@rpc("/job.JobInterface/EatFrames")
def eat_job_frames(farm: Farm, request: job_pb2.JobEatFramesRequest) -> Message:
    """Eat every frame of a job matching the criteria (paging ignored, as in Cuebot)."""
    job = _job(farm, request.job)
    farm.eat_frames(search.matching_frames(_layers(job), request.req))
    return job_pb2.JobEatFramesResponse()


@rpc("/job.JobInterface/RetryFrames")
def retry_job_frames(farm: Farm, request: job_pb2.JobRetryFramesRequest) -> Message:
    """Retry every frame of a job matching the criteria (paging ignored, as in Cuebot)."""
    job = _job(farm, request.job)
    farm.retry_frames(search.matching_frames(_layers(job), request.req))
    return job_pb2.JobRetryFramesResponse()


@rpc("/job.JobInterface/KillFrames")
def kill_job_frames(farm: Farm, request: job_pb2.JobKillFramesRequest) -> Message:
    """Kill the running frames of a job matching the criteria (state filter ignored)."""
    job = _job(farm, request.job)
    criteria = job_pb2.FrameSearchCriteria()
    criteria.CopyFrom(request.req)
    criteria.ClearField("states")
    farm.kill_frames(search.matching_frames(_layers(job), criteria))
    return job_pb2.JobKillFramesResponse()


@rpc("/job.JobInterface/GetUpdatedFrames")
def get_updated_frames(farm: Farm, request: job_pb2.JobGetUpdatedFramesRequest) -> Message:
    """Frames of a job changed since ``last_check``, with the job's state."""
    job = _job(farm, request.job)
    layer_ids = [layer.id for layer in request.layer_filter.layers]
    frames = farm.updated_frames(job, request.last_check, layer_ids)
    return job_pb2.JobGetUpdatedFramesResponse(
        state=job.state,
        server_time=farm.now() - 1,
        updated_frames=job_pb2.UpdatedFrameSeq(
            updated_frames=[messages.updated_frame(frame) for frame in frames]
        ),
    )


# -- job.FrameInterface ---------------------------------------------------------


@rpc("/job.FrameInterface/GetFrame")
def get_frame(farm: Farm, request: job_pb2.FrameGetFrameRequest) -> Message:
    """A frame by id."""
    with not_found():
        frame = farm.frame(request.id)
    return job_pb2.FrameGetFrameResponse(frame=messages.frame(frame))


@rpc("/job.FrameInterface/FindFrame")
def find_frame(farm: Farm, request: job_pb2.FrameFindFrameRequest) -> Message:
    """A frame of a pending job by job name, layer name and number."""
    with not_found():
        frame = farm.find_frame(request.job, request.layer, request.frame)
    return job_pb2.FrameFindFrameResponse(frame=messages.frame(frame))


@rpc("/job.FrameInterface/GetFrames")
def get_frames_by_job_name(farm: Farm, request: job_pb2.FrameGetFramesRequest) -> Message:
    """One page of the frames of a pending job, named, matching the criteria."""
    frames = search.frame_page(_layers(farm.find_job(request.job)), request.r)
    return job_pb2.FrameGetFramesResponse(frames=_frame_seq(frames))


@rpc("/job.FrameInterface/Eat")
def eat_frame(farm: Farm, request: job_pb2.FrameEatRequest) -> Message:
    """Eat one frame."""
    farm.eat_frames([farm.frame(request.frame.id)])
    return job_pb2.FrameEatResponse()


@rpc("/job.FrameInterface/Retry")
def retry_frame(farm: Farm, request: job_pb2.FrameRetryRequest) -> Message:
    """Retry one frame."""
    farm.retry_frames([farm.frame(request.frame.id)])
    return job_pb2.FrameRetryResponse()


@rpc("/job.FrameInterface/Kill")
def kill_frame(farm: Farm, request: job_pb2.FrameKillRequest) -> Message:
    """Kill one frame if it is running."""
    farm.kill_frames([farm.frame(request.frame.id)])
    return job_pb2.FrameKillResponse()


# -- job.LayerInterface ---------------------------------------------------------


@rpc("/job.LayerInterface/GetLayer")
def get_layer(farm: Farm, request: job_pb2.LayerGetLayerRequest) -> Message:
    """A layer by id."""
    with not_found():
        layer = farm.layer(request.id)
    return job_pb2.LayerGetLayerResponse(layer=messages.layer(layer))


@rpc("/job.LayerInterface/FindLayer")
def find_layer(farm: Farm, request: job_pb2.LayerFindLayerRequest) -> Message:
    """A layer of a pending job by job and layer names."""
    with not_found():
        layer = farm.find_layer(request.job, request.layer)
    return job_pb2.LayerFindLayerResponse(layer=messages.layer(layer))


@rpc("/job.LayerInterface/GetFrames")
def get_layer_frames(farm: Farm, request: job_pb2.LayerGetFramesRequest) -> Message:
    """One page of a layer's frames matching the criteria."""
    layer = farm.layer(request.layer.id)
    return job_pb2.LayerGetFramesResponse(frames=_frame_seq(search.frame_page([layer], request.s)))


@rpc("/job.LayerInterface/EatFrames")
def eat_layer_frames(farm: Farm, request: job_pb2.LayerEatFramesRequest) -> Message:
    """Eat every frame of a layer."""
    farm.eat_frames(farm.layer(request.layer.id).frames)
    return job_pb2.LayerEatFramesResponse()


@rpc("/job.LayerInterface/RetryFrames")
def retry_layer_frames(farm: Farm, request: job_pb2.LayerRetryFramesRequest) -> Message:
    """Retry every frame of a layer."""
    farm.retry_frames(farm.layer(request.layer.id).frames)
    return job_pb2.LayerRetryFramesResponse()


@rpc("/job.LayerInterface/KillFrames")
def kill_layer_frames(farm: Farm, request: job_pb2.LayerKillFramesRequest) -> Message:
    """Kill the running frames of a layer."""
    farm.kill_frames(farm.layer(request.layer.id).frames)
    return job_pb2.LayerKillFramesResponse()


# -- job.GroupInterface ---------------------------------------------------------


@rpc("/job.GroupInterface/GetGroup")
def get_group(farm: Farm, request: job_pb2.GroupGetGroupRequest) -> Message:
    """A group by id."""
    with not_found():
        group = farm.group(request.id)
    return job_pb2.GroupGetGroupResponse(group=messages.group(group))


@rpc("/job.GroupInterface/FindGroup")
def find_group(farm: Farm, request: job_pb2.GroupFindGroupRequest) -> Message:
    """A group by show name and group name."""
    with not_found():
        group = farm.find_group(request.show, request.name)
    return job_pb2.GroupFindGroupResponse(group=messages.group(group))


@rpc("/job.GroupInterface/GetJobs")
def get_group_jobs(farm: Farm, request: job_pb2.GroupGetJobsRequest) -> Message:
    """A group's pending jobs."""
    group = farm.group(request.group.id)
    return job_pb2.GroupGetJobsResponse(
        jobs=_job_seq(_pending_jobs_by_name(list(group.jobs.values())))
    )


@rpc("/job.GroupInterface/SetMinCores")
def set_group_min_cores(farm: Farm, request: job_pb2.GroupSetMinCoresRequest) -> Message:
    """Set a group's minimum cores."""
    farm.set_group_min_cores(farm.group(request.group.id), request.min_cores)
    return job_pb2.GroupSetMinCoresResponse()


@rpc("/job.GroupInterface/SetMaxCores")
def set_group_max_cores(farm: Farm, request: job_pb2.GroupSetMaxCoresRequest) -> Message:
    """Set a group's maximum cores."""
    farm.set_group_max_cores(farm.group(request.group.id), request.max_cores)
    return job_pb2.GroupSetMaxCoresResponse()


# -- host.HostInterface ---------------------------------------------------------


@rpc("/host.HostInterface/GetHosts")
def get_hosts(farm: Farm, request: host_pb2.HostGetHostsRequest) -> Message:
    """Hosts matching a HostSearchCriteria."""
    hosts = [messages.host(host) for host in search.match_hosts(farm.hosts(), request.r)]
    return host_pb2.HostGetHostsResponse(hosts=host_pb2.HostSeq(hosts=hosts))


@rpc("/host.HostInterface/FindHost")
def find_host(farm: Farm, request: host_pb2.HostFindHostRequest) -> Message:
    """A host by name."""
    with not_found():
        host = farm.find_host(request.name)
    return host_pb2.HostFindHostResponse(host=messages.host(host))


@rpc("/host.HostInterface/GetHost")
def get_host(farm: Farm, request: host_pb2.HostGetHostRequest) -> Message:
    """A host by id."""
    with not_found():
        host = farm.host(request.id)
    return host_pb2.HostGetHostResponse(host=messages.host(host))


@rpc("/host.HostInterface/Lock")
def lock_host(farm: Farm, request: host_pb2.HostLockRequest) -> Message:
    """Lock a host so nothing new is booked on it."""
    farm.set_lock_state(farm.host(request.host.id), host_pb2.LOCKED)
    return host_pb2.HostLockResponse()


@rpc("/host.HostInterface/Unlock")
def unlock_host(farm: Farm, request: host_pb2.HostUnlockRequest) -> Message:
    """Open a host for booking again."""
    farm.set_lock_state(farm.host(request.host.id), host_pb2.OPEN)
    return host_pb2.HostUnlockResponse()


@rpc("/host.HostInterface/GetComments")
def get_host_comments(farm: Farm, request: host_pb2.HostGetCommentsRequest) -> Message:
    """A host's comments."""
    host = farm.host(request.host.id)
    return host_pb2.HostGetCommentsResponse(comments=_comment_seq(host.comments))


@rpc("/host.HostInterface/AddComment")
def add_host_comment(farm: Farm, request: host_pb2.HostAddCommentRequest) -> Message:
    """Comment on a host."""
    host = farm.host(request.host.id)
    new = request.new_comment
    farm.add_comment(host, new.user, new.subject, new.message)
    return host_pb2.HostAddCommentResponse()


@rpc("/host.HostInterface/GetProcs")
def get_host_procs(farm: Farm, request: host_pb2.HostGetProcsRequest) -> Message:
    """The procs booked on a host."""
    host = farm.host(request.host.id)
    procs = sorted(host.procs.values(), key=lambda proc: proc.booked_time)
    return host_pb2.HostGetProcsResponse(
        procs=host_pb2.ProcSeq(procs=[messages.proc(proc) for proc in procs])
    )


@rpc("/host.HostInterface/GetDeed")
def get_host_deed(farm: Farm, request: host_pb2.HostGetDeedRequest) -> Message:
    """The deed on a host."""
    deed = farm.deed_of(farm.host(request.host.id))
    return host_pb2.HostGetDeedResponse(deed=messages.deed(deed))


@rpc("/host.HostInterface/GetOwner")
def get_host_owner(farm: Farm, request: host_pb2.HostGetOwnerRequest) -> Message:
    """The owner of a host."""
    deed = farm.deed_of(farm.host(request.host.id))
    return host_pb2.HostGetOwnerResponse(owner=messages.owner(deed.owner))


# -- host.OwnerInterface --------------------------------------------------------


@rpc("/host.OwnerInterface/GetOwner")
def get_owner(farm: Farm, request: host_pb2.OwnerGetOwnerRequest) -> Message:
    """An owner by user name or id."""
    with not_found():
        owner = farm.find_owner(request.name)
    return host_pb2.OwnerGetOwnerResponse(owner=messages.owner(owner))


@rpc("/host.OwnerInterface/GetDeeds")
def get_owner_deeds(farm: Farm, request: host_pb2.OwnerGetDeedsRequest) -> Message:
    """An owner's deeds."""
    owner = farm.owner(request.owner.id)
    deeds = [messages.deed(deed) for deed in owner.deeds.values()]
    return host_pb2.OwnerGetDeedsResponse(deeds=host_pb2.DeedSeq(deeds=deeds))


@rpc("/host.OwnerInterface/GetHosts")
def get_owner_hosts(farm: Farm, request: host_pb2.OwnerGetHostsRequest) -> Message:
    """The hosts an owner holds deeds on."""
    owner = farm.owner(request.owner.id)
    hosts = [messages.host(deed.host) for deed in owner.deeds.values()]
    return host_pb2.OwnerGetHostsResponse(hosts=host_pb2.HostSeq(hosts=hosts))


@rpc("/host.OwnerInterface/TakeOwnership")
def take_ownership(farm: Farm, request: host_pb2.OwnerTakeOwnershipRequest) -> Message:
    """Give a host, by name, to an owner."""
    farm.take_ownership(farm.owner(request.owner.id), request.host)
    return host_pb2.OwnerTakeOwnershipResponse()


# -- host.ProcInterface ---------------------------------------------------------


@rpc("/host.ProcInterface/GetProcs")
def get_procs(farm: Farm, request: host_pb2.ProcGetProcsRequest) -> Message:
    """Procs matching a ProcSearchCriteria."""
    procs = [messages.proc(proc) for proc in search.match_procs(farm.procs(), request.r)]
    return host_pb2.ProcGetProcsResponse(procs=host_pb2.ProcSeq(procs=procs))


@rpc("/host.ProcInterface/Kill")
def kill_proc(farm: Farm, request: host_pb2.ProcKillRequest) -> Message:
    """Kill a proc."""
    farm.kill_proc(farm.proc(request.proc.id))
    return host_pb2.ProcKillResponse()


@rpc("/host.ProcInterface/Unbook")
def unbook_proc(farm: Farm, request: host_pb2.ProcUnbookRequest) -> Message:
    """Unbook a proc, killing it at once when asked."""
    farm.unbook_proc(farm.proc(request.proc.id), request.kill)
    return host_pb2.ProcUnbookResponse()


# -- host.DeedInterface ---------------------------------------------------------


@rpc("/host.DeedInterface/GetOwner")
def get_deed_owner(farm: Farm, request: host_pb2.DeedGetOwnerRequest) -> Message:
    """The owner a deed names."""
    return host_pb2.DeedGetOwnerResponse(owner=messages.owner(farm.deed(request.deed.id).owner))


@rpc("/host.DeedInterface/GetHost")
def get_deed_host(farm: Farm, request: host_pb2.DeedGetHostRequest) -> Message:
    """The host a deed covers.

    Cuebot looks the host up by the deed's id, so it never finds one; the
    sandbox answers with the deed's host.
    """
    return host_pb2.DeedGetHostResponse(host=messages.host(farm.deed(request.deed.id).host))
