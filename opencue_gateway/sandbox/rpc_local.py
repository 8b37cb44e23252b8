"""Local booking: render partitions that set a host's resources aside for a job.

``AddRenderPartition`` on a job, layer or frame records the partition when the
named host exists and has the asked cores and memory idle; otherwise Cuebot's
answer is INTERNAL "Failed to find suitable frames.".  Partitions are listed by
``HostInterface.GetRenderPartitions`` and changed through
``renderPartition.RenderPartitionInterface``.  The sandbox does not dispatch
frames onto partitions.
"""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message
from opencue_proto import host_pb2, renderPartition_pb2

from opencue_gateway.sandbox import errors, messages
from opencue_gateway.sandbox.admin_records import RenderPartition
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Frame, Job, Layer
from opencue_gateway.sandbox.rpc_registry import rpc


class LocalBookingRequest(Protocol):
    """The fields every Add*RenderPartition request carries."""

    host: str
    threads: int
    max_cores: int
    max_memory: int
    max_gpu_memory: int
    max_gpus: int


def book_local(
    farm: Farm, request: LocalBookingRequest, job: Job, kind: int,
    layer: Layer | None = None, frame: Frame | None = None,
) -> renderPartition_pb2.RenderPartition:
    """Record a partition of ``request.host`` for a job, layer or frame."""
    try:
        host = farm.find_host(request.host)
    except errors.EmptyResultError:
        raise errors.no_suitable_frames() from None
    if host.idle_cores < request.max_cores or host.idle_memory < request.max_memory:
        raise errors.no_suitable_frames()
    partition = farm.register(RenderPartition(
        id=farm.new_id(), host=host, job=job, layer=layer, frame=frame, type=kind,
        threads=request.threads, max_cores=request.max_cores, max_memory=request.max_memory,
        max_gpu_memory=request.max_gpu_memory, max_gpus=request.max_gpus,
    ))
    return messages.render_partition(partition)


@rpc("/host.HostInterface/GetRenderPartitions")
def get_render_partitions(farm: Farm, request: host_pb2.HostGetRenderPartitionsRequest) -> Message:
    """The partitions set aside on a host."""
    host = farm.host(request.host.id)
    partitions = [p for p in farm.all(RenderPartition) if p.host is host]
    return host_pb2.HostGetRenderPartitionsResponse(
        render_partitions=renderPartition_pb2.RenderPartitionSeq(
            render_partitions=[messages.render_partition(p) for p in partitions]
        )
    )


@rpc("/renderPartition.RenderPartitionInterface/Delete")
def delete_render_partition(
    farm: Farm, request: renderPartition_pb2.RenderPartDeleteRequest
) -> Message:
    """Give a partition's resources back."""
    farm.unregister(farm.get(RenderPartition, request.render_partition.id))
    return renderPartition_pb2.RenderPartDeleteResponse()


@rpc("/renderPartition.RenderPartitionInterface/SetMaxResources")
def set_max_resources(
    farm: Farm, request: renderPartition_pb2.RenderPartSetMaxResourcesRequest
) -> Message:
    """Change what a partition may use."""
    partition = farm.get(RenderPartition, request.render_partition.id)
    partition.max_cores, partition.max_memory = request.cores, request.memory
    partition.max_gpu_memory, partition.max_gpus = request.gpu_memory, request.gpus
    return renderPartition_pb2.RenderPartSetMaxResourcesResponse()
