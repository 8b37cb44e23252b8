"""``job.GroupInterface``: a show's tree of job groups and their defaults and limits.

ManageGroup catches lookup failures only in GetGroup and FindGroup; elsewhere
an unknown group escapes (NOT_FOUND here, see :func:`errors.uncaught`).  Core
settings are stored in whole cores, and a job moved into a group takes the
group's job defaults that are set (Cuebot's ``Inherit.All``).
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import job_pb2

from opencue_gateway.sandbox import errors, messages
from opencue_gateway.sandbox.admin_records import Department
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm, whole_cores
from opencue_gateway.sandbox.records import Group, Job
from opencue_gateway.sandbox.rpc_registry import job_seq, pending_jobs_by_name, rpc
from opencue_gateway.sandbox.rpc_show import children_of, groups_in_order


def _group(farm: Farm, message: job_pb2.Group) -> Group:
    """The group a Group message names by id."""
    return farm.group(message.id)


def department_point(farm: Farm, group: Group, name: str) -> Department:
    """The show's configuration of a department, created the first time a group uses it."""
    dept_id = farm.department_names.get(name)
    if dept_id is None:
        raise errors.EmptyResultError()
    try:
        return farm.named(Department, name, lambda d: d.show is group.show)
    except errors.EmptyResultError:
        return farm.register(
            Department(id=farm.new_id(), name=name, dept_id=dept_id, show=group.show)
        )


def inherit(job: Job, group: Group) -> None:
    """Give a job the job defaults its new group sets (-1 means "not set")."""
    if group.default_job_priority >= 0:
        job.priority = group.default_job_priority
    if group.default_job_min_cores >= 0:
        job.min_cores = group.default_job_min_cores
    if group.default_job_max_cores >= 0:
        job.max_cores = group.default_job_max_cores


def _reparent(group: Group, parent: Group) -> None:
    """Move a group under another group of its show, never under itself or its subtree."""
    ancestor: Group | None = parent
    while ancestor is not None:
        if ancestor is group:
            raise errors.EntityError(
                "error moving group, you cannot move a group into one of its children"
            )
        ancestor = ancestor.parent
    if parent.show is not group.show:
        raise errors.EntityError(f"error moving group, {group.name} to another show")
    group.parent = parent


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


@rpc("/job.GroupInterface/GetGroups")
def get_child_groups(farm: Farm, request: job_pb2.GroupGetGroupsRequest) -> Message:
    """The groups directly under a group."""
    group = _group(farm, request.group)
    children = children_of(group)
    return job_pb2.GroupGetGroupsResponse(
        groups=job_pb2.GroupSeq(groups=[messages.group(g) for g in groups_in_order(children)])
    )


@rpc("/job.GroupInterface/GetJobs")
def get_group_jobs(farm: Farm, request: job_pb2.GroupGetJobsRequest) -> Message:
    """A group's pending jobs."""
    group = _group(farm, request.group)
    return job_pb2.GroupGetJobsResponse(jobs=job_seq(pending_jobs_by_name(group.jobs.values())))


@rpc("/job.GroupInterface/CreateSubGroup")
def create_sub_group(farm: Farm, request: job_pb2.GroupCreateSubGroupRequest) -> Message:
    """Create a group under a group, in the parent's department."""
    parent = _group(farm, request.group)
    group = farm.add_group(Group(
        id=farm.new_id(), name=request.name, show=parent.show, department=parent.department,
        parent=parent,
    ))
    return job_pb2.GroupCreateSubGroupResponse(group=messages.group(group))


@rpc("/job.GroupInterface/Delete")
def delete_group(farm: Farm, request: job_pb2.GroupDeleteRequest) -> Message:
    """Delete a group with no sub groups, no pending jobs and not a show's root."""
    group = _group(farm, request.group)
    try:
        if group.parent is None:
            raise errors.EntityRemovalError("cannot delete the root group")
        if children_of(group):
            raise errors.group_has_children(group.name, "groups")
        if group.pending_jobs():
            raise errors.group_has_children(group.name, "jobs")
    except errors.JavaError as error:
        raise errors.group_not_removed() from error
    for job in list(group.jobs.values()):
        farm.set_group(job, group.show.root)
    farm.remove_group(group)
    return job_pb2.GroupDeleteResponse()


@rpc("/job.GroupInterface/ReparentGroups")
def reparent_groups(farm: Farm, request: job_pb2.GroupReparentGroupsRequest) -> Message:
    """Move groups under a group."""
    parent = _group(farm, request.group)
    for message in request.groups.groups:
        _reparent(farm.group(message.id), parent)
    return job_pb2.GroupReparentGroupsResponse()


@rpc("/job.GroupInterface/SetGroup")
def set_parent_group(farm: Farm, request: job_pb2.GroupSetGroupRequest) -> Message:
    """Move a group under another group."""
    _reparent(_group(farm, request.group), farm.group(request.parent_group.id))
    return job_pb2.GroupSetGroupResponse()


@rpc("/job.GroupInterface/ReparentJobs")
def reparent_jobs(farm: Farm, request: job_pb2.GroupReparentJobsRequest) -> Message:
    """Move jobs into a group; they take its job defaults."""
    group = _group(farm, request.group)
    for message in request.jobs.jobs:
        job = farm.job(message.id)
        farm.set_group(job, group)
        inherit(job, group)
    return job_pb2.GroupReparentJobsResponse()


@rpc("/job.GroupInterface/SetName")
def set_group_name(farm: Farm, request: job_pb2.GroupSetNameRequest) -> Message:
    """Rename a group."""
    _group(farm, request.group).name = request.name
    return job_pb2.GroupSetNameResponse()


@rpc("/job.GroupInterface/SetDepartment")
def set_department(farm: Farm, request: job_pb2.GroupSetDeptRequest) -> Message:
    """Put a group in a department (which must exist)."""
    group = _group(farm, request.group)
    group.department = department_point(farm, group, request.dept).name
    return job_pb2.GroupSetDeptResponse()


@rpc("/job.GroupInterface/SetDefaultJobPriority")
def set_default_job_priority(
    farm: Farm, request: job_pb2.GroupSetDefJobPriorityRequest
) -> Message:
    """Set the priority new jobs of the group get."""
    _group(farm, request.group).default_job_priority = request.priority
    return job_pb2.GroupSetDefJobPriorityResponse()


@rpc("/job.GroupInterface/SetDefaultJobMinCores")
def set_default_job_min_cores(
    farm: Farm, request: job_pb2.GroupSetDefJobMinCoresRequest
) -> Message:
    """Set the minimum cores new jobs of the group get."""
    _group(farm, request.group).default_job_min_cores = whole_cores(request.min_cores)
    return job_pb2.GroupSetDefJobMinCoresResponse()


@rpc("/job.GroupInterface/SetDefaultJobMaxCores")
def set_default_job_max_cores(
    farm: Farm, request: job_pb2.GroupSetDefJobMaxCoresRequest
) -> Message:
    """Set the maximum cores new jobs of the group get."""
    _group(farm, request.group).default_job_max_cores = whole_cores(request.max_cores)
    return job_pb2.GroupSetDefJobMaxCoresResponse()


@rpc("/job.GroupInterface/SetDefaultJobMinGpus")
def set_default_job_min_gpus(farm: Farm, request: job_pb2.GroupSetDefJobMinGpusRequest) -> Message:
    """Set the minimum GPUs new jobs of the group get."""
    _group(farm, request.group).default_job_min_gpus = float(request.min_gpus)
    return job_pb2.GroupSetDefJobMinGpusResponse()


@rpc("/job.GroupInterface/SetDefaultJobMaxGpus")
def set_default_job_max_gpus(farm: Farm, request: job_pb2.GroupSetDefJobMaxGpusRequest) -> Message:
    """Set the maximum GPUs new jobs of the group get."""
    _group(farm, request.group).default_job_max_gpus = float(request.max_gpus)
    return job_pb2.GroupSetDefJobMaxGpusResponse()


@rpc("/job.GroupInterface/SetMinCores")
def set_group_min_cores(farm: Farm, request: job_pb2.GroupSetMinCoresRequest) -> Message:
    """Set a group's minimum cores."""
    _group(farm, request.group).min_cores = whole_cores(request.min_cores)
    return job_pb2.GroupSetMinCoresResponse()


@rpc("/job.GroupInterface/SetMaxCores")
def set_group_max_cores(farm: Farm, request: job_pb2.GroupSetMaxCoresRequest) -> Message:
    """Set a group's maximum cores."""
    _group(farm, request.group).max_cores = whole_cores(request.max_cores)
    return job_pb2.GroupSetMaxCoresResponse()


@rpc("/job.GroupInterface/SetMinGpus")
def set_group_min_gpus(farm: Farm, request: job_pb2.GroupSetMinGpusRequest) -> Message:
    """Set a group's minimum GPUs."""
    _group(farm, request.group).min_gpus = float(request.min_gpus)
    return job_pb2.GroupSetMinGpusResponse()


@rpc("/job.GroupInterface/SetMaxGpus")
def set_group_max_gpus(farm: Farm, request: job_pb2.GroupSetMaxGpusRequest) -> Message:
    """Set a group's maximum GPUs."""
    _group(farm, request.group).max_gpus = float(request.max_gpus)
    return job_pb2.GroupSetMaxGpusResponse()
