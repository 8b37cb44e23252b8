"""Farms of any size for benchmarks and demos: the seed plus generated shows, jobs and hosts.

:func:`build` adds, to the README's seed farm, ``shows`` shows named
``show001``..., each subscribed to the ``local.general`` allocation and
holding ``jobs_per_show`` pending jobs of ``layers_per_job`` layers of
``frames_per_layer`` WAITING frames (numbered from 1), and ``hosts`` open,
up render hosts named ``host0001``... in ``local.general``.  Users, shots,
priorities, core and memory needs, and host sizes are drawn from a
``random.Random(seed)``, and so are the ids: the same spec always builds the
same farm, ids included.

Frames are made in bulk, with ids derived from their layer's
(:meth:`Farm.add_numbered_layer`), and the cyclic garbage collector is paused
while they are made (otherwise it would walk the growing heap again and
again): a farm of 100 jobs x 10 layers x 1,000 frames builds in a few
seconds.  The new records are then moved to the collector's permanent
generation (``gc.freeze``), or the first collections after the build would
each walk a million frames, a pause of seconds; the farm lives as long as the
process anyway (a test that drops one calls ``gc.unfreeze()``).
"""

from __future__ import annotations

import gc
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from opencue_proto import job_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.admin_records import Allocation, Subscription
from opencue_gateway.sandbox.farm import DEFAULT_LOG_ROOT, Farm
from opencue_gateway.sandbox.records import Host, Job, Layer
from opencue_gateway.sandbox.units import gib

LAYER_KINDS = ("render", "comp", "fx", "lighting", "prep", "denoise", "cache", "bake")
USERS = ("artist1", "artist2", "lighter", "comper", "animator", "fxtd")
HOST_SHAPES = ((8, 32), (16, 64), (32, 128), (64, 256))  # cores, memory in GiB
# Every generated host's swap and scratch disk (/mcp), in GiB.
SWAP_GIB = 16
MCP_GIB = 200


@dataclass(frozen=True, slots=True)
class FarmSpec:
    """How big a generated farm is, and the seed that makes it reproducible."""

    shows: int = 1
    jobs_per_show: int = 10
    layers_per_job: int = 3
    frames_per_layer: int = 100
    hosts: int = 10
    seed: int = 0


def seeded_ids(rng: random.Random) -> Callable[[], str]:
    """An id factory drawing version-4 UUIDs from ``rng``."""
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


def build(
    spec: FarmSpec, clock: Callable[[], float] = time.time, log_root: str = DEFAULT_LOG_ROOT
) -> Farm:
    """The seed farm plus the shows, jobs and hosts ``spec`` asks for."""
    rng = random.Random(spec.seed)
    farm = Farm(clock, ids=seeded_ids(rng), log_root=log_root)
    seed.populate(farm)
    collecting = gc.isenabled()
    gc.disable()
    try:
        with farm.lock:
            allocation = farm.get(Allocation, seed.ALLOCATION_ID)
            for number in range(1, spec.shows + 1):
                _show(farm, rng, spec, allocation, f"show{number:03d}")
            for number in range(1, spec.hosts + 1):
                _host(farm, rng, allocation, f"host{number:04d}")
    finally:
        if collecting:
            gc.enable()
    gc.freeze()
    return farm


def _show(
    farm: Farm, rng: random.Random, spec: FarmSpec, allocation: Allocation, name: str
) -> None:
    """A show with its root group and jobs, subscribed to ``allocation``."""
    show = farm.create_show(name)
    show.default_max_cores = 2000.0
    root = show.root
    farm.register(Subscription(
        id=farm.new_id(), show=show, allocation=allocation, size=100 * 100 * spec.hosts,
        burst=200 * 100 * spec.hosts,
    ))
    now = farm.now()
    for number in range(1, spec.jobs_per_show + 1):
        user = rng.choice(USERS)
        shot = f"sh{rng.randrange(1, 100):03d}"
        job = farm.add_job(Job(
            id=farm.new_id(), name=f"{name}-{shot}-{user}_job{number:03d}", show=show,
            group=root, shot=shot, user=user, facility=seed.FACILITY_NAME, os="linux",
            priority=rng.choice((1, 10, 50, 100)), min_cores=1.0, max_cores=200.0,
            log_dir=farm.log_dir(name, shot), start_time=now - rng.randrange(0, 3600),
        ))
        for order in range(spec.layers_per_job):
            _layer(farm, rng, spec, job, order)


def _layer(farm: Farm, rng: random.Random, spec: FarmSpec, job: Job, order: int) -> None:
    """A layer of ``spec.frames_per_layer`` frames, their ids derived from the layer's."""
    kind = LAYER_KINDS[order % len(LAYER_KINDS)]
    name = kind if order < len(LAYER_KINDS) else f"{kind}{order}"
    count = spec.frames_per_layer
    layer = Layer(
        id=farm.new_id(), name=name, job=job, type=job_pb2.RENDER, range=f"1-{count}",
        min_cores=float(rng.choice((1, 1, 2, 4))), max_cores=0.0,
        min_memory=gib(rng.choice((2, 4, 8))), dispatch_order=order,
        tags=["general"], services=["default"], command=f"render --layer {name} -f #IFRAME#",
    )
    farm.add_numbered_layer(layer, range(1, count + 1))


def _host(farm: Farm, rng: random.Random, allocation: Allocation, name: str) -> Host:
    """An open, up render host of a random size in ``allocation``."""
    cores, memory = rng.choice(HOST_SHAPES)
    now = farm.now()
    return farm.add_host(Host(
        id=farm.new_id(), name=name, alloc_name=allocation.name, cores=float(cores),
        memory=gib(memory), total_memory=gib(memory), free_memory=gib(memory),
        total_swap=gib(SWAP_GIB), free_swap=gib(SWAP_GIB), total_mcp=gib(MCP_GIB),
        free_mcp=gib(MCP_GIB), gpus=0.0, gpu_memory=0, boot_time=now - 86400, ping_time=now,
        os="linux",
        tags=["general"],
    ))
