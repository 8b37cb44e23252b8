"""Rendering of farm records as the ``opencue_proto`` messages Cuebot sends.

Stats are computed here, from the records, at the moment of rendering:
per-state frame counts come from the layers' tallies and reserved resources
from the procs, so an answer can never disagree with the frames it describes.
Show and group stats count only pending jobs, as Cuebot's do.  Callers hold
``Farm.lock`` while rendering.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from opencue_proto import comment_pb2, host_pb2, job_pb2, show_pb2

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
    sum_counts,
)


def _reserved(procs: Iterable[Proc]) -> tuple[float, float]:
    """Cores and GPUs reserved by ``procs``."""
    procs = list(procs)
    return sum(p.reserved_cores for p in procs), sum(p.reserved_gpus for p in procs)


def _pending(counts: Counter[int]) -> int:
    """Frames still to render: waiting plus depending, as Cuebot counts pending frames."""
    return sum(counts[state] for state in PENDING_STATES)


def show(record: Show) -> show_pb2.Show:
    """A show with stats over its pending jobs."""
    jobs = record.pending_jobs()
    counts = sum_counts(job.frame_counts() for job in jobs)
    cores, gpus = _reserved(proc for job in jobs for proc in job.procs.values())
    return show_pb2.Show(
        id=record.id,
        name=record.name,
        default_min_cores=record.default_min_cores,
        default_max_cores=record.default_max_cores,
        default_min_gpus=record.default_min_gpus,
        default_max_gpus=record.default_max_gpus,
        comment_email=record.comment_email,
        booking_enabled=record.booking_enabled,
        dispatch_enabled=record.dispatch_enabled,
        active=record.active,
        show_stats=show_pb2.ShowStats(
            running_frames=counts[job_pb2.RUNNING],
            dead_frames=counts[job_pb2.DEAD],
            pending_frames=_pending(counts),
            pending_jobs=len(jobs),
            created_job_count=record.created_job_count,
            created_frame_count=record.created_frame_count,
            reserved_cores=cores,
            reserved_gpus=gpus,
        ),
    )


def group(record: Group) -> job_pb2.Group:
    """A group with stats over its pending jobs."""
    jobs = record.pending_jobs()
    counts = sum_counts(job.frame_counts() for job in jobs)
    cores, gpus = _reserved(proc for job in jobs for proc in job.procs.values())
    return job_pb2.Group(
        id=record.id,
        name=record.name,
        department=record.department,
        default_job_priority=record.default_job_priority,
        default_job_min_cores=record.default_job_min_cores,
        default_job_max_cores=record.default_job_max_cores,
        default_job_min_gpus=record.default_job_min_gpus,
        default_job_max_gpus=record.default_job_max_gpus,
        min_cores=record.min_cores,
        max_cores=record.max_cores,
        min_gpus=record.min_gpus,
        max_gpus=record.max_gpus,
        level=record.level,
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


def job(record: Job) -> job_pb2.Job:
    """A job with stats over its layers and procs."""
    counts = record.frame_counts()
    cores, gpus = _reserved(record.procs.values())
    return job_pb2.Job(
        id=record.id,
        state=record.state,
        name=record.name,
        shot=record.shot,
        show=record.show.name,
        user=record.user,
        group=record.group.name,
        facility=record.facility,
        os=record.os,
        priority=record.priority,
        min_cores=record.min_cores,
        max_cores=record.max_cores,
        min_gpus=record.min_gpus,
        max_gpus=record.max_gpus,
        log_dir=record.log_dir,
        is_paused=record.is_paused,
        has_comment=bool(record.comments),
        auto_eat=record.auto_eat,
        start_time=record.start_time,
        stop_time=record.stop_time,
        eligible_time=record.start_time,
        job_stats=job_pb2.JobStats(
            total_layers=len(record.layers),
            total_frames=sum(len(layer.frames) for layer in record.layers.values()),
            waiting_frames=counts[job_pb2.WAITING],
            running_frames=counts[job_pb2.RUNNING],
            dead_frames=counts[job_pb2.DEAD],
            eaten_frames=counts[job_pb2.EATEN],
            depend_frames=counts[job_pb2.DEPEND],
            succeeded_frames=counts[job_pb2.SUCCEEDED],
            pending_frames=_pending(counts),
            reserved_cores=cores,
            reserved_gpus=gpus,
        ),
    )


def layer(record: Layer) -> job_pb2.Layer:
    """A layer with stats over its frames and procs."""
    counts = record.counts
    cores, gpus = _reserved(record.procs())
    return job_pb2.Layer(
        id=record.id,
        name=record.name,
        range=record.range,
        tags=record.tags,
        min_cores=record.min_cores,
        max_cores=record.max_cores,
        is_threadable=record.is_threadable,
        min_memory=record.min_memory,
        min_gpu_memory=record.min_gpu_memory,
        chunk_size=record.chunk_size,
        dispatch_order=record.dispatch_order,
        type=record.type,
        services=record.services,
        memory_optimizer_enabled=record.memory_optimizer_enabled,
        parent_id=record.job.id,
        timeout=record.timeout,
        timeout_llu=record.timeout_llu,
        min_gpus=record.min_gpus,
        max_gpus=record.max_gpus,
        command=record.command,
        eligible_time=record.job.start_time,
        layer_stats=job_pb2.LayerStats(
            total_frames=len(record.frames),
            waiting_frames=counts[job_pb2.WAITING],
            running_frames=counts[job_pb2.RUNNING],
            dead_frames=counts[job_pb2.DEAD],
            eaten_frames=counts[job_pb2.EATEN],
            depend_frames=counts[job_pb2.DEPEND],
            succeeded_frames=counts[job_pb2.SUCCEEDED],
            pending_frames=_pending(counts),
            reserved_cores=cores,
            reserved_gpus=gpus,
        ),
    )


def frame(record: Frame) -> job_pb2.Frame:
    """A frame; its memory reservation is its layer's minimum, as at Cuebot's insert."""
    return job_pb2.Frame(
        id=record.id,
        name=record.name,
        layer_name=record.layer.name,
        number=record.number,
        state=record.state,
        retry_count=record.retry_count,
        exit_status=record.exit_status,
        dispatch_order=record.dispatch_order,
        start_time=record.start_time,
        stop_time=record.stop_time,
        reserved_memory=record.layer.min_memory,
        last_resource=record.last_resource,
        checkpoint_state=record.checkpoint_state,
        llu_time=record.llu_time,
        eligible_time=record.layer.job.start_time,
        submission_time=record.layer.job.start_time,
    )


def updated_frame(record: Frame) -> job_pb2.UpdatedFrame:
    """The changeable part of a frame, for GetUpdatedFrames."""
    return job_pb2.UpdatedFrame(
        id=record.id,
        state=record.state,
        retry_count=record.retry_count,
        exit_status=record.exit_status,
        start_time=record.start_time,
        stop_time=record.stop_time,
        last_resource=record.last_resource,
        llu_time=record.llu_time,
    )


def host(record: Host) -> host_pb2.Host:
    """A host; idle resources are what its procs leave free."""
    return host_pb2.Host(
        id=record.id,
        name=record.name,
        alloc_name=record.alloc_name,
        nimby_enabled=record.nimby_enabled,
        has_comment=bool(record.comments),
        cores=record.cores,
        idle_cores=record.idle_cores,
        memory=record.memory,
        idle_memory=record.idle_memory,
        gpu_memory=record.gpu_memory,
        idle_gpu_memory=record.idle_gpu_memory,
        total_swap=record.total_swap,
        total_memory=record.total_memory,
        total_gpu_memory=record.total_gpu_memory,
        total_mcp=record.total_mcp,
        free_swap=record.free_swap,
        free_memory=record.free_memory,
        free_mcp=record.free_mcp,
        free_gpu_memory=record.free_gpu_memory,
        load=record.load,
        boot_time=record.boot_time,
        ping_time=record.ping_time,
        os=record.os,
        tags=record.tags,
        state=record.state,
        lock_state=record.lock_state,
        thread_mode=record.thread_mode,
        gpus=record.gpus,
        idle_gpus=record.idle_gpus,
    )


def proc(record: Proc) -> host_pb2.Proc:
    """A proc; ``frame_name`` is empty while it waits for a frame."""
    return host_pb2.Proc(
        id=record.id,
        name=record.name,
        show_name=record.job.show.name,
        job_name=record.job.name,
        frame_name=record.frame.name if record.frame is not None else "",
        group_name=record.job.group.name,
        ping_time=record.host.ping_time,
        bookedTime=record.booked_time,
        dispatch_time=record.booked_time,
        reserved_memory=record.reserved_memory,
        reserved_gpu_memory=record.reserved_gpu_memory,
        used_memory=record.used_memory,
        used_gpu_memory=record.used_gpu_memory,
        reserved_cores=record.reserved_cores,
        reserved_gpus=record.reserved_gpus,
        unbooked=record.unbooked,
        log_path=record.log_path,
        redirect_target=record.redirect_target,
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


def comment(record: Comment) -> comment_pb2.Comment:
    """A comment."""
    return comment_pb2.Comment(
        id=record.id,
        timestamp=record.timestamp,
        user=record.user,
        subject=record.subject,
        message=record.message,
    )
