"""``job.LayerInterface``: one layer's frames, depends, limits and resource settings.

ManageLayer catches no lookup failure, so an unknown layer escapes as the
lookup's exception (NOT_FOUND here, see :func:`errors.uncaught`).  Minimum
cores are kept in core units' precision, maximum cores in whole cores, as
``Convert`` does in each setter.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import job_pb2, renderPartition_pb2

from opencue_gateway.sandbox import errors, messages, ordering, search
from opencue_gateway.sandbox.admin_records import Limit
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm, whole_cores
from opencue_gateway.sandbox.records import Layer
from opencue_gateway.sandbox.rpc_local import book_local
from opencue_gateway.sandbox.rpc_registry import depend_queries, frame_seq, rpc

# SetStartAfter accepts at most this far ahead (ManageLayer's five years).
START_AFTER_MAX_AHEAD = 5 * 365 * 24 * 3600
START_AFTER_REASON_MAX_LENGTH = 255


def _layer(farm: Farm, message: job_pb2.Layer) -> Layer:
    """The layer a Layer message names by id."""
    return farm.layer(message.id)


def layers_holding(farm: Farm, name: str) -> list[Layer]:
    """The layers that hold a limit, by limit name (layers name their limits, not the reverse)."""
    return [
        layer for job in farm.jobs() for layer in job.layers.values() if name in layer.limits
    ]


def running_with_limit(farm: Farm, limit: Limit) -> int:
    """Running frames of layers that hold a limit (its ``current_running``)."""
    return sum(layer.counts[job_pb2.RUNNING] for layer in layers_holding(farm, limit.name))


@rpc("/job.LayerInterface/GetLayer")
def get_layer(farm: Farm, request: job_pb2.LayerGetLayerRequest) -> Message:
    """A layer by id."""
    with not_found():
        layer = farm.layer(request.id)
    return job_pb2.LayerGetLayerResponse(layer=messages.layer(layer))


@rpc("/job.LayerInterface/FindLayer")
def find_layer(farm: Farm, request: job_pb2.LayerFindLayerRequest) -> Message:
    """A layer of a pending job by job and layer names."""
    with not_found():
        layer = farm.find_layer(request.job, request.layer)
    return job_pb2.LayerFindLayerResponse(layer=messages.layer(layer))


@rpc("/job.LayerInterface/GetFrames")
def get_layer_frames(farm: Farm, request: job_pb2.LayerGetFramesRequest) -> Message:
    """One page of a layer's frames matching the criteria."""
    frames = search.frame_page([_layer(farm, request.layer)], request.s, farm.now())
    return job_pb2.LayerGetFramesResponse(frames=frame_seq(frames))


@rpc("/job.LayerInterface/EatFrames")
def eat_layer_frames(farm: Farm, request: job_pb2.LayerEatFramesRequest) -> Message:
    """Eat every frame of a layer."""
    farm.eat_frames(_layer(farm, request.layer).frames)
    return job_pb2.LayerEatFramesResponse()


@rpc("/job.LayerInterface/RetryFrames")
def retry_layer_frames(farm: Farm, request: job_pb2.LayerRetryFramesRequest) -> Message:
    """Retry every frame of a layer."""
    farm.retry_frames(_layer(farm, request.layer).frames)
    return job_pb2.LayerRetryFramesResponse()


@rpc("/job.LayerInterface/KillFrames")
def kill_layer_frames(farm: Farm, request: job_pb2.LayerKillFramesRequest) -> Message:
    """Kill the running frames of a layer."""
    farm.kill_frames(_layer(farm, request.layer).frames)
    return job_pb2.LayerKillFramesResponse()


@rpc("/job.LayerInterface/MarkdoneFrames")
def markdone_frames(farm: Farm, request: job_pb2.LayerMarkdoneFramesRequest) -> Message:
    """Release whatever waits on the layer or its frames, as if it had finished."""
    for depend in farm.depends.what_depends_on(_layer(farm, request.layer)):
        farm.depends.satisfy(depend)
    return job_pb2.LayerMarkdoneFramesResponse()


@rpc("/job.LayerInterface/ReorderFrames")
def reorder_layer_frames(farm: Farm, request: job_pb2.LayerReorderFramesRequest) -> Message:
    """Move frames to the front or back of the layer, or reverse them."""
    ordering.reorder(_layer(farm, request.layer), request.range, request.order)
    return job_pb2.LayerReorderFramesResponse()


@rpc("/job.LayerInterface/StaggerFrames")
def stagger_layer_frames(farm: Farm, request: job_pb2.LayerStaggerFramesRequest) -> Message:
    """Stagger frames of the layer."""
    ordering.stagger(_layer(farm, request.layer), request.range, request.stagger)
    return job_pb2.LayerStaggerFramesResponse()


@rpc("/job.LayerInterface/SetTags")
def set_tags(farm: Farm, request: job_pb2.LayerSetTagsRequest) -> Message:
    """Replace the layer's host tags (a set, as Cuebot stores it)."""
    _layer(farm, request.layer).tags = sorted(set(request.tags))
    return job_pb2.LayerSetTagsResponse()


@rpc("/job.LayerInterface/SetMinCores")
def set_min_cores(farm: Farm, request: job_pb2.LayerSetMinCoresRequest) -> Message:
    """Set the cores each frame of the layer books."""
    _layer(farm, request.layer).min_cores = round(request.cores, 2)
    return job_pb2.LayerSetMinCoresResponse()


@rpc("/job.LayerInterface/SetMaxCores")
def set_max_cores(farm: Farm, request: job_pb2.LayerSetMaxCoresRequest) -> Message:
    """Set the most cores a frame of the layer may book."""
    _layer(farm, request.layer).max_cores = whole_cores(request.cores)
    return job_pb2.LayerSetMaxCoresResponse()


@rpc("/job.LayerInterface/SetMinGpus")
def set_min_gpus(farm: Farm, request: job_pb2.LayerSetMinGpusRequest) -> Message:
    """Set the GPUs each frame of the layer books."""
    _layer(farm, request.layer).min_gpus = float(request.min_gpus)
    return job_pb2.LayerSetMinGpusResponse()


@rpc("/job.LayerInterface/SetMaxGpus")
def set_max_gpus(farm: Farm, request: job_pb2.LayerSetMaxGpusRequest) -> Message:
    """Set the most GPUs a frame of the layer may book."""
    _layer(farm, request.layer).max_gpus = float(request.max_gpus)
    return job_pb2.LayerSetMaxGpusResponse()


@rpc("/job.LayerInterface/SetMinMemory")
def set_min_memory(farm: Farm, request: job_pb2.LayerSetMinMemoryRequest) -> Message:
    """Set the memory each frame of the layer books."""
    _layer(farm, request.layer).min_memory = request.memory
    return job_pb2.LayerSetMinMemoryResponse()


@rpc("/job.LayerInterface/SetMinGpuMemory")
def set_min_gpu_memory(farm: Farm, request: job_pb2.LayerSetMinGpuMemoryRequest) -> Message:
    """Set the GPU memory each frame of the layer books."""
    _layer(farm, request.layer).min_gpu_memory = request.gpu_memory
    return job_pb2.LayerSetMinGpuMemoryResponse()


@rpc("/job.LayerInterface/SetThreadable")
def set_threadable(farm: Farm, request: job_pb2.LayerSetThreadableRequest) -> Message:
    """Say whether a frame of the layer can use more than its minimum cores."""
    _layer(farm, request.layer).is_threadable = request.threadable
    return job_pb2.LayerSetThreadableResponse()


@rpc("/job.LayerInterface/SetTimeout")
def set_timeout(farm: Farm, request: job_pb2.LayerSetTimeoutRequest) -> Message:
    """Set the layer's frame timeout, in minutes."""
    _layer(farm, request.layer).timeout = request.timeout
    return job_pb2.LayerSetTimeoutResponse()


@rpc("/job.LayerInterface/SetTimeoutLLU")
def set_timeout_llu(farm: Farm, request: job_pb2.LayerSetTimeoutLLURequest) -> Message:
    """Set the layer's timeout since the log was last updated, in minutes."""
    _layer(farm, request.layer).timeout_llu = request.timeout_llu
    return job_pb2.LayerSetTimeoutLLUResponse()


@rpc("/job.LayerInterface/SetDispatchOrder")
def set_dispatch_order(farm: Farm, request: job_pb2.LayerSetDispatchOrderRequest) -> Message:
    """Set where the layer comes in its job's dispatch order."""
    _layer(farm, request.layer).dispatch_order = request.order
    return job_pb2.LayerSetDispatchOrderResponse()


@rpc("/job.LayerInterface/EnableMemoryOptimizer")
def enable_memory_optimizer(
    farm: Farm, request: job_pb2.LayerEnableMemoryOptimizerRequest
) -> Message:
    """Turn the memory optimizer on or off for the layer."""
    _layer(farm, request.layer).memory_optimizer_enabled = request.value
    return job_pb2.LayerEnableMemoryOptimizerResponse()


@rpc("/job.LayerInterface/SetStartAfter")
def set_start_after(farm: Farm, request: job_pb2.LayerSetStartAfterRequest) -> Message:
    """Hold the layer's frames until a time (0 clears the gate); seconds, not milliseconds."""
    value = request.start_after
    if value < 0 or value > farm.now() + START_AFTER_MAX_AHEAD:
        raise errors.bad_start_after(value)
    layer = _layer(farm, request.layer)
    layer.start_after = value
    reason = f"Set by {request.username or 'unknown'}"[:START_AFTER_REASON_MAX_LENGTH]
    layer.start_after_reason = reason if value else ""
    return job_pb2.LayerSetStartAfterResponse()


@rpc("/job.LayerInterface/GetOutputPaths")
def get_output_paths(farm: Farm, request: job_pb2.LayerGetOutputPathsRequest) -> Message:
    """The output paths registered for the layer."""
    return job_pb2.LayerGetOutputPathsResponse(
        output_paths=_layer(farm, request.layer).output_paths
    )


@rpc("/job.LayerInterface/RegisterOutputPath")
def register_output_path(farm: Farm, request: job_pb2.LayerRegisterOutputPathRequest) -> Message:
    """Register an output path for the layer."""
    _layer(farm, request.layer).output_paths.append(request.spec)
    return job_pb2.LayerRegisterOutputPathResponse()


@rpc("/job.LayerInterface/GetLimits")
def get_limits(farm: Farm, request: job_pb2.LayerGetLimitsRequest) -> Message:
    """The limits the layer holds."""
    layer = _layer(farm, request.layer)
    limits = [farm.named(Limit, name) for name in layer.limits]
    return job_pb2.LayerGetLimitsResponse(
        limits=[messages.limit(limit, running_with_limit(farm, limit)) for limit in limits]
    )


@rpc("/job.LayerInterface/AddLimit")
def add_limit(farm: Farm, request: job_pb2.LayerAddLimitRequest) -> Message:
    """Make the layer hold a limit, by limit id."""
    layer, limit = _layer(farm, request.layer), farm.get(Limit, request.limit_id)
    if limit.name not in layer.limits:
        layer.limits.append(limit.name)
    return job_pb2.LayerAddLimitResponse()


@rpc("/job.LayerInterface/DropLimit")
def drop_limit(farm: Farm, request: job_pb2.LayerDropLimitRequest) -> Message:
    """Stop the layer holding a limit, by limit id."""
    layer, limit = _layer(farm, request.layer), farm.get(Limit, request.limit_id)
    if limit.name in layer.limits:
        layer.limits.remove(limit.name)
    return job_pb2.LayerDropLimitResponse()


@rpc("/job.LayerInterface/CreateDependencyOnJob")
def layer_on_job(farm: Farm, request: job_pb2.LayerCreateDependOnJobRequest) -> Message:
    """Make a layer wait for a job."""
    depend = farm.depends.create(_layer(farm, request.layer), farm.job(request.job.id))
    return job_pb2.LayerCreateDependOnJobResponse(depend=messages.depend(depend))


@rpc("/job.LayerInterface/CreateDependencyOnLayer")
def layer_on_layer(farm: Farm, request: job_pb2.LayerCreateDependOnLayerRequest) -> Message:
    """Make a layer wait for another layer."""
    on = farm.layer(request.depend_on_layer.id)
    depend = farm.depends.create(_layer(farm, request.layer), on)
    return job_pb2.LayerCreateDependOnLayerResponse(depend=messages.depend(depend))


@rpc("/job.LayerInterface/CreateDependencyOnFrame")
def layer_on_frame(farm: Farm, request: job_pb2.LayerCreateDependOnFrameRequest) -> Message:
    """Make a layer wait for a frame."""
    depend = farm.depends.create(_layer(farm, request.layer), farm.frame(request.frame.id))
    return job_pb2.LayerCreateDependOnFrameResponse(depend=messages.depend(depend))


@rpc("/job.LayerInterface/CreateFrameByFrameDependency")
def frame_by_frame(farm: Farm, request: job_pb2.LayerCreateFrameByFrameDependRequest) -> Message:
    """Make each frame of a layer wait for the same frame number of another layer."""
    depend = farm.depends.create_frame_by_frame(
        _layer(farm, request.layer), farm.layer(request.depend_layer.id), request.any_frame
    )
    return job_pb2.LayerCreateFrameByFrameDependResponse(depend=messages.depend(depend))


depend_queries(
    "/job.LayerInterface",
    lambda farm, request: _layer(farm, request.layer),
    job_pb2.LayerGetWhatThisDependsOnResponse,
    job_pb2.LayerGetWhatDependsOnThisResponse,
    job_pb2.LayerDropDependsResponse,
)


@rpc("/job.LayerInterface/AddRenderPartition")
def add_layer_render_partition(
    farm: Farm, request: job_pb2.LayerAddRenderPartitionRequest
) -> Message:
    """Set a host's resources aside for the layer (local booking)."""
    layer = _layer(farm, request.layer)
    partition = book_local(
        farm, request, layer.job, renderPartition_pb2.LAYER_PARTITION, layer=layer
    )
    return job_pb2.LayerAddRenderPartitionResponse(render_partition=partition)
