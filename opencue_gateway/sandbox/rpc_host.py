"""``host.HostInterface``, ``host.OwnerInterface`` and ``host.DeedInterface``.

ManageHost catches lookup failures only in GetHost and FindHost, ManageOwner
only in GetOwner; elsewhere an unknown id escapes (NOT_FOUND here, see
:func:`errors.uncaught`).  A host's tags are a set kept in order of addition.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import host_pb2

from opencue_gateway.sandbox import messages, search
from opencue_gateway.sandbox.admin_records import Allocation
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Host, Proc
from opencue_gateway.sandbox.rpc_facility import move_host
from opencue_gateway.sandbox.rpc_registry import comment_seq, host_seq, proc_seq, rpc


def _host(farm: Farm, message: host_pb2.Host) -> Host:
    """The host a Host message names by id."""
    return farm.host(message.id)


def procs_by_booking(procs: list[Proc]) -> list[Proc]:
    """Procs in the order they were booked."""
    return sorted(procs, key=lambda proc: proc.booked_time)


def redirect(farm: Farm, proc: Proc, target: str) -> None:
    """Mark a proc to leave for ``target`` once its frame ends (Cuebot's redirect).

    It cannot fail, so callers answer Cuebot's redirect result themselves.
    """
    farm.unbook_proc(proc, kill=False)
    proc.redirect_target = target


def _nested(flat: Message, nested: Message) -> Message:
    """Copy every set field of a flat message into its nested twin (same field names)."""
    for field, value in flat.ListFields():
        target = getattr(nested, field.name)
        if field.message_type is not None and not field.is_repeated:
            target.CopyFrom(value)
        elif field.is_repeated:
            target.extend(value)
        else:
            setattr(nested, field.name, value)
    return nested


@rpc("/host.HostInterface/GetHosts")
def get_hosts(farm: Farm, request: host_pb2.HostGetHostsRequest) -> Message:
    """Hosts matching a HostSearchCriteria."""
    hosts = search.match_hosts(farm.hosts(), request.r)
    return host_pb2.HostGetHostsResponse(hosts=host_seq(hosts))


@rpc("/host.HostInterface/GetHostWhiteboard")
def get_host_whiteboard(farm: Farm, _request: host_pb2.HostGetHostWhiteboardRequest) -> Message:
    """Every host with its procs nested inside."""
    nested = []
    for host in search.match_hosts(farm.hosts(), host_pb2.HostSearchCriteria()):
        entry = _nested(messages.host(host), host_pb2.NestedHost())
        entry.procs.nested_procs.extend(
            _nested(messages.proc(proc), host_pb2.NestedProc())
            for proc in procs_by_booking(list(host.procs.values()))
        )
        nested.append(entry)
    return host_pb2.HostGetHostWhiteboardResponse(
        nested_hosts=host_pb2.NestedHostSeq(nested_hosts=nested)
    )


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
    _host(farm, request.host).lock_state = host_pb2.LOCKED
    return host_pb2.HostLockResponse()


@rpc("/host.HostInterface/Unlock")
def unlock_host(farm: Farm, request: host_pb2.HostUnlockRequest) -> Message:
    """Open a host for booking again."""
    _host(farm, request.host).lock_state = host_pb2.OPEN
    return host_pb2.HostUnlockResponse()


@rpc("/host.HostInterface/Reboot")
def reboot(farm: Farm, request: host_pb2.HostRebootRequest) -> Message:
    """Reboot a host now: it shows REBOOTING until it reports again."""
    _host(farm, request.host).state = host_pb2.REBOOTING
    return host_pb2.HostRebootResponse()


@rpc("/host.HostInterface/RebootWhenIdle")
def reboot_when_idle(farm: Farm, request: host_pb2.HostRebootWhenIdleRequest) -> Message:
    """Reboot a host once its procs are done; nothing new is booked on it meanwhile."""
    _host(farm, request.host).state = host_pb2.REBOOT_WHEN_IDLE
    return host_pb2.HostRebootWhenIdleResponse()


@rpc("/host.HostInterface/SetHardwareState")
def set_hardware_state(farm: Farm, request: host_pb2.HostSetHardwareStateRequest) -> Message:
    """Set a host's hardware state (UP, DOWN, REPAIR, ...)."""
    _host(farm, request.host).state = request.state
    return host_pb2.HostSetHardwareStateResponse()


@rpc("/host.HostInterface/SetThreadMode")
def set_thread_mode(farm: Farm, request: host_pb2.HostSetThreadModeRequest) -> Message:
    """Set how a host's cores are handed to frames."""
    _host(farm, request.host).thread_mode = request.mode
    return host_pb2.HostSetThreadModeResponse()


@rpc("/host.HostInterface/SetOs")
def set_os(farm: Farm, request: host_pb2.HostSetOsRequest) -> Message:
    """Set the operating system a host reports."""
    _host(farm, request.host).os = request.os
    return host_pb2.HostSetOsResponse()


@rpc("/host.HostInterface/SetAllocation")
def set_allocation(farm: Farm, request: host_pb2.HostSetAllocationRequest) -> Message:
    """Move a host with no procs to another allocation, by allocation id."""
    move_host(_host(farm, request.host), farm.get(Allocation, request.allocation_id))
    return host_pb2.HostSetAllocationResponse()


@rpc("/host.HostInterface/AddTags")
def add_tags(farm: Farm, request: host_pb2.HostAddTagsRequest) -> Message:
    """Add tags to a host."""
    host = _host(farm, request.host)
    host.tags = list(dict.fromkeys([*host.tags, *request.tags]))
    return host_pb2.HostAddTagsResponse()


@rpc("/host.HostInterface/RemoveTags")
def remove_tags(farm: Farm, request: host_pb2.HostRemoveTagsRequest) -> Message:
    """Remove tags from a host."""
    host = _host(farm, request.host)
    removed = set(request.tags)
    host.tags = [tag for tag in host.tags if tag not in removed]
    return host_pb2.HostRemoveTagsResponse()


@rpc("/host.HostInterface/RenameTag")
def rename_tag(farm: Farm, request: host_pb2.HostRenameTagRequest) -> Message:
    """Rename one of a host's tags."""
    host = _host(farm, request.host)
    renamed = [request.new_tag if tag == request.old_tag else tag for tag in host.tags]
    host.tags = list(dict.fromkeys(renamed))
    return host_pb2.HostRenameTagResponse()


@rpc("/host.HostInterface/Delete")
def delete_host(farm: Farm, request: host_pb2.HostDeleteRequest) -> Message:
    """Remove a host from the farm; frames it ran go back to WAITING."""
    farm.delete_host(_host(farm, request.host))
    return host_pb2.HostDeleteResponse()


@rpc("/host.HostInterface/RedirectToJob")
def redirect_host_procs(farm: Farm, request: host_pb2.HostRedirectToJobRequest) -> Message:
    """Send named procs of the host to a job once their frames end."""
    job = farm.job(request.job_id)
    host = _host(farm, request.host)
    names = set(request.proc_names)
    procs = [p for p in host.procs.values() if p.name in names]
    for proc in procs:
        redirect(farm, proc, job.name)
    return host_pb2.HostRedirectToJobResponse(value=bool(procs))


@rpc("/host.HostInterface/GetComments")
def get_host_comments(farm: Farm, request: host_pb2.HostGetCommentsRequest) -> Message:
    """A host's comments."""
    comments = _host(farm, request.host).comments
    return host_pb2.HostGetCommentsResponse(comments=comment_seq(comments))


@rpc("/host.HostInterface/AddComment")
def add_host_comment(farm: Farm, request: host_pb2.HostAddCommentRequest) -> Message:
    """Comment on a host."""
    new = request.new_comment
    farm.add_comment(_host(farm, request.host), new.user, new.subject, new.message)
    return host_pb2.HostAddCommentResponse()


@rpc("/host.HostInterface/GetProcs")
def get_host_procs(farm: Farm, request: host_pb2.HostGetProcsRequest) -> Message:
    """The procs booked on a host."""
    procs = procs_by_booking(list(_host(farm, request.host).procs.values()))
    return host_pb2.HostGetProcsResponse(procs=proc_seq(procs))


@rpc("/host.HostInterface/GetDeed")
def get_host_deed(farm: Farm, request: host_pb2.HostGetDeedRequest) -> Message:
    """The deed on a host."""
    deed = farm.deed_of(_host(farm, request.host))
    return host_pb2.HostGetDeedResponse(deed=messages.deed(deed))


@rpc("/host.HostInterface/GetOwner")
def get_host_owner(farm: Farm, request: host_pb2.HostGetOwnerRequest) -> Message:
    """The owner of a host."""
    deed = farm.deed_of(_host(farm, request.host))
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
    deeds = [messages.deed(deed) for deed in farm.owner(request.owner.id).deeds.values()]
    return host_pb2.OwnerGetDeedsResponse(deeds=host_pb2.DeedSeq(deeds=deeds))


@rpc("/host.OwnerInterface/GetHosts")
def get_owner_hosts(farm: Farm, request: host_pb2.OwnerGetHostsRequest) -> Message:
    """The hosts an owner holds deeds on."""
    deeds = farm.owner(request.owner.id).deeds.values()
    return host_pb2.OwnerGetHostsResponse(hosts=host_seq(deed.host for deed in deeds))


@rpc("/host.OwnerInterface/TakeOwnership")
def take_ownership(farm: Farm, request: host_pb2.OwnerTakeOwnershipRequest) -> Message:
    """Give a host, by name, to an owner."""
    farm.take_ownership(farm.owner(request.owner.id), request.host)
    return host_pb2.OwnerTakeOwnershipResponse()


@rpc("/host.OwnerInterface/SetShow")
def set_owner_show(farm: Farm, request: host_pb2.OwnerSetShowRequest) -> Message:
    """Move an owner to another show, by show name."""
    owner = farm.owner(request.owner.id)
    owner.show = farm.find_show(request.show)
    return host_pb2.OwnerSetShowResponse()


@rpc("/host.OwnerInterface/Delete")
def delete_owner(farm: Farm, request: host_pb2.OwnerDeleteRequest) -> Message:
    """Remove an owner and its deeds."""
    farm.delete_owner(farm.owner(request.owner.id))
    return host_pb2.OwnerDeleteResponse()


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


@rpc("/host.DeedInterface/Delete")
def delete_deed(farm: Farm, request: host_pb2.DeedDeleteRequest) -> Message:
    """Take a host away from its owner."""
    farm.remove_deed(farm.deed(request.deed.id))
    return host_pb2.DeedDeleteResponse()
