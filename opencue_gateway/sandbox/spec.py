"""Launching jobs from an OpenCue job spec (the XML that LaunchSpec* and CueWeb submit).

The subset read is what CueWeb's and pycue's spec writers produce: the spec's
facility, show, shot and user; each job's name, ``paused``, ``autoeat``,
``maxretries`` and ``priority``; each layer's name, type, ``cmd``, ``range``,
``chunk``, ``cores``, ``threadable``, ``memory``, ``gpus``, ``gpu_memory``,
``tags``, ``services`` and ``limits``; and ``depends`` between layers or jobs
of the spec.  Memory is read as Cuebot's ``JobSpec`` reads it, into KB
(:func:`memory`); a layer that gives none takes its primary service's minimum
(the first of its services that exists, else ``default``), as in Cuebot.
Names are conformed as Cuebot's ``JobSpec`` does; a job lands in its show's
root group, PENDING, with every frame WAITING (or DEPEND), and then the show's
filters run on it, as Cuebot's launcher runs them.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from opencue_proto import job_pb2

from opencue_gateway.sandbox import errors, filtering
from opencue_gateway.sandbox.admin_records import Limit, Service
from opencue_gateway.sandbox.farm import NAME_PATTERN, Farm, conform_name, whole_cores
from opencue_gateway.sandbox.records import Job, Layer, Show
from opencue_gateway.sandbox.search import frame_set
from opencue_gateway.sandbox.units import KB_PER_GIB, KB_PER_MIB, gib

# Cuebot's dispatcher.memory.mem_reserved_min: a layer asking for less gets this, in KB.
MIN_LAYER_MEMORY = 262144
# Cuebot's dispatcher.memory.mem_gpu_reserved_max (100 GiB): a layer asking for more
# GPU memory, like one whose figure does not read, gets the minimum, 0.
MAX_LAYER_GPU_MEMORY = gib(100)
DEFAULT_SERVICE = "default"
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
    """A spec memory value in KB, read as Cuebot's ``JobSpec.convertMemoryInput`` reads it.

    ``512m`` and ``1.5m`` are megabytes; ``4g`` is whole gigabytes, and so is a
    bare number (``4`` is 4 GiB, not 4 KB).  Raises ValueError when it does not read.
    """
    value = text.strip().lower()
    if "m" in value:
        return int(float(value[: value.rindex("m")]) * KB_PER_MIB)
    if "g" in value:
        return int(value[: value.rindex("g")]) * KB_PER_GIB
    return int(value) * KB_PER_GIB


def gpu_memory(text: str) -> int:
    """A spec GPU memory value in KB; over 100 GiB or unreadable, 0, as Cuebot falls back."""
    try:
        value = memory(text)
    except ValueError:
        return 0
    return value if value <= MAX_LAYER_GPU_MEMORY else 0


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
        log_dir=f"{farm.log_dir(show.name, header.shot)}/{name}", start_time=farm.now(),
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
    gpu_text = _text(tag, "gpu_memory", "") or _text(tag, "gpu", "")
    limits = [farm.named(Limit, _limit_name(t)).name for t in tag.iter("limit")]
    named = list(dict.fromkeys(filter(None, ((s.text or "").strip() for s in tag.iter("service")))))
    primary = _primary_service(farm, job.show, named)
    services = named if primary.name in named else [*named, primary.name]
    layer = farm.add_layer(
        Layer(
            id=farm.new_id(), name=name, job=job,
            type=_LAYER_TYPES.get(tag.get("type", "render").lower(), job_pb2.RENDER),
            range=spec_range, min_cores=cores, max_cores=0.0,
            min_memory=(
                max(memory(memory_text), MIN_LAYER_MEMORY) if memory_text else primary.min_memory
            ),
            min_gpu_memory=gpu_memory(gpu_text) if gpu_text else primary.min_gpu_memory,
            dispatch_order=order, chunk_size=chunk, command=_text(tag, "cmd", ""),
            is_threadable=_flag(tag, "threadable"),
            min_gpus=float(_text(tag, "gpus", "0")),
            tags=_text(tag, "tags", "general").replace("|", " ").split(),
            services=services, limits=limits,
        ),
        ((farm.new_id(), n) for n in sorted(frame_set(spec_range))[::chunk]),
    )
    return layer


def _primary_service(farm: Farm, show: Show, names: list[str]) -> Service:
    """The first of ``names`` that is a service (the show's override first), else ``default``."""
    for name in [*names, DEFAULT_SERVICE]:
        for owner in (show, None):
            with contextlib.suppress(errors.EmptyResultError):
                return farm.named(Service, name, lambda s, owner=owner: s.show is owner)
    raise errors.EmptyResultError()


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
