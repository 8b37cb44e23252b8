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

import contextlib
import gc
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from opencue_proto import job_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.admin_records import Allocation, Subscription
from opencue_gateway.sandbox.farm import DEFAULT_LOG_ROOT, Farm
from opencue_gateway.sandbox.records import Host, Job, Layer, Show
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
    with building():
        now = farm.now()
        allocation = farm.get(Allocation, seed.ALLOCATION_ID)
        for number in range(1, spec.shows + 1):
            show = add_show(farm, allocation, f"show{number:03d}", spec.hosts)
            for job_number in range(1, spec.jobs_per_show + 1):
                job = add_job(farm, rng, show, job_number, now - rng.randrange(0, 3600))
                for order in range(spec.layers_per_job):
                    add_layer(farm, rng, job, order, spec.frames_per_layer)
        for number in range(1, spec.hosts + 1):
            add_host(farm, rng, allocation, f"host{number:04d}")
    return farm


@contextlib.contextmanager
def building() -> Iterator[None]:
    """Pause the cyclic garbage collector while a farm is made, then freeze what was made."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
    gc.freeze()


def add_show(farm: Farm, allocation: Allocation, name: str, hosts: int) -> Show:
    """A show with its root group, subscribed to ``allocation`` for ``hosts`` hosts' worth."""
    show = farm.create_show(name)
    show.default_max_cores = 2000.0
    farm.register(Subscription(
        id=farm.new_id(), show=show, allocation=allocation, size=100 * 100 * hosts,
        burst=200 * 100 * hosts,
    ))
    return show


def add_job(farm: Farm, rng: random.Random, show: Show, number: int, launched: int) -> Job:
    """A pending job of ``show``'s root group by a random user on a random shot."""
    user = rng.choice(USERS)
    shot = f"sh{rng.randrange(1, 100):03d}"
    return farm.add_job(Job(
        id=farm.new_id(), name=f"{show.name}-{shot}-{user}_job{number:03d}", show=show,
        group=show.root, shot=shot, user=user, facility=seed.FACILITY_NAME, os="linux",
        priority=rng.choice((1, 10, 50, 100)), min_cores=1.0, max_cores=200.0,
        log_dir=farm.log_dir(show.name, shot), start_time=launched,
    ))


def add_layer(farm: Farm, rng: random.Random, job: Job, order: int, frames: int) -> Layer:
    """A layer of ``frames`` frames, their ids derived from the layer's."""
    kind = LAYER_KINDS[order % len(LAYER_KINDS)]
    name = kind if order < len(LAYER_KINDS) else f"{kind}{order}"
    layer = Layer(
        id=farm.new_id(), name=name, job=job, type=job_pb2.RENDER, range=f"1-{frames}",
        min_cores=float(rng.choice((1, 1, 2, 4))), max_cores=0.0,
        min_memory=gib(rng.choice((2, 4, 8))), dispatch_order=order,
        tags=["general"], services=["default"], command=f"render --layer {name} -f #IFRAME#",
    )
    return farm.add_numbered_layer(layer, range(1, frames + 1))


def add_host(
    farm: Farm, rng: random.Random, allocation: Allocation, name: str,
    shapes: tuple[tuple[int, int], ...] = HOST_SHAPES,
) -> Host:
    """An open, up render host in ``allocation``, of one of ``shapes`` (cores, GiB)."""
    cores, memory = rng.choice(shapes)
    now = farm.now()
    return farm.add_host(Host(
        id=farm.new_id(), name=name, alloc_name=allocation.name, cores=float(cores),
        memory=gib(memory), total_memory=gib(memory), free_memory=gib(memory),
        total_swap=gib(SWAP_GIB), free_swap=gib(SWAP_GIB), total_mcp=gib(MCP_GIB),
        free_mcp=gib(MCP_GIB), gpus=0.0, gpu_memory=0, boot_time=now - 86400, ping_time=now,
        os="linux", tags=["general"],
    ))


def generated_farm(clock: Callable[[], float] = time.time, log_root: str = DEFAULT_LOG_ROOT,
                   **spec: int) -> Farm:
    """The seed farm plus generated shows, jobs and hosts.

    Keywords are those of :class:`FarmSpec`: ``shows``, ``jobs_per_show``,
    ``layers_per_job``, ``frames_per_layer``, ``hosts`` and ``seed``.
    """
    return build(FarmSpec(**spec), clock, log_root)
