"""``host.ProcInterface``: the slices of hosts booked on jobs.

Unbooking marks a proc to leave once its frame ends (with ``kill``, once RQD
reports the kill, see ``Farm.kill_proc``); redirecting marks it to go to
another job or group afterwards.  ManageProc catches lookup failures only in
GetJob; elsewhere an unknown proc escapes (NOT_FOUND here, see
:func:`errors.uncaught`).
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import host_pb2

from opencue_gateway.sandbox import errors, messages, search
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Frame, Proc
from opencue_gateway.sandbox.rpc_host import procs_by_booking, redirect
from opencue_gateway.sandbox.rpc_registry import proc_seq, rpc


def _proc(farm: Farm, message: host_pb2.Proc) -> Proc:
    """The proc a Proc message names by id."""
    return farm.proc(message.id)


def _frame_of(proc: Proc) -> Frame:
    """The frame a proc runs; none is Cuebot's "no row" failure."""
    if proc.frame is None:
        raise errors.EmptyResultError()
    return proc.frame


def _matching(farm: Farm, criteria: host_pb2.ProcSearchCriteria) -> list[Proc]:
    """Procs matching a ProcSearchCriteria, by booking time (what unbooking acts on)."""
    return procs_by_booking(search.match_procs(farm.procs(), criteria, farm.now()))


def _redirect(farm: Farm, proc: Proc, target: str, kill: bool) -> bool:
    """Redirect one proc, killing it now when asked so that it leaves at once.

    Every ProcInterface redirect, of one proc or of all matching procs, does
    this; the answer is Cuebot's redirect result, which is always True here.
    """
    redirect(farm, proc, target)
    if kill:
        farm.kill_proc(proc)
    return True


def _redirect_matching(
    farm: Farm, criteria: host_pb2.ProcSearchCriteria, target: str, kill: bool
) -> int:
    """Redirect the matching procs to ``target``; ``max_results`` must bound them."""
    if not criteria.max_results:
        raise errors.unbook_needs_count()
    procs = _matching(farm, criteria)
    for proc in procs:
        _redirect(farm, proc, target, kill)
    return len(procs)


@rpc("/host.ProcInterface/GetProcs")
def get_procs(farm: Farm, request: host_pb2.ProcGetProcsRequest) -> Message:
    """Procs matching a ProcSearchCriteria."""
    procs = search.match_procs(farm.procs(), request.r, farm.now())
    return host_pb2.ProcGetProcsResponse(procs=proc_seq(procs))


@rpc("/host.ProcInterface/GetFrame")
def get_proc_frame(farm: Farm, request: host_pb2.ProcGetFrameRequest) -> Message:
    """The frame a proc runs."""
    return host_pb2.ProcGetFrameResponse(frame=messages.frame(_frame_of(_proc(farm, request.proc))))


@rpc("/host.ProcInterface/GetHost")
def get_proc_host(farm: Farm, request: host_pb2.ProcGetHostRequest) -> Message:
    """The host a proc is on."""
    return host_pb2.ProcGetHostResponse(host=messages.host(_proc(farm, request.proc).host))


@rpc("/host.ProcInterface/GetJob")
def get_proc_job(farm: Farm, request: host_pb2.ProcGetJobRequest) -> Message:
    """The job a proc is booked on."""
    with not_found():
        proc = _proc(farm, request.proc)
    return host_pb2.ProcGetJobResponse(job=messages.job(proc.job))


@rpc("/host.ProcInterface/GetLayer")
def get_proc_layer(farm: Farm, request: host_pb2.ProcGetLayerRequest) -> Message:
    """The layer of the frame a proc runs."""
    return host_pb2.ProcGetLayerResponse(
        layer=messages.layer(_frame_of(_proc(farm, request.proc)).layer)
    )


@rpc("/host.ProcInterface/Kill")
def kill_proc(farm: Farm, request: host_pb2.ProcKillRequest) -> Message:
    """Kill a proc."""
    farm.kill_proc(_proc(farm, request.proc))
    return host_pb2.ProcKillResponse()


@rpc("/host.ProcInterface/Unbook")
def unbook_proc(farm: Farm, request: host_pb2.ProcUnbookRequest) -> Message:
    """Unbook a proc, killing it at once when asked."""
    farm.unbook_proc(_proc(farm, request.proc), request.kill)
    return host_pb2.ProcUnbookResponse()


@rpc("/host.ProcInterface/UnbookProcs")
def unbook_procs(farm: Farm, request: host_pb2.ProcUnbookProcsRequest) -> Message:
    """Unbook every proc matching the criteria and say how many."""
    procs = _matching(farm, request.r)
    for proc in procs:
        farm.unbook_proc(proc, request.kill)
    return host_pb2.ProcUnbookProcsResponse(num_procs=len(procs))


@rpc("/host.ProcInterface/UnbookToJob")
def unbook_to_job(farm: Farm, request: host_pb2.ProcUnbookToJobRequest) -> Message:
    """Send matching procs to the first of some jobs once their frames end."""
    jobs = [farm.job(job.id) for job in request.jobs.jobs]
    count = _redirect_matching(farm, request.r, jobs[0].name, request.kill) if jobs else 0
    return host_pb2.ProcUnbookToJobResponse(num_procs=count)


@rpc("/host.ProcInterface/UnbookToGroup")
def unbook_to_group(farm: Farm, request: host_pb2.ProcUnbookToGroupRequest) -> Message:
    """Send matching procs to a group once their frames end."""
    group = farm.group(request.group.id)
    count = _redirect_matching(farm, request.r, group.name, request.kill)
    return host_pb2.ProcUnbookToGroupResponse(num_procs=count)


@rpc("/host.ProcInterface/RedirectToJob")
def redirect_to_job(farm: Farm, request: host_pb2.ProcRedirectToJobRequest) -> Message:
    """Send a proc to a job once its frame ends (at once with ``kill``)."""
    proc, job = _proc(farm, request.proc), farm.job(request.job_id)
    value = _redirect(farm, proc, job.name, request.kill)
    return host_pb2.ProcRedirectToJobResponse(value=value)


@rpc("/host.ProcInterface/RedirectToGroup")
def redirect_to_group(farm: Farm, request: host_pb2.ProcRedirectToGroupRequest) -> Message:
    """Send a proc to a group once its frame ends (at once with ``kill``)."""
    proc, group = _proc(farm, request.proc), farm.group(request.group_id)
    value = _redirect(farm, proc, group.name, request.kill)
    return host_pb2.ProcRedirectToGroupResponse(value=value)


@rpc("/host.ProcInterface/ClearRedirect")
def clear_redirect(farm: Farm, request: host_pb2.ProcClearRedirectRequest) -> Message:
    """Keep a proc where it is after all."""
    return host_pb2.ProcClearRedirectResponse(value=farm.keep_proc(_proc(farm, request.proc)))
