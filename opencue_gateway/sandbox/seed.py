"""The README's example entities, which a fresh sandbox farm holds.

The ids and names are fixed because the documentation's curl examples use
them.  The stats follow from the entities: six WAITING frames make a pending
job with six pending frames.

The proc is booked on the example job but has not been given a frame yet, so
every frame stays WAITING; it reserves 4 cores and 1 GPU of the host, which
therefore has 12 idle cores and no idle GPU, and the job, its layer, group and
show each report 4 reserved cores.  The host is a NIMBY desktop because Cuebot
only lets owners hold deeds on such hosts.  The Proc message has no field for
the README's 8 GiB of virtual memory, so that figure is the proc's reserved
memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opencue_proto import job_pb2

from opencue_gateway.sandbox.records import Deed, Group, Host, Job, Layer, Owner, Proc, Show

if TYPE_CHECKING:
    from opencue_gateway.sandbox.farm import Farm

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

EPOCH = 1694000000
GIB = 1024**3


def populate(farm: Farm) -> None:
    """Add the README's show, group, job, layer, frames, host, proc, owner and deed."""
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
            log_dir="/shots/testing/shot001/logs", start_time=EPOCH,
        )
    )
    layer = farm.add_layer(
        Layer(
            id=LAYER_ID, name=LAYER_NAME, job=job, type=job_pb2.RENDER, range="1-6",
            min_cores=1.0, max_cores=10.0, min_memory=2 * GIB, dispatch_order=0,
            tags=["general"], services=["default"],
        ),
        zip(FRAME_IDS, range(1, 7), strict=True),
    )
    host = farm.add_host(
        Host(
            id=HOST_ID, name=HOST_NAME, alloc_name="local.general", cores=16.0,
            memory=64 * GIB, total_memory=64 * GIB, free_memory=32 * GIB,
            gpus=1.0, gpu_memory=8 * GIB, total_gpu_memory=8 * GIB, free_gpu_memory=8 * GIB,
            boot_time=EPOCH, ping_time=EPOCH + 1000, os="linux", nimby_enabled=True,
            tags=["general"],
        )
    )
    farm.add_proc(
        Proc(
            id=PROC_ID, host=host, job=job, layer=layer, reserved_cores=4.0,
            reserved_memory=8 * GIB, used_memory=2 * GIB, reserved_gpus=1.0,
            log_path="/tmp/rqd/logs/proc-001.log", booked_time=EPOCH + 1000,
        )
    )
    owner = farm.add_owner(Owner(id=OWNER_ID, name=OWNER_NAME, show=show))
    farm.add_deed(Deed(id=DEED_ID, owner=owner, host=host))
