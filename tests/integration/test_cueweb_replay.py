"""CueWeb's calls, replayed through the gateway against the sandbox Cuebot.

CUEWEB_ENDPOINTS lists every Cuebot method CueWeb calls: the endpoints of
``cueweb/app/api/**/route.ts`` in the OpenCue repository, plus the
GroupInterface setters its group-update route picks from a table.  The replay
sends one representative call of each, with a body shaped as CueWeb's helpers
build it (snake_case fields, enums by name, entities as ``{"id": ...}``), in an
order where each call finds what it needs (ids made by earlier calls), and
checks the answer: a 2xx whose body has the fields CueWeb reads, or the error
real Cuebot gives for that call.  One gateway serves the whole replay, since
the calls build on each other; every mismatch is reported at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest_twisted

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import SPEC

SHOW = {"id": seed.SHOW_ID}
JOB = {"id": seed.JOB_ID, "name": seed.JOB_NAME}
LAYER = {"id": seed.LAYER_ID, "name": seed.LAYER_NAME}
FRAME = {"id": seed.FRAME_ID, "name": "0001-layer_name"}
GROUP = {"id": seed.GROUP_ID}
HOST = {"id": seed.HOST_ID, "name": seed.HOST_NAME}
PROC = {"id": seed.PROC_ID}
GIB_KB = 1024 * 1024

# Every Cuebot method CueWeb calls (cueweb/app/api/**/route.ts).
CUEWEB_ENDPOINTS = frozenset(f"/{path}" for path in """
comment.CommentInterface/Delete comment.CommentInterface/Save
department.DepartmentInterface/AddTask department.DepartmentInterface/DisableTiManaged
department.DepartmentInterface/EnableTiManaged department.DepartmentInterface/GetDepartmentNames
department.DepartmentInterface/GetTasks department.DepartmentInterface/SetManagedCores
facility.AllocationInterface/GetAll
filter.ActionInterface/Commit filter.ActionInterface/Delete filter.FilterInterface/CreateAction
filter.FilterInterface/CreateMatcher filter.FilterInterface/Delete filter.FilterInterface/GetActions
filter.FilterInterface/GetMatchers filter.FilterInterface/LowerOrder
filter.FilterInterface/OrderFirst filter.FilterInterface/OrderLast
filter.FilterInterface/RaiseOrder filter.FilterInterface/SetEnabled filter.FilterInterface/SetName
filter.FilterInterface/SetOrder filter.FilterInterface/SetType filter.MatcherInterface/Commit
filter.MatcherInterface/Delete
host.HostInterface/AddComment host.HostInterface/AddTags host.HostInterface/Delete
host.HostInterface/FindHost host.HostInterface/GetComments host.HostInterface/GetHosts
host.HostInterface/GetProcs host.HostInterface/Lock host.HostInterface/Reboot
host.HostInterface/RebootWhenIdle host.HostInterface/RedirectToJob
host.HostInterface/RemoveTags host.HostInterface/RenameTag host.HostInterface/SetAllocation
host.HostInterface/SetHardwareState host.HostInterface/Unlock host.OwnerInterface/TakeOwnership
host.ProcInterface/GetProcs host.ProcInterface/Kill host.ProcInterface/Unbook
host.ProcInterface/UnbookProcs
job.FrameInterface/CreateDependencyOnFrame job.FrameInterface/CreateDependencyOnJob
job.FrameInterface/CreateDependencyOnLayer job.FrameInterface/DropDepends job.FrameInterface/Eat
job.FrameInterface/GetFrame job.FrameInterface/GetWhatThisDependsOn job.FrameInterface/Kill
job.FrameInterface/MarkAsWaiting job.FrameInterface/Retry
job.GroupInterface/CreateSubGroup job.GroupInterface/Delete job.GroupInterface/GetJobs
job.GroupInterface/ReparentGroups job.GroupInterface/ReparentJobs
job.GroupInterface/SetName job.GroupInterface/SetDepartment
job.GroupInterface/SetDefaultJobPriority job.GroupInterface/SetDefaultJobMinCores
job.GroupInterface/SetDefaultJobMaxCores job.GroupInterface/SetMinCores
job.GroupInterface/SetMaxCores job.GroupInterface/SetDefaultJobMinGpus
job.GroupInterface/SetDefaultJobMaxGpus job.GroupInterface/SetMinGpus
job.GroupInterface/SetMaxGpus
job.JobInterface/AddComment job.JobInterface/AddRenderPartition job.JobInterface/AddSubscriber
job.JobInterface/CreateDependencyOnFrame job.JobInterface/CreateDependencyOnJob
job.JobInterface/CreateDependencyOnLayer job.JobInterface/DropDepends
job.JobInterface/EatFrames job.JobInterface/GetComments job.JobInterface/GetDepends
job.JobInterface/GetFrames job.JobInterface/GetJob job.JobInterface/GetJobs
job.JobInterface/GetLayers job.JobInterface/GetWhatDependsOnThis job.JobInterface/Kill
job.JobInterface/KillFrames job.JobInterface/LaunchSpecAndWait job.JobInterface/MarkDoneFrames
job.JobInterface/Pause job.JobInterface/ReorderFrames job.JobInterface/Resume
job.JobInterface/RetryFrames job.JobInterface/SetAutoEat job.JobInterface/SetMaxCores
job.JobInterface/SetMaxGpus job.JobInterface/SetMaxRetries job.JobInterface/SetMinCores
job.JobInterface/SetMinGpus job.JobInterface/SetPriority job.JobInterface/StaggerFrames
job.LayerInterface/CreateDependencyOnFrame job.LayerInterface/CreateDependencyOnJob
job.LayerInterface/CreateDependencyOnLayer job.LayerInterface/CreateFrameByFrameDependency
job.LayerInterface/EatFrames job.LayerInterface/GetOutputPaths
job.LayerInterface/GetWhatThisDependsOn job.LayerInterface/KillFrames
job.LayerInterface/MarkdoneFrames job.LayerInterface/ReorderFrames
job.LayerInterface/RetryFrames job.LayerInterface/SetMinCores
job.LayerInterface/SetMinGpuMemory job.LayerInterface/SetMinMemory
job.LayerInterface/SetStartAfter job.LayerInterface/SetTags job.LayerInterface/SetThreadable
job.LayerInterface/StaggerFrames
limit.LimitInterface/Create limit.LimitInterface/Delete limit.LimitInterface/GetAll
limit.LimitInterface/Rename limit.LimitInterface/SetMaxValue
service.ServiceInterface/CreateService service.ServiceInterface/Delete
service.ServiceInterface/GetDefaultServices service.ServiceInterface/Update
service.ServiceOverrideInterface/Delete service.ServiceOverrideInterface/Update
show.ShowInterface/CreateFilter show.ShowInterface/CreateServiceOverride
show.ShowInterface/CreateShow show.ShowInterface/CreateSubscription
show.ShowInterface/EnableBooking show.ShowInterface/EnableDispatching
show.ShowInterface/FindShow show.ShowInterface/GetActiveShows
show.ShowInterface/GetDepartments show.ShowInterface/GetFilters show.ShowInterface/GetGroups
show.ShowInterface/GetServiceOverrides show.ShowInterface/GetShows
show.ShowInterface/GetSubscriptions show.ShowInterface/SetCommentEmail
show.ShowInterface/SetDefaultMaxCores show.ShowInterface/SetDefaultMinCores
subscription.SubscriptionInterface/Delete subscription.SubscriptionInterface/SetBurst
subscription.SubscriptionInterface/SetSize
task.TaskInterface/ClearAdjustments task.TaskInterface/Delete task.TaskInterface/SetMinCores
""".split())  # noqa: SIM905 - a word list reads better than 180 quoted strings

Body = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """One replayed call: its body, what the answer must hold, and what to remember of it.

    ``shape`` lists dotted fields the 2xx body must have (lists where CueWeb
    reads lists); ``None`` means the reply is the empty message, ``{}``.  A
    non-2xx ``status`` expects Cuebot's error, ``error`` a part of its text.
    ``save`` stores reply fields (dotted) in the replay's context by name.
    """

    path: str
    body: Body
    shape: tuple[str, ...] | None = None
    status: int = 200
    error: str = ""
    save: tuple[tuple[str, str], ...] = ()


def _get(reply: Any, dotted: str) -> Any:
    """A field of a JSON reply by dotted path (``jobs.jobs.0.id``)."""
    for key in dotted.split("."):
        reply = reply[int(key)] if isinstance(reply, list) else reply[key]
    return reply


def _by(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A Body that is ``{"id": ctx[key]}`` (an entity CueWeb passes back as it got it)."""
    return lambda ctx: {"id": ctx[key]}


def _calls() -> list[Call]:
    """The replay, in order."""
    return [
        # -- reads CueWeb's pages make -------------------------------------------------
        Call("/show.ShowInterface/GetShows", {}, ("shows.shows.0.showStats",)),
        Call("/show.ShowInterface/GetActiveShows", {}, ("shows.shows.0.name",)),
        Call("/show.ShowInterface/FindShow", {"name": "testing"}, ("show.id",)),
        Call("/show.ShowInterface/GetGroups", {"show": SHOW}, ("groups.groups.0.groupStats",)),
        Call("/show.ShowInterface/GetDepartments", {"show": SHOW},
             ("departments.departments.0.name",), save=(
                 ("department", "departments.departments.0"),)),
        Call("/show.ShowInterface/GetFilters", {"show": SHOW}, ("filters.filters",)),
        Call("/show.ShowInterface/GetServiceOverrides", {"show": SHOW},
             ("serviceOverrides.serviceOverrides",)),
        Call("/show.ShowInterface/GetSubscriptions", {"show": SHOW},
             ("subscriptions.subscriptions.0.allocationName",)),
        Call("/job.JobInterface/GetJobs", {"r": {"include_finished": False}},
             ("jobs.jobs.0.jobStats.totalFrames",)),
        Call("/job.JobInterface/GetJob", {"id": seed.JOB_ID}, ("job.jobStats",)),
        Call("/job.JobInterface/GetFrames",
             {"job": JOB, "req": {"include_finished": True, "page": 1, "limit": 500}},
             ("frames.frames.5.state",)),
        Call("/job.JobInterface/GetLayers", {"job": JOB}, ("layers.layers.0.layerStats",)),
        Call("/job.JobInterface/GetComments", {"job": JOB}, ("comments.comments",)),
        Call("/job.FrameInterface/GetFrame", {"id": seed.FRAME_ID}, ("frame.state",)),
        Call("/job.GroupInterface/GetJobs", {"group": GROUP}, ("jobs.jobs.0.name",)),
        Call("/host.HostInterface/GetHosts", {"r": {}}, ("hosts.hosts.0.idleCores",)),
        Call("/host.HostInterface/FindHost", {"name": seed.HOST_NAME}, ("host.id",)),
        Call("/host.HostInterface/GetComments", {"host": HOST}, ("comments.comments",)),
        Call("/host.HostInterface/GetProcs", {"host": HOST}, ("procs.procs.0.name",),
             save=(("proc_name", "procs.procs.0.name"),)),
        Call("/host.ProcInterface/GetProcs", {"r": {"hosts": [seed.HOST_NAME]}},
             ("procs.procs.0.jobName",)),
        Call("/facility.AllocationInterface/GetAll", {}, ("allocations.allocations.0.stats",),
             save=(("allocation", "allocations.allocations.0.id"),)),
        Call("/limit.LimitInterface/GetAll", {}, ("limits.0.name",)),
        Call("/service.ServiceInterface/GetDefaultServices", {}, ("services.services.0.name",)),
        Call("/department.DepartmentInterface/GetDepartmentNames", {}, ("names.0",)),
        Call("/department.DepartmentInterface/GetTasks",
             lambda ctx: {"department": ctx["department"]}, ("tasks.tasks",)),
        Call("/job.JobInterface/GetDepends", {"job": JOB}, ("depends.depends",)),
        Call("/job.JobInterface/GetWhatDependsOnThis", {"job": JOB}, ("depends.depends",)),
        Call("/job.FrameInterface/GetWhatThisDependsOn", {"frame": FRAME}, ("depends.depends",)),
        Call("/job.LayerInterface/GetWhatThisDependsOn", {"layer": LAYER}, ("depends.depends",)),
        Call("/job.LayerInterface/GetOutputPaths", {"layer": LAYER}, ("outputPaths",)),
        # -- things to act on --------------------------------------------------------------
        Call("/show.ShowInterface/CreateShow", {"name": "cueweb"}, ("show.id",),
             save=(("show2", "show.id"),)),
        Call("/job.JobInterface/LaunchSpecAndWait", {"spec": SPEC}, ("jobs.jobs.1.id",),
             save=(("job2", "jobs.jobs.1.id"),)),
        Call("/job.GroupInterface/CreateSubGroup", {"group": GROUP, "name": "cueweb_group"},
             ("group.id",), save=(("group2", "group.id"),)),
        Call("/job.GroupInterface/CreateSubGroup", {"group": GROUP, "name": "cueweb_empty"},
             ("group.id",), save=(("group3", "group.id"),)),
        Call("/show.ShowInterface/CreateFilter", {"show": SHOW, "name": "cueweb_filter"},
             ("filter.id",), save=(("filter", "filter.id"),)),
        Call("/show.ShowInterface/CreateFilter", {"show": SHOW, "name": "cueweb_filter2"},
             ("filter.order",)),
        Call("/filter.FilterInterface/CreateAction",
             lambda ctx: {"filter": {"id": ctx["filter"]},
                          "data": {"type": "PAUSE_JOB", "value_type": "NONE_TYPE"}},
             ("action.id",), save=(("action", "action.id"),)),
        Call("/filter.FilterInterface/CreateMatcher",
             lambda ctx: {"filter": {"id": ctx["filter"]},
                          "data": {"subject": "SHOT", "type": "IS", "input": "shot001"}},
             ("matcher.id",), save=(("matcher", "matcher.id"),)),
        Call("/limit.LimitInterface/Create", {"name": "cueweb_limit", "max_value": 10},
             ("limit.id",)),
        Call("/service.ServiceInterface/CreateService",
             {"data": {"name": "cueweb_svc", "min_cores": 100, "max_cores": 200,
                       "min_memory": 2 * GIB_KB, "tags": ["general"], "threadable": False}},
             ("service.id",), save=(("service", "service.id"),)),
        Call("/show.ShowInterface/CreateServiceOverride",
             {"show": SHOW, "service": {"name": "cueweb_svc", "min_cores": 200,
                                        "tags": ["general"]}},
             ("serviceOverride.data.name",), save=(("override", "serviceOverride.id"),)),
        Call("/show.ShowInterface/CreateSubscription",
             lambda ctx: {"show": {"id": ctx["show2"]}, "allocation_id": ctx["allocation"],
                          "size": 10, "burst": 20},
             ("subscription.name",), save=(("subscription", "subscription.id"),)),
        Call("/department.DepartmentInterface/AddTask",
             lambda ctx: {"department": ctx["department"], "shot": "shot001", "min_cores": 2},
             ("task.id",), save=(("task", "task"),)),
        Call("/job.JobInterface/AddComment",
             {"job": JOB, "new_comment": {"user": "cueweb", "subject": "s", "message": "m"}}),
        Call("/host.HostInterface/AddComment",
             {"host": HOST, "new_comment": {"user": "cueweb", "subject": "s", "message": "m"}}),
        # -- filters -------------------------------------------------------------------------
        Call("/filter.FilterInterface/GetActions", lambda ctx: {"filter": {"id": ctx["filter"]}},
             ("actions.actions.0.type",)),
        Call("/filter.FilterInterface/GetMatchers",
             lambda ctx: {"filter": {"id": ctx["filter"]}}, ("matchers.matchers.0.input",)),
        Call("/filter.ActionInterface/Commit",
             lambda ctx: {"action": {"id": ctx["action"], "type": "SET_JOB_PRIORITY",
                                     "value_type": "INTEGER_TYPE", "integer_value": 50}}),
        Call("/filter.MatcherInterface/Commit",
             lambda ctx: {"matcher": {"id": ctx["matcher"], "subject": "SHOW", "type": "IS",
                                      "input": "testing"}}),
        Call("/filter.FilterInterface/SetEnabled",
             lambda ctx: {"filter": {"id": ctx["filter"]}, "enabled": False}),
        Call("/filter.FilterInterface/SetName",
             lambda ctx: {"filter": {"id": ctx["filter"]}, "name": "cueweb_renamed"}),
        Call("/filter.FilterInterface/SetType",
             lambda ctx: {"filter": {"id": ctx["filter"]}, "type": "MATCH_ANY"}),
        Call("/filter.FilterInterface/SetOrder",
             lambda ctx: {"filter": {"id": ctx["filter"]}, "order": 2}),
        Call("/filter.FilterInterface/RaiseOrder", lambda ctx: {"filter": {"id": ctx["filter"]}}),
        Call("/filter.FilterInterface/LowerOrder", lambda ctx: {"filter": {"id": ctx["filter"]}}),
        Call("/filter.FilterInterface/OrderFirst", lambda ctx: {"filter": {"id": ctx["filter"]}}),
        Call("/filter.FilterInterface/OrderLast", lambda ctx: {"filter": {"id": ctx["filter"]}}),
        Call("/filter.ActionInterface/Delete", lambda ctx: {"action": {"id": ctx["action"]}}),
        Call("/filter.MatcherInterface/Delete", lambda ctx: {"matcher": {"id": ctx["matcher"]}}),
        Call("/filter.FilterInterface/Delete", lambda ctx: {"filter": {"id": ctx["filter"]}}),
        # -- limits, services, subscriptions, departments, comments ----------------------------
        Call("/limit.LimitInterface/Rename", {"old_name": "cueweb_limit", "new_name": "cw_limit"}),
        Call("/limit.LimitInterface/SetMaxValue", {"name": "cw_limit", "max_value": 20}),
        Call("/limit.LimitInterface/Delete", {"name": "cw_limit"}),
        Call("/service.ServiceInterface/Update",
             lambda ctx: {"service": {"id": ctx["service"], "name": "cueweb_svc",
                                      "min_cores": 300, "tags": ["general"]}}),
        Call("/service.ServiceOverrideInterface/Update",
             lambda ctx: {"service": {"id": ctx["override"], "name": "cueweb_svc",
                                      "min_cores": 400}}),
        Call("/service.ServiceOverrideInterface/Delete",
             lambda ctx: {"service": {"id": ctx["override"], "name": "cueweb_svc"}}),
        Call("/service.ServiceInterface/Delete",
             lambda ctx: {"service": {"id": ctx["service"], "name": "cueweb_svc"}}),
        Call("/subscription.SubscriptionInterface/SetSize",
             lambda ctx: {"subscription": {"id": ctx["subscription"]}, "new_size": 2000}),
        Call("/subscription.SubscriptionInterface/SetBurst",
             lambda ctx: {"subscription": {"id": ctx["subscription"]}, "burst": 4000}),
        Call("/subscription.SubscriptionInterface/Delete",
             lambda ctx: {"subscription": {"id": ctx["subscription"]}}),
        Call("/task.TaskInterface/SetMinCores",
             lambda ctx: {"task": ctx["task"], "new_min_cores": 3}),
        Call("/task.TaskInterface/ClearAdjustments", lambda ctx: {"task": ctx["task"]}),
        Call("/task.TaskInterface/Delete", lambda ctx: {"task": ctx["task"]}),
        Call("/department.DepartmentInterface/SetManagedCores",
             lambda ctx: {"department": ctx["department"], "managed_cores": 10}),
        Call("/department.DepartmentInterface/EnableTiManaged",
             lambda ctx: {"department": ctx["department"], "ti_task": "lighting",
                          "managed_cores": 10}),
        Call("/department.DepartmentInterface/DisableTiManaged",
             lambda ctx: {"department": ctx["department"]}),
        Call("/comment.CommentInterface/Save",
             lambda ctx: {"comment": {"id": ctx["comment"], "subject": "s2", "message": "m2"}}),
        Call("/comment.CommentInterface/Delete", lambda ctx: {"comment": {"id": ctx["comment"]}}),
        # -- groups --------------------------------------------------------------------------
        Call("/job.GroupInterface/SetName",
             lambda ctx: {"group": {"id": ctx["group2"]}, "name": "cueweb_group2"}),
        Call("/job.GroupInterface/SetDepartment",
             lambda ctx: {"group": {"id": ctx["group2"]}, "dept": "comp"}),
        Call("/job.GroupInterface/SetDefaultJobPriority",
             lambda ctx: {"group": {"id": ctx["group2"]}, "priority": 50}),
        Call("/job.GroupInterface/SetDefaultJobMinCores",
             lambda ctx: {"group": {"id": ctx["group2"]}, "min_cores": 1.0}),
        Call("/job.GroupInterface/SetDefaultJobMaxCores",
             lambda ctx: {"group": {"id": ctx["group2"]}, "max_cores": 10.0}),
        Call("/job.GroupInterface/SetMinCores",
             lambda ctx: {"group": {"id": ctx["group2"]}, "min_cores": 0.0}),
        Call("/job.GroupInterface/SetMaxCores",
             lambda ctx: {"group": {"id": ctx["group2"]}, "max_cores": 100.0}),
        Call("/job.GroupInterface/SetDefaultJobMinGpus",
             lambda ctx: {"group": {"id": ctx["group2"]}, "min_gpus": 0}),
        Call("/job.GroupInterface/SetDefaultJobMaxGpus",
             lambda ctx: {"group": {"id": ctx["group2"]}, "max_gpus": 1}),
        Call("/job.GroupInterface/SetMinGpus",
             lambda ctx: {"group": {"id": ctx["group2"]}, "min_gpus": 0}),
        Call("/job.GroupInterface/SetMaxGpus",
             lambda ctx: {"group": {"id": ctx["group2"]}, "max_gpus": 2}),
        Call("/job.GroupInterface/ReparentGroups",
             lambda ctx: {"group": GROUP, "groups": {"groups": [{"id": ctx["group2"]}]}}),
        Call("/job.GroupInterface/ReparentJobs",
             lambda ctx: {"group": {"id": ctx["group2"]},
                          "jobs": {"jobs": [{"id": ctx["job2"]}]}}),
        Call("/job.GroupInterface/Delete", lambda ctx: {"group": {"id": ctx["group3"]}}),
        Call("/job.GroupInterface/Delete", lambda ctx: {"group": {"id": ctx["group2"]}},
             status=500, error="Failed to remove group, be sure that there are no jobs"),
        # -- jobs ----------------------------------------------------------------------------
        Call("/job.JobInterface/Pause", {"job": JOB}),
        Call("/job.JobInterface/Resume", {"job": JOB}),
        Call("/job.JobInterface/SetAutoEat", {"job": JOB, "value": False}),
        Call("/job.JobInterface/SetMaxCores", {"job": JOB, "val": 20}),
        Call("/job.JobInterface/SetMinCores", {"job": JOB, "val": 1}),
        Call("/job.JobInterface/SetMaxGpus", {"job": JOB, "val": 2}),
        Call("/job.JobInterface/SetMinGpus", {"job": JOB, "val": 0}),
        Call("/job.JobInterface/SetMaxRetries", {"job": JOB, "max_retries": 3}),
        Call("/job.JobInterface/SetPriority", {"job": JOB, "val": 200}),
        Call("/job.JobInterface/AddSubscriber", {"job": JOB, "subscriber": "cueweb@example.com"}),
        Call("/job.JobInterface/ReorderFrames", {"job": JOB, "range": "1-3", "order": "REVERSE"}),
        Call("/job.JobInterface/StaggerFrames", {"job": JOB, "range": "1-6", "stagger": 2}),
        Call("/job.JobInterface/CreateDependencyOnJob",
             lambda ctx: {"job": JOB, "on_job": {"id": ctx["job2"]}}, ("depend.id",)),
        Call("/job.JobInterface/CreateDependencyOnLayer",
             lambda ctx: {"job": JOB, "layer": {"id": ctx["layer2"]}}, ("depend.type",)),
        Call("/job.JobInterface/CreateDependencyOnFrame",
             lambda ctx: {"job": JOB, "frame": {"id": ctx["frame2"]}}, ("depend.active",)),
        Call("/job.JobInterface/DropDepends", {"job": JOB, "target": "ANY_TARGET"}),
        Call("/job.JobInterface/EatFrames", {"job": JOB, "req": {"frames": ["0006-layer_name"]}}),
        Call("/job.JobInterface/RetryFrames",
             {"job": JOB, "req": {"frames": ["0006-layer_name"]}}),
        Call("/job.JobInterface/KillFrames", {"job": JOB, "req": {"frames": ["0005-layer_name"]},
                                              "reason": "cueweb", "username": "cueweb"}),
        Call("/job.JobInterface/MarkDoneFrames", {"job": JOB, "req": {"frames": [FRAME["name"]]}}),
        Call("/job.JobInterface/AddRenderPartition",
             {"job": JOB, "host": seed.HOST_NAME, "threads": 1, "max_cores": 1,
              "max_memory": GIB_KB, "max_gpu_memory": 0, "username": "cueweb", "max_gpus": 0},
             ("renderPartition.id",)),
        # -- hosts and procs -------------------------------------------------------------
        Call("/host.HostInterface/AddTags", {"host": HOST, "tags": ["cueweb"]}),
        Call("/host.HostInterface/RenameTag",
             {"host": HOST, "old_tag": "cueweb", "new_tag": "cueweb2"}),
        Call("/host.HostInterface/RemoveTags", {"host": HOST, "tags": ["cueweb2"]}),
        Call("/host.HostInterface/Lock", {"host": HOST}),
        Call("/host.HostInterface/Unlock", {"host": HOST}),
        Call("/host.HostInterface/RedirectToJob",
             lambda ctx: {"host": HOST, "proc_names": [ctx["proc_name"]], "job_id": ctx["job2"]},
             ("value",)),
        Call("/host.HostInterface/SetAllocation",
             lambda ctx: {"host": HOST, "allocation_id": ctx["allocation"]},
             status=500, error="You cannot move hosts with running procs between allocations."),
        Call("/host.ProcInterface/Unbook", {"proc": PROC, "kill": False}),
        Call("/host.ProcInterface/UnbookProcs",
             {"r": {"jobs": [seed.JOB_NAME]}, "kill": False}, ("numProcs",)),
        Call("/host.ProcInterface/Kill", {"proc": PROC}),
        # A killed proc stays until RQD reports (the seed proc runs no frame, so until
        # Cuebot's orphaned-proc check), and Cuebot still counts it.
        Call("/host.HostInterface/SetAllocation",
             lambda ctx: {"host": HOST, "allocation_id": ctx["allocation"]},
             status=500, error="You cannot move hosts with running procs between allocations."),
        Call("/host.HostInterface/SetHardwareState", {"host": HOST, "state": "REPAIR"}),
        Call("/host.HostInterface/RebootWhenIdle", {"host": HOST}),
        Call("/host.HostInterface/Reboot", {"host": HOST}),
        # CueWeb names the owner but sends no id; Cuebot finds owners by id only.
        Call("/host.OwnerInterface/TakeOwnership",
             {"owner": {"name": "artist1"}, "host": seed.HOST_NAME},
             status=404, error="Incorrect result size: expected 1, actual 0"),
        # -- frames ----------------------------------------------------------------------
        Call("/job.FrameInterface/CreateDependencyOnFrame",
             lambda ctx: {"frame": {"id": seed.FRAME_IDS[1]}, "depend_on_frame": FRAME},
             ("depend.dependOnFrame",)),
        Call("/job.FrameInterface/CreateDependencyOnJob",
             lambda ctx: {"frame": {"id": seed.FRAME_IDS[2]}, "job": {"id": ctx["job2"]}},
             ("depend.dependOnJob",)),
        Call("/job.FrameInterface/CreateDependencyOnLayer",
             lambda ctx: {"frame": {"id": seed.FRAME_IDS[3]}, "layer": {"id": ctx["layer2"]}},
             ("depend.dependOnLayer",)),
        Call("/job.FrameInterface/DropDepends",
             {"frame": {"id": seed.FRAME_IDS[2]}, "target": "ANY_TARGET"}),
        Call("/job.FrameInterface/MarkAsWaiting", {"frame": {"id": seed.FRAME_IDS[1]}}),
        Call("/job.FrameInterface/Eat", {"frame": FRAME}),
        Call("/job.FrameInterface/Retry", {"frame": FRAME}),
        Call("/job.FrameInterface/Kill", {"frame": FRAME, "reason": "cueweb"}),
        # -- layers ----------------------------------------------------------------------
        Call("/job.LayerInterface/CreateDependencyOnFrame",
             lambda ctx: {"layer": LAYER, "frame": {"id": ctx["frame2"]}}, ("depend.id",)),
        Call("/job.LayerInterface/CreateDependencyOnJob",
             lambda ctx: {"layer": LAYER, "job": {"id": ctx["job2"]}}, ("depend.id",)),
        Call("/job.LayerInterface/CreateDependencyOnLayer",
             lambda ctx: {"layer": LAYER, "depend_on_layer": {"id": ctx["layer2"]}},
             ("depend.id",)),
        Call("/job.LayerInterface/CreateFrameByFrameDependency",
             lambda ctx: {"layer": LAYER, "depend_layer": {"id": ctx["layer2"]},
                          "any_frame": False}, ("depend.type",)),
        Call("/job.LayerInterface/MarkdoneFrames", lambda ctx: {"layer": {"id": ctx["layer2"]}}),
        Call("/job.LayerInterface/EatFrames", {"layer": LAYER}),
        Call("/job.LayerInterface/RetryFrames", {"layer": LAYER}),
        Call("/job.LayerInterface/KillFrames", {"layer": LAYER, "reason": "cueweb"}),
        Call("/job.LayerInterface/ReorderFrames",
             {"layer": LAYER, "range": "1-2", "order": "LAST"}),
        Call("/job.LayerInterface/StaggerFrames", {"layer": LAYER, "range": "1-6", "stagger": 3}),
        Call("/job.LayerInterface/SetMinCores", {"layer": LAYER, "cores": 2.0}),
        Call("/job.LayerInterface/SetMinGpuMemory", {"layer": LAYER, "gpu_memory": 0}),
        Call("/job.LayerInterface/SetMinMemory", {"layer": LAYER, "memory": 4 * GIB_KB}),
        Call("/job.LayerInterface/SetStartAfter",
             lambda ctx: {"layer": LAYER, "start_after": int(time.time()) + 3600}),
        Call("/job.LayerInterface/SetTags", {"layer": LAYER, "tags": ["general", "cueweb"]}),
        Call("/job.LayerInterface/SetThreadable", {"layer": LAYER, "threadable": True}),
        # -- shows -----------------------------------------------------------------------
        Call("/show.ShowInterface/EnableBooking", {"show": SHOW, "enabled": True}),
        Call("/show.ShowInterface/EnableDispatching", {"show": SHOW, "enabled": True}),
        Call("/show.ShowInterface/SetCommentEmail", {"show": SHOW, "email": "cw@example.com"}),
        Call("/show.ShowInterface/SetDefaultMaxCores", {"show": SHOW, "max_cores": 100.0}),
        Call("/show.ShowInterface/SetDefaultMinCores", {"show": SHOW, "min_cores": 1.0}),
        # -- endings -----------------------------------------------------------------------
        Call("/job.JobInterface/Kill",
             lambda ctx: {"job": {"id": ctx["job2"]}, "reason": "cueweb", "username": "cueweb"}),
        Call("/host.HostInterface/Delete", {"host": HOST}),
    ]


async def _replay(gateway: Any, context: dict[str, Any], call: Call) -> str | None:
    """Make one call; return what is wrong with its answer, or None."""
    body = call.body(context) if callable(call.body) else call.body
    response = await gateway.post(call.path, json.dumps(body))
    reply = response.json()
    if response.status != call.status:
        return f"{call.path}: status {response.status}, expected {call.status}: {reply}"
    if call.status != 200:
        return None if call.error in reply["message"] else f"{call.path}: {reply['message']}"
    if call.shape is None and reply != {}:
        return f"{call.path}: expected {{}}, got {reply}"
    for dotted in call.shape or ():
        try:
            _get(reply, dotted)
        except (KeyError, IndexError, TypeError):
            return f"{call.path}: no {dotted} in {reply}"
    for name, dotted in call.save:
        context[name] = _get(reply, dotted)
    return None


def _learn_launched_ids(context: dict[str, Any], farm: Any) -> None:
    """Remember a layer and a frame of the launched job, and the comment CueWeb made."""
    if "job2" in context and "layer2" not in context:
        with farm.lock:
            layer = farm.job(context["job2"]).layers["render"]
            context["layer2"], context["frame2"] = layer.id, layer.frames[0].id
    if "comment" not in context:
        with farm.lock:
            comments = farm.job(seed.JOB_ID).comments
            if comments:
                context["comment"] = comments[0].id


@pytest_twisted.ensureDeferred
async def test_every_cueweb_call_answers_as_cuebot_would(start_gateway):
    """Every CueWeb call, made as CueWeb makes it, answers a right-shaped 2xx or Cuebot's error."""
    # Some 200 calls back to back from one client: lift the per-client rate limit.
    sandbox_gateway = start_gateway(sandbox=True, RATE_LIMIT_RPS="0")
    calls = _calls()
    assert {call.path for call in calls} == CUEWEB_ENDPOINTS
    farm = sandbox_gateway.farm
    context: dict[str, Any] = {}
    problems = []
    for call in calls:
        _learn_launched_ids(context, farm)
        problem = await _replay(sandbox_gateway, context, call)
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)
