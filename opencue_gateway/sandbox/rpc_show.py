"""``show.ShowInterface``: shows, their groups, jobs, filters, subscriptions and settings.

Show lookups by id are not caught by ManageShow, so an unknown id escapes as
the lookup's exception (NOT_FOUND here, see :func:`errors.uncaught`).  Core
settings are stored in whole cores, as ``Convert.coresToWholeCoreUnits`` does.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import department_pb2, host_pb2, job_pb2, service_pb2, show_pb2

from opencue_gateway.sandbox import errors, messages
from opencue_gateway.sandbox.admin_records import (
    Allocation,
    Department,
    Filter,
    Service,
    Subscription,
)
from opencue_gateway.sandbox.errors import not_found, show_not_created
from opencue_gateway.sandbox.farm import Farm, java_int, whole_cores
from opencue_gateway.sandbox.records import Group, Owner, Show
from opencue_gateway.sandbox.rpc_facility import subscription_message, subscription_seq
from opencue_gateway.sandbox.rpc_filters import filter_seq, renumber
from opencue_gateway.sandbox.rpc_registry import job_seq, pending_jobs_by_name, rpc


def _show(farm: Farm, message: show_pb2.Show) -> Show:
    """The show a Show message names by id."""
    return farm.show(message.id)


def groups_in_order(groups: list[Group]) -> list[Group]:
    """Groups by level, then name, as Cuebot lists a show's groups."""
    return sorted(groups, key=lambda group: (group.level, group.name))


def children_of(group: Group) -> list[Group]:
    """The groups directly under ``group``, in the show's order (groups know only their parent)."""
    return [g for g in group.show.groups.values() if g.parent is group]


def overrides_of(farm: Farm, show: Show) -> list[Service]:
    """A show's service overrides, by name."""
    return sorted(
        (s for s in farm.all(Service) if s.show is show), key=lambda service: service.name
    )


def departments_of(farm: Farm, show: Show) -> list[Department]:
    """A show's department configurations, by name."""
    return sorted(
        (d for d in farm.all(Department) if d.show is show), key=lambda dept: dept.name
    )


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
    groups = groups_in_order(list(_show(farm, request.show).groups.values()))
    return show_pb2.ShowGetGroupsResponse(
        groups=job_pb2.GroupSeq(groups=[messages.group(group) for group in groups])
    )


@rpc("/show.ShowInterface/GetRootGroup")
def get_root_group(farm: Farm, request: show_pb2.ShowGetRootGroupRequest) -> Message:
    """A show's root group."""
    return show_pb2.ShowGetRootGroupResponse(group=messages.group(_show(farm, request.show).root))


@rpc("/show.ShowInterface/GetJobs")
def get_show_jobs(farm: Farm, request: show_pb2.ShowGetJobsRequest) -> Message:
    """A show's pending jobs."""
    show = _show(farm, request.show)
    return show_pb2.ShowGetJobsResponse(jobs=job_seq(pending_jobs_by_name(show.jobs.values())))


@rpc("/show.ShowInterface/GetJobWhiteboard")
def get_job_whiteboard(farm: Farm, request: show_pb2.ShowGetJobWhiteboardRequest) -> Message:
    """The show's group tree, each group with its pending jobs inline."""
    show = _show(farm, request.show)

    def nested(group: Group) -> job_pb2.NestedGroup:
        """One group and, recursively, its sub groups."""
        flat = messages.group(group)
        jobs = pending_jobs_by_name(group.jobs.values())
        children = children_of(group)
        return job_pb2.NestedGroup(
            id=flat.id, name=flat.name, department=flat.department,
            default_job_priority=flat.default_job_priority,
            default_job_min_cores=flat.default_job_min_cores,
            default_job_max_cores=flat.default_job_max_cores,
            min_cores=flat.min_cores, max_cores=flat.max_cores, level=flat.level,
            groups=job_pb2.NestedGroupSeq(
                nested_groups=[nested(g) for g in groups_in_order(children)]
            ),
            jobs=[job.id for job in jobs], stats=flat.group_stats,
            inline_jobs=[messages.job(job) for job in jobs],
        )

    return show_pb2.ShowGetJobWhiteboardResponse(whiteboard=nested(show.root))


@rpc("/show.ShowInterface/GetFilters")
def get_filters(farm: Farm, request: show_pb2.ShowGetFiltersRequest) -> Message:
    """A show's filters in order."""
    show = _show(farm, request.show)
    return show_pb2.ShowGetFiltersResponse(
        filters=filter_seq([f for f in farm.all(Filter) if f.show is show])
    )


@rpc("/show.ShowInterface/FindFilter")
def find_show_filter(farm: Farm, request: show_pb2.ShowFindFilterRequest) -> Message:
    """A show's filter by name."""
    show = _show(farm, request.show)
    found = farm.named(Filter, request.name, lambda f: f.show is show)
    return show_pb2.ShowFindFilterResponse(filter=messages.filter_(found))


@rpc("/show.ShowInterface/CreateFilter")
def create_filter(farm: Farm, request: show_pb2.ShowCreateFilterRequest) -> Message:
    """Create an enabled MATCH_ALL filter, ordered last."""
    show = _show(farm, request.show)
    created = farm.register(Filter(id=farm.new_id(), name=request.name, show=show, order=1e9))
    renumber(farm, show)
    return show_pb2.ShowCreateFilterResponse(filter=messages.filter_(created))


@rpc("/show.ShowInterface/GetSubscriptions")
def get_subscriptions(farm: Farm, request: show_pb2.ShowGetSubscriptionRequest) -> Message:
    """A show's subscriptions."""
    show = _show(farm, request.show)
    subs = [s for s in farm.all(Subscription) if s.show is show]
    return show_pb2.ShowGetSubscriptionResponse(subscriptions=subscription_seq(farm, subs))


@rpc("/show.ShowInterface/CreateSubscription")
def create_subscription(farm: Farm, request: show_pb2.ShowCreateSubscriptionRequest) -> Message:
    """Subscribe a show to an allocation; size and burst arrive in cores."""
    show = _show(farm, request.show)
    allocation = farm.get(Allocation, request.allocation_id)
    if any(s.show is show and s.allocation is allocation for s in farm.all(Subscription)):
        raise errors.duplicate("subscription", f"{allocation.name}.{show.name}")
    sub = farm.register(Subscription(
        id=farm.new_id(), show=show, allocation=allocation,
        size=java_int(request.size * 100), burst=java_int(request.burst * 100),
    ))
    return show_pb2.ShowCreateSubscriptionResponse(subscription=subscription_message(farm, sub))


@rpc("/show.ShowInterface/GetServiceOverrides")
def get_service_overrides(farm: Farm, request: show_pb2.ShowGetServiceOverridesRequest) -> Message:
    """A show's service overrides."""
    overrides = overrides_of(farm, _show(farm, request.show))
    return show_pb2.ShowGetServiceOverridesResponse(
        service_overrides=service_pb2.ServiceOverrideSeq(
            service_overrides=[messages.service_override(s) for s in overrides]
        )
    )


@rpc("/show.ShowInterface/GetServiceOverride")
def get_service_override(farm: Farm, request: show_pb2.ShowGetServiceOverrideRequest) -> Message:
    """A show's override of one service, by service name."""
    show = _show(farm, request.show)
    override = farm.named(Service, request.name, lambda s: s.show is show)
    return show_pb2.ShowGetServiceOverrideResponse(
        service_override=messages.service_override(override)
    )


@rpc("/show.ShowInterface/CreateServiceOverride")
def create_service_override(
    farm: Farm, request: show_pb2.ShowCreateServiceOverrideRequest
) -> Message:
    """Override a service's settings for one show."""
    show = _show(farm, request.show)
    data = request.service
    if any(s.name == data.name for s in overrides_of(farm, show)):
        raise errors.duplicate("service override", data.name)
    override = farm.register(Service(
        id=farm.new_id(), name=data.name, threadable=data.threadable,
        min_cores=data.min_cores, max_cores=data.max_cores, min_memory=data.min_memory,
        min_gpu_memory=data.min_gpu_memory, tags=list(data.tags), min_gpus=data.min_gpus,
        max_gpus=data.max_gpus, min_memory_increase=data.min_memory_increase, show=show,
    ))
    return show_pb2.ShowCreateServiceOverrideResponse(
        service_override=messages.service_override(override)
    )


@rpc("/show.ShowInterface/GetDepartments")
def get_departments(farm: Farm, request: show_pb2.ShowGetDepartmentsRequest) -> Message:
    """The departments a show's groups use."""
    departments = departments_of(farm, _show(farm, request.show))
    return show_pb2.ShowGetDepartmentsResponse(
        departments=department_pb2.DepartmentSeq(
            departments=[messages.department(d) for d in departments]
        )
    )


@rpc("/show.ShowInterface/GetDepartment")
def get_department(farm: Farm, request: show_pb2.ShowGetDepartmentRequest) -> Message:
    """A show's configuration of one department, by department name."""
    show = _show(farm, request.show)
    department = farm.named(Department, request.department, lambda d: d.show is show)
    return show_pb2.ShowGetDepartmentResponse(department=messages.department(department))


@rpc("/show.ShowInterface/GetDeeds")
def get_show_deeds(farm: Farm, request: show_pb2.ShowGetDeedsRequest) -> Message:
    """The deeds of the show's owners."""
    show = _show(farm, request.show)
    deeds = [
        messages.deed(deed) for owner in farm.owners() if owner.show is show
        for deed in owner.deeds.values()
    ]
    return show_pb2.ShowGetDeedsResponse(deeds=host_pb2.DeedSeq(deeds=deeds))


@rpc("/show.ShowInterface/CreateOwner")
def create_owner(farm: Farm, request: show_pb2.ShowCreateOwnerRequest) -> Message:
    """Create an owner (a desktop user) for a show."""
    show = _show(farm, request.show)
    if any(owner.name == request.name for owner in farm.owners()):
        raise errors.duplicate("owner", request.name)
    owner = farm.add_owner(Owner(id=farm.new_id(), name=request.name, show=show))
    return show_pb2.ShowCreateOwnerResponse(owner=messages.owner(owner))


@rpc("/show.ShowInterface/EnableBooking")
def enable_booking(farm: Farm, request: show_pb2.ShowEnableBookingRequest) -> Message:
    """Let the show's jobs be booked on new hosts, or not."""
    _show(farm, request.show).booking_enabled = request.enabled
    return show_pb2.ShowEnableBookingResponse()


@rpc("/show.ShowInterface/EnableDispatching")
def enable_dispatching(farm: Farm, request: show_pb2.ShowEnableDispatchingRequest) -> Message:
    """Let the show's frames be dispatched, or not."""
    _show(farm, request.show).dispatch_enabled = request.enabled
    return show_pb2.ShowEnableDispatchingResponse()


@rpc("/show.ShowInterface/SetActive")
def set_active(farm: Farm, request: show_pb2.ShowSetActiveRequest) -> Message:
    """Mark a show active or not."""
    _show(farm, request.show).active = request.value
    return show_pb2.ShowSetActiveResponse()


@rpc("/show.ShowInterface/SetSchedulerManaged")
def set_scheduler_managed(farm: Farm, request: show_pb2.ShowSetSchedulerManagedRequest) -> Message:
    """Hand the show to the external scheduler, or take it back."""
    _show(farm, request.show).scheduler_managed = request.enabled
    return show_pb2.ShowSetSchedulerManagedResponse()


@rpc("/show.ShowInterface/SetCommentEmail")
def set_comment_email(farm: Farm, request: show_pb2.ShowSetCommentEmailRequest) -> Message:
    """Set the addresses told of new comments (comma-separated, as Cuebot splits them)."""
    _show(farm, request.show).comment_email = ",".join(request.email.split(","))
    return show_pb2.ShowSetCommentEmailResponse()


@rpc("/show.ShowInterface/SetDefaultMinCores")
def set_default_min_cores(farm: Farm, request: show_pb2.ShowSetDefaultMinCoresRequest) -> Message:
    """Set the minimum cores new jobs of the show get."""
    _show(farm, request.show).default_min_cores = whole_cores(request.min_cores)
    return show_pb2.ShowSetDefaultMinCoresResponse()


@rpc("/show.ShowInterface/SetDefaultMaxCores")
def set_default_max_cores(farm: Farm, request: show_pb2.ShowSetDefaultMaxCoresRequest) -> Message:
    """Set the maximum cores new jobs of the show get."""
    _show(farm, request.show).default_max_cores = whole_cores(request.max_cores)
    return show_pb2.ShowSetDefaultMaxCoresResponse()


@rpc("/show.ShowInterface/SetDefaultMinGpus")
def set_default_min_gpus(farm: Farm, request: show_pb2.ShowSetDefaultMinGpusRequest) -> Message:
    """Set the minimum GPUs new jobs of the show get."""
    _show(farm, request.show).default_min_gpus = float(request.min_gpus)
    return show_pb2.ShowSetDefaultMinGpusResponse()


@rpc("/show.ShowInterface/SetDefaultMaxGpus")
def set_default_max_gpus(farm: Farm, request: show_pb2.ShowSetDefaultMaxGpusRequest) -> Message:
    """Set the maximum GPUs new jobs of the show get."""
    _show(farm, request.show).default_max_gpus = float(request.max_gpus)
    return show_pb2.ShowSetDefaultMaxGpusResponse()
