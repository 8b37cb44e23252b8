"""Rendering of farm records as the ``opencue_proto`` messages Cuebot sends.

Stats are computed here, from the records, at the moment of rendering:
per-state frame counts come from the layers' tallies and reserved resources
from the procs, so an answer can never disagree with the frames it describes.
Show and group stats count only pending jobs, as Cuebot's do.  Callers hold
``Farm.lock`` while rendering.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from opencue_proto import (
    comment_pb2,
    department_pb2,
    depend_pb2,
    facility_pb2,
    filter_pb2,
    host_pb2,
    job_pb2,
    limit_pb2,
    renderPartition_pb2,
    service_pb2,
    show_pb2,
    subscription_pb2,
    task_pb2,
)

from opencue_gateway.sandbox.admin_records import (
    Action,
    Allocation,
    Department,
    Facility,
    Filter,
    Limit,
    Matcher,
    RenderPartition,
    Service,
    Subscription,
    Task,
)
from opencue_gateway.sandbox.depends import Depend
from opencue_gateway.sandbox.records import (
    PENDING_STATES,
    Comment,
    Deed,
    Frame,
    Group,
    Host,
    Job,
    Layer,
    Owner,
    Proc,
    Show,
    Usage,
    sum_counts,
)


def _same_named(*names: str) -> Callable[[Any], dict[str, Any]]:
    """A reader of the record attributes a message carries unchanged, under the same names.

    Most fields of Cuebot's messages are a record's attribute as it stands;
    listing those once per message leaves each renderer with only the fields
    it derives or renames, which are the ones worth reading.
    """
    read = operator.attrgetter(*names)
    return lambda record: dict(zip(names, read(record), strict=True))


def _reserved(procs: Iterable[Proc]) -> tuple[float, float]:
    """Cores and GPUs reserved by ``procs``."""
    procs = list(procs)
    return sum(p.reserved_cores for p in procs), sum(p.reserved_gpus for p in procs)


def _usage(layers: Iterable[Layer]) -> Usage:
    """The finished-frame usage of several layers, added up."""
    total = Usage()
    for each in layers:
        total.add(each.usage)
    return total


def _usage_stats(usage: Usage) -> dict[str, float | int]:
    """The JobStats and LayerStats fields that come from finished frames."""
    return {
        "rendered_frame_count": usage.rendered_frames,
        "failed_frame_count": usage.failed_frames,
        "avg_frame_sec": usage.rendered_frame_sec // max(usage.rendered_frames, 1),
        "high_frame_sec": usage.high_frame_sec,
        "avg_core_sec": int(usage.rendered_core_sec // max(usage.rendered_frames, 1)),
        "total_core_sec": int(usage.rendered_core_sec + usage.failed_core_sec),
        "rendered_core_sec": int(usage.rendered_core_sec),
        "failed_core_sec": int(usage.failed_core_sec),
        "max_rss": usage.max_rss,
    }


def _pending(counts: Counter[int]) -> int:
    """Frames still to render: waiting plus depending, as Cuebot counts pending frames."""
    return sum(counts[state] for state in PENDING_STATES)


def _frame_stats(counts: Counter[int], procs: Iterable[Proc]) -> dict[str, float | int]:
    """The JobStats and LayerStats fields that count frames by state and procs' reservations.

    Cuebot fills them alike for a job and for a layer; only the frames and
    procs they are counted over differ.
    """
    cores, gpus = _reserved(procs)
    return {
        "waiting_frames": counts[job_pb2.WAITING],
        "running_frames": counts[job_pb2.RUNNING],
        "dead_frames": counts[job_pb2.DEAD],
        "eaten_frames": counts[job_pb2.EATEN],
        "depend_frames": counts[job_pb2.DEPEND],
        "succeeded_frames": counts[job_pb2.SUCCEEDED],
        "pending_frames": _pending(counts),
        "reserved_cores": cores,
        "reserved_gpus": gpus,
    }


_show_fields = _same_named(
    "id", "name", "default_min_cores", "default_max_cores", "default_min_gpus",
    "default_max_gpus", "comment_email", "booking_enabled", "dispatch_enabled", "active",
)


def show(record: Show) -> show_pb2.Show:
    """A show with stats over its pending jobs."""
    jobs = record.pending_jobs()
    counts = sum_counts(job.frame_counts() for job in jobs)
    cores, gpus = _reserved(proc for job in jobs for proc in job.procs.values())
    usage = _usage(layer for job in record.jobs.values() for layer in job.layers.values())
    return show_pb2.Show(
        **_show_fields(record),
        show_stats=show_pb2.ShowStats(
            running_frames=counts[job_pb2.RUNNING],
            dead_frames=counts[job_pb2.DEAD],
            pending_frames=_pending(counts),
            pending_jobs=len(jobs),
            created_job_count=record.created_job_count,
            created_frame_count=record.created_frame_count,
            rendered_frame_count=usage.rendered_frames,
            failed_frame_count=usage.failed_frames,
            reserved_cores=cores,
            reserved_gpus=gpus,
        ),
    )


_group_fields = _same_named(
    "id", "name", "department", "default_job_priority", "default_job_min_cores",
    "default_job_max_cores", "default_job_min_gpus", "default_job_max_gpus", "min_cores",
    "max_cores", "min_gpus", "max_gpus", "level",
)


def group(record: Group) -> job_pb2.Group:
    """A group with stats over its pending jobs."""
    jobs = record.pending_jobs()
    counts = sum_counts(job.frame_counts() for job in jobs)
    cores, gpus = _reserved(proc for job in jobs for proc in job.procs.values())
    return job_pb2.Group(
        **_group_fields(record),
        parent_id=record.parent.id if record.parent is not None else "",
        group_stats=job_pb2.GroupStats(
            running_frames=counts[job_pb2.RUNNING],
            dead_frames=counts[job_pb2.DEAD],
            depend_frames=counts[job_pb2.DEPEND],
            waiting_frames=counts[job_pb2.WAITING],
            pending_jobs=len(jobs),
            reserved_cores=cores,
            reserved_gpus=gpus,
        ),
    )


_job_fields = _same_named(
    "id", "state", "name", "shot", "user", "facility", "os", "priority", "min_cores",
    "max_cores", "min_gpus", "max_gpus", "log_dir", "is_paused", "auto_eat", "start_time",
    "stop_time",
)


def job(record: Job) -> job_pb2.Job:
    """A job with stats over its layers and procs."""
    return job_pb2.Job(
        **_job_fields(record),
        show=record.show.name,
        group=record.group.name,
        has_comment=bool(record.comments),
        eligible_time=record.start_time,
        job_stats=job_pb2.JobStats(
            total_layers=len(record.layers),
            total_frames=sum(len(layer.frames) for layer in record.layers.values()),
            **_frame_stats(record.frame_counts(), record.procs.values()),
            **_usage_stats(_usage(record.layers.values())),
        ),
    )


_layer_fields = _same_named(
    "id", "name", "range", "tags", "min_cores", "max_cores", "is_threadable", "min_memory",
    "min_gpu_memory", "chunk_size", "dispatch_order", "type", "services",
    "memory_optimizer_enabled", "timeout", "timeout_llu", "min_gpus", "max_gpus", "command",
    "limits", "start_after", "start_after_reason",
)


def layer(record: Layer) -> job_pb2.Layer:
    """A layer with stats over its frames and procs."""
    return job_pb2.Layer(
        **_layer_fields(record),
        parent_id=record.job.id,
        eligible_time=max(record.job.start_time, record.start_after),
        layer_stats=job_pb2.LayerStats(
            total_frames=len(record.frames),
            **_frame_stats(record.counts, record.procs()),
            low_frame_sec=record.usage.low_frame_sec,
            **_usage_stats(record.usage),
        ),
    )


# What GetUpdatedFrames sends of a frame: the part of it that changes.
_UPDATED_FRAME_NAMES = (
    "id", "state", "retry_count", "exit_status", "start_time", "stop_time", "last_resource",
    "llu_time",
)
_updated_frame_fields = _same_named(*_UPDATED_FRAME_NAMES)
_frame_fields = _same_named(
    *_UPDATED_FRAME_NAMES, "name", "number", "dispatch_order", "max_rss", "checkpoint_state"
)


def _used_memory(record: Frame) -> int:
    """What a frame uses: its running proc's figure, else what it used when it last ran."""
    return record.used_memory if record.proc is None else record.proc.used_memory


def frame(record: Frame) -> job_pb2.Frame:
    """A frame; its memory reservations are its layer's minimums, as at Cuebot's insert."""
    return job_pb2.Frame(
        **_frame_fields(record),
        layer_name=record.layer.name,
        used_memory=_used_memory(record),
        reserved_memory=(
            record.layer.min_memory if record.proc is None else record.proc.reserved_memory
        ),
        reserved_gpu_memory=(
            record.layer.min_gpu_memory if record.proc is None
            else record.proc.reserved_gpu_memory
        ),
        eligible_time=record.layer.job.start_time,
        submission_time=record.layer.job.start_time,
        frame_state_display_override=next(
            (o for o in record.display_overrides or () if o.state == record.state), None
        ),
    )


def updated_frame(record: Frame) -> job_pb2.UpdatedFrame:
    """The changeable part of a frame, for GetUpdatedFrames (memory too, as Cuebot sends)."""
    return job_pb2.UpdatedFrame(
        **_updated_frame_fields(record), max_rss=record.max_rss, used_memory=_used_memory(record)
    )


_host_fields = _same_named(
    "id", "name", "alloc_name", "nimby_enabled", "cores", "idle_cores", "memory",
    "idle_memory", "gpu_memory", "idle_gpu_memory", "total_swap", "total_memory",
    "total_gpu_memory", "total_mcp", "free_swap", "free_memory", "free_mcp", "free_gpu_memory",
    "load", "boot_time", "ping_time", "os", "tags", "state", "lock_state", "thread_mode", "gpus",
    "idle_gpus",
)


def host(record: Host) -> host_pb2.Host:
    """A host; idle resources are what its procs leave free."""
    return host_pb2.Host(**_host_fields(record), has_comment=bool(record.comments))


_proc_fields = _same_named(
    "id", "name", "reserved_memory", "reserved_gpu_memory", "used_memory", "used_gpu_memory",
    "reserved_cores", "reserved_gpus", "unbooked", "log_path", "redirect_target",
)


def proc(record: Proc) -> host_pb2.Proc:
    """A proc; ``frame_name`` is empty while it waits for a frame."""
    return host_pb2.Proc(
        **_proc_fields(record),
        show_name=record.job.show.name,
        job_name=record.job.name,
        frame_name=record.frame.name if record.frame is not None else "",
        group_name=record.job.group.name,
        ping_time=record.host.ping_time,
        bookedTime=record.booked_time,
        dispatch_time=record.booked_time,
        services=record.layer.services,
    )


def owner(record: Owner) -> host_pb2.Owner:
    """An owner and how many hosts it holds deeds on."""
    return host_pb2.Owner(
        id=record.id, name=record.name, show=record.show.name, host_count=len(record.deeds)
    )


def deed(record: Deed) -> host_pb2.Deed:
    """A deed, naming its host, owner and the owner's show."""
    return host_pb2.Deed(
        id=record.id,
        host=record.host.name,
        owner=record.owner.name,
        show=record.owner.show.name,
    )


_comment_fields = _same_named("id", "timestamp", "user", "subject", "message")


def comment(record: Comment) -> comment_pb2.Comment:
    """A comment."""
    return comment_pb2.Comment(**_comment_fields(record))


def facility(record: Facility) -> facility_pb2.Facility:
    """A facility."""
    return facility_pb2.Facility(id=record.id, name=record.name)


def allocation(record: Allocation, hosts: Iterable[Host]) -> facility_pb2.Allocation:
    """An allocation with stats over ``hosts``, the hosts in it."""
    stats = facility_pb2.AllocationStats()
    for each in hosts:
        locked = each.lock_state != host_pb2.OPEN
        stats.hosts += 1
        stats.cores += each.cores
        stats.gpus += each.gpus
        stats.idle_cores += each.idle_cores
        stats.idle_gpus += each.idle_gpus
        stats.running_cores += each.cores - each.idle_cores
        stats.running_gpus += each.gpus - each.idle_gpus
        stats.locked_hosts += locked
        stats.locked_cores += each.cores if locked else 0
        stats.locked_gpus += each.gpus if locked else 0
        stats.down_hosts += each.state != host_pb2.UP
        if not locked and each.state == host_pb2.UP:
            stats.available_cores += each.idle_cores
            stats.available_gpus += each.idle_gpus
    return facility_pb2.Allocation(
        id=record.id, name=record.name, tag=record.tag, facility=record.facility.name,
        billable=record.billable, stats=stats,
    )


def subscription(record: Subscription, procs: Iterable[Proc]) -> subscription_pb2.Subscription:
    """A subscription; ``procs`` are its show's procs on the allocation's hosts."""
    procs = list(procs)
    cores, gpus = _reserved(procs)
    return subscription_pb2.Subscription(
        id=record.id, name=record.name, show_name=record.show.name,
        facility=record.allocation.facility.name, allocation_name=record.allocation.name,
        size=record.size, burst=record.burst, reserved_cores=int(cores * 100),
        reserved_gpus=int(gpus),
    )


_limit_fields = _same_named(
    "id", "name", "max_value", "type", "enforcement", "soft_value", "exit_status",
    "delay_minutes", "auto_tag",
)


def limit(record: Limit, running: int) -> limit_pb2.Limit:
    """A limit; ``running`` is how many running frames its layers hold."""
    return limit_pb2.Limit(**_limit_fields(record), current_running=running)


_service_fields = _same_named(
    "id", "name", "threadable", "min_cores", "max_cores", "min_memory", "min_gpu_memory", "tags",
    "timeout", "timeout_llu", "min_gpus", "max_gpus", "min_memory_increase",
)


def service(record: Service) -> service_pb2.Service:
    """A service (or the data of a show's override of one)."""
    return service_pb2.Service(**_service_fields(record))


def service_override(record: Service) -> service_pb2.ServiceOverride:
    """A show's override of a service."""
    return service_pb2.ServiceOverride(id=record.id, data=service(record))


def department(record: Department) -> department_pb2.Department:
    """A show's department configuration."""
    return department_pb2.Department(
        id=record.id, name=record.name, dept=record.dept_id, ti_task=record.ti_task,
        min_cores=record.managed_cores, ti_managed=record.ti_managed,
    )


def task(record: Task) -> task_pb2.Task:
    """A department task."""
    return task_pb2.Task(
        id=record.id, name=record.name, shot=record.shot, dept=record.department.dept_id,
        point_id=record.department.id, min_cores=record.min_cores,
        adjust_cores=record.adjust_cores,
    )


_filter_fields = _same_named("id", "name", "type", "order", "enabled")
_matcher_fields = _same_named("id", "subject", "type", "input")
_action_fields = _same_named(
    "id", "type", "value_type", "group_value", "string_value", "integer_value", "float_value",
    "boolean_value",
)


def filter_(record: Filter) -> filter_pb2.Filter:
    """A filter."""
    return filter_pb2.Filter(**_filter_fields(record))


def matcher(record: Matcher) -> filter_pb2.Matcher:
    """A filter's matcher."""
    return filter_pb2.Matcher(**_matcher_fields(record))


def action(record: Action) -> filter_pb2.Action:
    """A filter's action."""
    return filter_pb2.Action(**_action_fields(record))


def depend(record: Depend) -> depend_pb2.Depend:
    """A dependency, naming both sides' job, layer and frame."""
    return depend_pb2.Depend(
        id=record.id, type=record.type, target=record.target, any_frame=record.any_frame,
        active=record.active, depend_er_job=record.er_job.name,
        depend_er_layer=record.er_layer.name if record.er_layer else "",
        depend_er_frame=record.er_frame.name if record.er_frame else "",
        depend_on_job=record.on_job.name,
        depend_on_layer=record.on_layer.name if record.on_layer else "",
        depend_on_frame=record.on_frame.name if record.on_frame else "",
    )


def render_partition(record: RenderPartition) -> renderPartition_pb2.RenderPartition:
    """A local render partition."""
    return renderPartition_pb2.RenderPartition(
        id=record.id, job=record.job.name, layer=record.layer.name if record.layer else "",
        frame=record.frame.name if record.frame else "", render_part_type=record.type,
        host=record.host.name, cores=0, memory=0, max_cores=record.max_cores,
        max_memory=record.max_memory, max_gpu_memory=record.max_gpu_memory,
        threads=record.threads, gpus=0, max_gpus=record.max_gpus,
    )
