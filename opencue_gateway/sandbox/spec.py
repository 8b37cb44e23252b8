"""Launching jobs from an OpenCue job spec (the XML that LaunchSpec* and CueWeb submit).

The subset read is what CueWeb's and pycue's spec writers produce: the spec's
facility, show, shot and user; each job's name, ``paused``, ``autoeat``,
``maxretries`` and ``priority``; each layer's name, type, ``cmd``, ``range``,
``chunk``, ``cores``, ``threadable``, ``memory``, ``gpus``, ``gpu_memory``,
``tags``, ``services`` and ``limits``; and ``depends`` between layers or jobs
of the spec.  Names are conformed as Cuebot's ``JobSpec`` does; a job lands in
its show's root group, PENDING, with every frame WAITING (or DEPEND), and then
the show's filters run on it, as Cuebot's launcher runs them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from opencue_proto import job_pb2

from opencue_gateway.sandbox import errors, filtering
from opencue_gateway.sandbox.admin_records import Limit
from opencue_gateway.sandbox.farm import NAME_PATTERN, Farm, conform_name, whole_cores
from opencue_gateway.sandbox.records import Job, Layer, Show
from opencue_gateway.sandbox.search import frame_set

GIB = 1024**3
MIB = 1024**2
# Cuebot's layer defaults when the spec says nothing (memory in the farm's bytes).
DEFAULT_MIN_MEMORY = 4 * GIB
DEFAULT_MAX_RETRIES = 3
_LAYER_TYPES = {name.lower(): number for name, number in job_pb2.LayerType.items()}


@dataclass(frozen=True, slots=True)
class _Header:
    """The spec-wide settings every job of the spec shares."""

    facility: str
    show: str
    shot: str
    user: str


def launch(farm: Farm, text: str) -> list[Job]:
    """Create the jobs of a spec; raises a JavaError whose text says what is wrong."""
    try:
        root = ElementTree.fromstring(text.encode())
    except ElementTree.ParseError as error:
        raise errors.SpecBuilderError(f"failed to parse job spec: {error}") from None
    header = _Header(
        facility=_text(root, "facility", "local"), show=_text(root, "show", ""),
        shot=_text(root, "shot", ""), user=_text(root, "user", ""),
    )
    show = farm.find_show(header.show)
    jobs: dict[str, Job] = {}
    try:
        for tag in root.iter("job"):
            job = _job(farm, header, show, tag, jobs)
            jobs[tag.get("name", "")] = jobs[job.name] = job
        for depend in root.iter("depend"):
            _depend(farm, jobs, depend)
    except (errors.JavaError, ValueError, KeyError) as error:
        for job in dict.fromkeys(jobs.values()):
            farm.remove_job(job)
        if isinstance(error, errors.JavaError):
            raise
        raise errors.SpecBuilderError(f"invalid job spec: {error}") from error
    launched = list(dict.fromkeys(jobs.values()))
    for job in launched:
        filtering.run_show_filters(farm, job)
    return launched


def conform_job_name(header: _Header, name: str) -> str:
    """Cuebot's job name: ``show-shot-user_suffix``, lower case."""
    prefix = f"{header.show}-{header.shot}-{header.user}_"
    suffix = name[len(prefix) - 1:] if name.startswith(prefix) else name
    suffix = re.sub("_{2,}", "_", suffix.lower()).replace("-", "_")
    if not NAME_PATTERN.match(suffix):
        raise errors.SpecBuilderError(
            f"The job name suffix: {suffix} must be composed of alpha numeric characters, "
            "periods, and underscores and be at least 3 characters long"
        )
    return f"{prefix.rstrip('_')}_{suffix.lstrip('_')}".lower()


def memory(text: str) -> int:
    """A spec memory value (``512m``, ``4g``, or kilobytes) in the farm's bytes."""
    value = text.strip().lower()
    if "m" in value:
        return int(float(value[: value.rindex("m")]) * MIB)
    if "g" in value:
        return int(float(value[: value.rindex("g")]) * GIB)
    return int(value) * 1024


def _text(tag: ElementTree.Element, child: str, default: str) -> str:
    """A child's stripped text, or ``default`` when it is missing or empty."""
    found = tag.find(child)
    return (found.text or "").strip() if found is not None and found.text else default


def _flag(tag: ElementTree.Element, child: str) -> bool:
    """A spec boolean (``True``/``False``, ``1``/``0``)."""
    return _text(tag, child, "false").lower() in ("true", "1", "yes")


def _job(
    farm: Farm, header: _Header, show: Show, tag: ElementTree.Element, made: dict[str, Job]
) -> Job:
    """Create one job and its layers; ``made`` learns of the job first, to undo a failure."""
    name = conform_job_name(header, tag.get("name", ""))
    if any(j.name == name and j.state == job_pb2.PENDING for j in farm.jobs()):
        raise errors.SpcueRuntimeError(f"The job {name} is already pending")
    group = show.root
    priority = group.default_job_priority if group.default_job_priority >= 0 else 1
    job = farm.add_job(Job(
        id=farm.new_id(), name=name, show=show, group=group, shot=header.shot,
        user=header.user, facility=header.facility, os=_text(tag, "os", ""),
        priority=int(_text(tag, "priority", str(priority))),
        min_cores=show.default_min_cores, max_cores=show.default_max_cores,
        log_dir=f"/shots/{show.name}/{header.shot}/logs/{name}", start_time=farm.now(),
        is_paused=_flag(tag, "paused"), auto_eat=_flag(tag, "autoeat"),
        max_retries=int(_text(tag, "maxretries", str(DEFAULT_MAX_RETRIES))),
    ))
    made[job.name] = job
    for order, layer_tag in enumerate(tag.iter("layer")):
        _layer(farm, job, layer_tag, order)
    if not job.layers:
        raise errors.SpecBuilderError(f"The job {name} has no layers.")
    return job


def _layer(farm: Farm, job: Job, tag: ElementTree.Element, order: int) -> Layer:
    """Create one layer with a frame per number of its range (chunks start frames)."""
    name = conform_name("Layer", tag.get("name", ""))
    if name in job.layers:
        raise errors.SpecBuilderError(
            f"error, the layer {name} was already defined in job {job.name}"
        )
    spec_range = _text(tag, "range", "1")
    chunk = max(int(_text(tag, "chunk", "1")), 1)
    cores = whole_cores(float(_text(tag, "cores", "1")))
    memory_text = _text(tag, "memory", "")
    limits = [farm.named(Limit, _limit_name(t)).name for t in tag.iter("limit")]
    layer = farm.add_layer(
        Layer(
            id=farm.new_id(), name=name, job=job,
            type=_LAYER_TYPES.get(tag.get("type", "render").lower(), job_pb2.RENDER),
            range=spec_range, min_cores=cores, max_cores=0.0,
            min_memory=memory(memory_text) if memory_text else DEFAULT_MIN_MEMORY,
            dispatch_order=order, chunk_size=chunk, command=_text(tag, "cmd", ""),
            is_threadable=_flag(tag, "threadable"),
            min_gpus=float(_text(tag, "gpus", "0")),
            tags=_text(tag, "tags", "general").replace("|", " ").split(),
            services=[(s.text or "").strip() for s in tag.iter("service")] or ["default"],
            limits=limits,
        ),
        ((farm.new_id(), n) for n in sorted(frame_set(spec_range))[::chunk]),
    )
    return layer


def _limit_name(tag: ElementTree.Element) -> str:
    """The name a ``<limit>`` element gives."""
    return (tag.text or "").strip()


def _depend(farm: Farm, jobs: dict[str, Job], tag: ElementTree.Element) -> None:
    """Create one ``<depend>`` between jobs or layers; jobs of the spec go by either name."""

    def side(job_tag: str, layer_tag: str) -> Job | Layer:
        """The job, or the layer of it, a pair of depend children names."""
        job_name = _text(tag, job_tag, "")
        job = jobs.get(job_name) or farm.find_job(job_name)
        layer_name = _text(tag, layer_tag, "")
        return job.layers[conform_name("Layer", layer_name)] if layer_name else job

    er, on = side("depjob", "deplayer"), side("onjob", "onlayer")
    if tag.get("type", "") == "FRAME_BY_FRAME" and isinstance(er, Layer) and isinstance(on, Layer):
        farm.depends.create_frame_by_frame(er, on, _flag_attr(tag, "anyframe"))
    else:
        farm.depends.create(er, on, _flag_attr(tag, "anyframe"))


def _flag_attr(tag: ElementTree.Element, name: str) -> bool:
    """A spec boolean attribute."""
    return tag.get(name, "false").lower() in ("true", "1", "yes")
