"""The table of implemented RPCs, and the lookups and renderings handlers share.

Each handler takes the farm and the request message and returns the response
message.  It fails by raising: :class:`~opencue_gateway.sandbox.errors.CuebotError`
for a status the Cuebot servant sends on purpose (wrapping a lookup in
``errors.not_found()`` or ``errors.job_not_found()`` where the servant catches
the lookup's exception), or the farm's Java-like exceptions where Cuebot's
servant lets them escape; the server turns both into the status a Cuebot
client would see.  The server holds ``Farm.lock`` around each call, so
handlers may read and assign record fields directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.message import Message
from opencue_proto import comment_pb2, depend_pb2, host_pb2, job_pb2

from opencue_gateway.sandbox import messages, search
from opencue_gateway.sandbox.depends import Depend, Target
from opencue_gateway.sandbox.errors import job_not_found
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Comment, Frame, Host, Job, Layer, Proc

Handler = Callable[[Farm, Any], Message]
# How a request names the job, layer or frame its depend query is about.
TargetOf = Callable[[Farm, Any], Target]

HANDLERS: dict[str, Handler] = {}


def rpc(path: str) -> Callable[[Handler], Handler]:
    """Register a handler for the method at ``path`` (``/package.Service/Method``)."""

    def register(handler: Handler) -> Handler:
        """Record the handler under its path and return it unchanged."""
        HANDLERS[path] = handler
        return handler

    return register


def job_of(farm: Farm, job: job_pb2.Job) -> Job:
    """The job a ``Job`` message names, failing as ManageJob does ("Job not found")."""
    with job_not_found():
        return farm.job(job.id)


def job_seq(jobs: Iterable[Job]) -> job_pb2.JobSeq:
    """Render jobs as a JobSeq."""
    return job_pb2.JobSeq(jobs=[messages.job(job) for job in jobs])


def frame_seq(frames: Iterable[Frame]) -> job_pb2.FrameSeq:
    """Render frames as a FrameSeq."""
    return job_pb2.FrameSeq(frames=[messages.frame(frame) for frame in frames])


def host_seq(hosts: Iterable[Host]) -> host_pb2.HostSeq:
    """Render hosts as a HostSeq."""
    return host_pb2.HostSeq(hosts=[messages.host(host) for host in hosts])


def proc_seq(procs: Iterable[Proc]) -> host_pb2.ProcSeq:
    """Render procs as a ProcSeq."""
    return host_pb2.ProcSeq(procs=[messages.proc(proc) for proc in procs])


def comment_seq(comments: Iterable[Comment]) -> comment_pb2.CommentSeq:
    """Render comments, oldest first as Cuebot orders them."""
    return comment_pb2.CommentSeq(comments=[messages.comment(c) for c in comments])


def depend_seq(depends: Iterable[Depend]) -> depend_pb2.DependSeq:
    """Render depends as a DependSeq."""
    return depend_pb2.DependSeq(depends=[messages.depend(d) for d in depends])


def depend_queries(
    service: str,
    target_of: TargetOf,
    depends_on_reply: type[Message],
    depended_on_reply: type[Message],
    drop_reply: type[Message],
) -> None:
    """Register GetWhatThisDependsOn, GetWhatDependsOnThis and DropDepends for ``service``.

    Cuebot's JobInterface, LayerInterface and FrameInterface answer these three
    alike, each over its own kind of entity; only how the request names the
    entity (and how a failed lookup is reported, in ``target_of``) and the
    reply types differ.
    """

    @rpc(f"{service}/GetWhatThisDependsOn")
    def depends_on(farm: Farm, request: Any) -> Message:
        """The active depends the entity (or what it holds) waits on."""
        depends = farm.depends.what_this_depends_on(target_of(farm, request))
        return depends_on_reply(depends=depend_seq(depends))

    @rpc(f"{service}/GetWhatDependsOnThis")
    def depended_on(farm: Farm, request: Any) -> Message:
        """The active depends waiting on the entity (or what it holds)."""
        depends = farm.depends.what_depends_on(target_of(farm, request))
        return depended_on_reply(depends=depend_seq(depends))

    @rpc(f"{service}/DropDepends")
    def drop_depends(farm: Farm, request: Any) -> Message:
        """Satisfy the entity's depends on the given target (internal, external or any)."""
        farm.depends.drop(target_of(farm, request), request.target)
        return drop_reply()


def pending_jobs_by_name(jobs: Iterable[Job]) -> list[Job]:
    """Pending jobs sorted by name: what Cuebot lists for a show or a group."""
    return search.match_jobs(jobs, job_pb2.JobSearchCriteria())


def layers_of(job: Job) -> list[Layer]:
    """A job's layers in dispatch order."""
    return sorted(job.layers.values(), key=lambda layer: layer.dispatch_order)


def job_frames(farm: Farm, job: Job, criteria: job_pb2.FrameSearchCriteria) -> Iterable[Frame]:
    """Every frame of a job matching the criteria, paging ignored (what eat/retry act on)."""
    return search.matching_frames(layers_of(job), criteria, farm.now())
