"""The README's example entities, which a fresh sandbox farm holds.

The ids and names are fixed because the documentation's curl examples use
them.  The stats follow from the entities: six WAITING frames make a pending
job with six pending frames.

Times are relative to the farm's clock when it is seeded (the sandbox's start):
the job was launched ten minutes before, its host booted three days before and
reported just now, and the proc was booked five minutes before.  Memory is in
Cuebot's KB (:mod:`.units`): the host's 64 GiB read 67,108,864.

The proc is booked on the example job but has not been given a frame yet, so
every frame stays WAITING; it reserves 4 cores and 1 GPU of the host, which
therefore has 12 idle cores and no idle GPU, and the job, its layer, group and
show each report 4 reserved cores.  The host is a NIMBY desktop because Cuebot
only lets owners hold deeds on such hosts.

Beyond the README's entities, the seed holds what a fresh Cuebot database
has and CueWeb's pages list: the ``local`` facility with its default
``local.general`` allocation (the host's), the show's subscription to it,
Cuebot's stock services, a few department names (the show's groups use
``Unknown`` and ``lighting``), and one limit.  The Proc message has no field for
the README's 8 GiB of virtual memory, so that figure is the proc's reserved
memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opencue_proto import job_pb2

from opencue_gateway.sandbox.admin_records import (
    Allocation,
    Department,
    Facility,
    Limit,
    Service,
    Subscription,
)
from opencue_gateway.sandbox.farm import DEFAULT_LOG_ROOT, Farm
from opencue_gateway.sandbox.records import Deed, Group, Host, Job, Layer, Owner, Proc, Show
from opencue_gateway.sandbox.units import gib

SHOW_ID = "00000000-0000-0000-0000-000000000000"
JOB_ID = "00000000-0000-0000-0000-000000000001"
FRAME_ID = "00000000-0000-0000-0000-000000000002"
LAYER_ID = "00000000-0000-0000-0000-000000000003"
GROUP_ID = "00000000-0000-0000-0000-000000000004"
HOST_ID = "00000000-0000-0000-0000-000000000005"
PROC_ID = "00000000-0000-0000-0000-000000000006"
DEED_ID = "00000000-0000-0000-0000-000000000007"
OWNER_ID = "00000000-0000-0000-0000-000000000008"
# Frame 1 has the README's id; frames 2 to 6 end in f2 to f6.
FRAME_IDS = [FRAME_ID] + [f"00000000-0000-0000-0000-0000000000f{n}" for n in range(2, 7)]

SHOW_NAME = "testing"
JOB_NAME = "testing-job-001"
LAYER_NAME = "layer_name"
GROUP_NAME = "default"
HOST_NAME = "render-host-001"
OWNER_NAME = "artist1"

FACILITY_ID = "00000000-0000-0000-0000-0000000000a1"
ALLOCATION_ID = "00000000-0000-0000-0000-0000000000a2"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-0000000000a3"
LIMIT_ID = "00000000-0000-0000-0000-0000000000a4"

FACILITY_NAME = "local"
ALLOCATION_NAME = "local.general"
LIMIT_NAME = "nuke_licenses"

# How long before the farm's start the README's job was launched, its host
# booted and its proc booked, in seconds.
JOB_AGE = 600
HOST_UPTIME = 3 * 86400
PROC_AGE = 300
# Cuebot's stock services: name, minimum cores (core units), threadable, minimum memory
# in KB (the figures of Cuebot's seed_data.sql; blender, which it lacks, as maya).  Each
# raises a frame's memory by 2 GiB after an out-of-memory kill (the column's default).
SERVICES = (
    ("default", 100, False, 3355443),
    ("prman", 100, False, 3355443),
    ("arnold", 100, True, 3355443),
    ("maya", 100, False, gib(2)),
    ("nuke", 100, False, gib(2)),
    ("blender", 100, True, gib(2)),
)
DEPARTMENT_NAMES = ("Unknown", "animation", "comp", "fx", "lighting", "modeling")


def populate(farm: Farm) -> None:
    """Add the README's entities, then the facility, services and departments around them."""
    show = populate_readme(farm)
    populate_admin(farm, show)


def populate_admin(farm: Farm, show: Show) -> None:
    """Add the facility and allocation, subscription, services, departments and limit."""
    facility = farm.register(Facility(id=FACILITY_ID, name=FACILITY_NAME))
    allocation = farm.register(
        Allocation(id=ALLOCATION_ID, name=ALLOCATION_NAME, tag="general", facility=facility)
    )
    farm.default_allocation_id = allocation.id
    farm.register(
        Subscription(id=SUBSCRIPTION_ID, show=show, allocation=allocation, size=10000,
                     burst=20000)
    )
    for name, cores, threadable, memory in SERVICES:
        farm.register(Service(
            id=farm.new_id(), name=name, min_cores=cores, threadable=threadable,
            min_memory=memory, min_memory_increase=gib(2), tags=["general"],
        ))
    for name in DEPARTMENT_NAMES:
        farm.department_names[name] = farm.new_id()
    for group in show.groups.values():
        if not any(d.name == group.department for d in farm.all(Department)):
            farm.register(Department(
                id=farm.new_id(), name=group.department,
                dept_id=farm.department_names[group.department], show=show,
            ))
    farm.register(Limit(id=LIMIT_ID, name=LIMIT_NAME, max_value=10))


def populate_readme(farm: Farm) -> Show:
    """Add the README's show, group, job, layer, frames, host, proc, owner and deed."""
    now = farm.now()
    show = farm.add_show(
        Show(
            id=SHOW_ID, name=SHOW_NAME, default_min_cores=1.0, default_max_cores=2000.0,
            default_min_gpus=100.0, default_max_gpus=100000.0,
        )
    )
    group = farm.add_group(
        Group(
            id=GROUP_ID, name=GROUP_NAME, show=show, department="lighting",
            default_job_priority=100, default_job_min_cores=1.0, default_job_max_cores=10.0,
        )
    )
    job = farm.add_job(
        Job(
            id=JOB_ID, name=JOB_NAME, show=show, group=group, shot="shot001", user="artist1",
            facility="cloud", os="linux", priority=100, min_cores=1.0, max_cores=10.0,
            log_dir=farm.log_dir(SHOW_NAME, "shot001"), start_time=now - JOB_AGE,
        )
    )
    layer = farm.add_layer(
        Layer(
            id=LAYER_ID, name=LAYER_NAME, job=job, type=job_pb2.RENDER, range="1-6",
            min_cores=1.0, max_cores=10.0, min_memory=gib(2), dispatch_order=0,
            tags=["general"], services=["default"],
        ),
        zip(FRAME_IDS, range(1, 7), strict=True),
    )
    host = farm.add_host(
        Host(
            id=HOST_ID, name=HOST_NAME, alloc_name="local.general", cores=16.0,
            memory=gib(64), total_memory=gib(64), free_memory=gib(32),
            total_swap=gib(8), free_swap=gib(7), total_mcp=gib(100), free_mcp=gib(80),
            gpus=1.0, gpu_memory=gib(8), total_gpu_memory=gib(8), free_gpu_memory=gib(8),
            boot_time=now - HOST_UPTIME, ping_time=now, os="linux", nimby_enabled=True,
            tags=["general"],
        )
    )
    farm.add_proc(
        Proc(
            id=PROC_ID, host=host, job=job, layer=layer, reserved_cores=4.0,
            reserved_memory=gib(8), used_memory=gib(2), reserved_gpus=1.0,
            log_path="/tmp/rqd/logs/proc-001.log", booked_time=now - PROC_AGE,
        )
    )
    owner = farm.add_owner(Owner(id=OWNER_ID, name=OWNER_NAME, show=show))
    farm.add_deed(Deed(id=DEED_ID, owner=owner, host=host))
    return show


def seeded_farm(clock: Callable[[], float] = time.time, log_root: str = DEFAULT_LOG_ROOT) -> Farm:
    """A farm holding the README's example entities."""
    farm = Farm(clock, log_root=log_root)
    populate(farm)
    return farm
