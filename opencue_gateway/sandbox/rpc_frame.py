"""``job.FrameInterface``: one frame's state, depends and display overrides.

ManageFrame catches lookup failures only in GetFrame and FindFrame; elsewhere
an unknown frame escapes as the lookup's exception (NOT_FOUND here, see
:func:`errors.uncaught`).
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import job_pb2, renderPartition_pb2

from opencue_gateway.sandbox import messages, search
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Frame
from opencue_gateway.sandbox.rpc_local import book_local
from opencue_gateway.sandbox.rpc_registry import depend_queries, frame_seq, layers_of, rpc


def _frame(farm: Farm, message: job_pb2.Frame) -> Frame:
    """The frame a Frame message names by id."""
    return farm.frame(message.id)


@rpc("/job.FrameInterface/GetFrame")
def get_frame(farm: Farm, request: job_pb2.FrameGetFrameRequest) -> Message:
    """A frame by id."""
    with not_found():
        frame = farm.frame(request.id)
    return job_pb2.FrameGetFrameResponse(frame=messages.frame(frame))


@rpc("/job.FrameInterface/FindFrame")
def find_frame(farm: Farm, request: job_pb2.FrameFindFrameRequest) -> Message:
    """A frame of a pending job by job name, layer name and number."""
    with not_found():
        frame = farm.find_frame(request.job, request.layer, request.frame)
    return job_pb2.FrameFindFrameResponse(frame=messages.frame(frame))


@rpc("/job.FrameInterface/GetFrames")
def get_frames_by_job_name(farm: Farm, request: job_pb2.FrameGetFramesRequest) -> Message:
    """One page of the frames of a pending job, named, matching the criteria."""
    frames = search.frame_page(layers_of(farm.find_job(request.job)), request.r, farm.now())
    return job_pb2.FrameGetFramesResponse(frames=frame_seq(frames))


@rpc("/job.FrameInterface/Eat")
def eat_frame(farm: Farm, request: job_pb2.FrameEatRequest) -> Message:
    """Eat one frame."""
    farm.eat_frames([_frame(farm, request.frame)])
    return job_pb2.FrameEatResponse()


@rpc("/job.FrameInterface/Retry")
def retry_frame(farm: Farm, request: job_pb2.FrameRetryRequest) -> Message:
    """Retry one frame."""
    farm.retry_frames([_frame(farm, request.frame)])
    return job_pb2.FrameRetryResponse()


@rpc("/job.FrameInterface/Kill")
def kill_frame(farm: Farm, request: job_pb2.FrameKillRequest) -> Message:
    """Kill one frame if it is running."""
    farm.kill_frames([_frame(farm, request.frame)])
    return job_pb2.FrameKillResponse()


@rpc("/job.FrameInterface/MarkAsWaiting")
def mark_as_waiting(farm: Farm, request: job_pb2.FrameMarkAsWaitingRequest) -> Message:
    """Put a DEPEND frame back to WAITING, ignoring its depends."""
    farm.mark_as_waiting([_frame(farm, request.frame)])
    return job_pb2.FrameMarkAsWaitingResponse()


@rpc("/job.FrameInterface/MarkAsDepend")
def mark_as_depend(farm: Farm, request: job_pb2.FrameMarkAsDependRequest) -> Message:
    """Put a WAITING frame that still has active depends back to DEPEND."""
    farm.mark_as_depend(_frame(farm, request.frame))
    return job_pb2.FrameMarkAsDependResponse()


@rpc("/job.FrameInterface/SetCheckpointState")
def set_checkpoint_state(farm: Farm, request: job_pb2.FrameSetCheckpointStateRequest) -> Message:
    """Set a frame's checkpoint state."""
    _frame(farm, request.frame).checkpoint_state = request.state
    return job_pb2.FrameSetCheckpointStateResponse()


@rpc("/job.FrameInterface/CreateDependencyOnFrame")
def frame_on_frame(farm: Farm, request: job_pb2.FrameCreateDependencyOnFrameRequest) -> Message:
    """Make a frame wait for another frame."""
    er, on = _frame(farm, request.frame), _frame(farm, request.depend_on_frame)
    depend = farm.depends.create(er, on)
    return job_pb2.FrameCreateDependencyOnFrameResponse(depend=messages.depend(depend))


@rpc("/job.FrameInterface/CreateDependencyOnLayer")
def frame_on_layer(farm: Farm, request: job_pb2.FrameCreateDependencyOnLayerRequest) -> Message:
    """Make a frame wait for a layer."""
    depend = farm.depends.create(_frame(farm, request.frame), farm.layer(request.layer.id))
    return job_pb2.FrameCreateDependencyOnLayerResponse(depend=messages.depend(depend))


@rpc("/job.FrameInterface/CreateDependencyOnJob")
def frame_on_job(farm: Farm, request: job_pb2.FrameCreateDependencyOnJobRequest) -> Message:
    """Make a frame wait for a job."""
    depend = farm.depends.create(_frame(farm, request.frame), farm.job(request.job.id))
    return job_pb2.FrameCreateDependencyOnJobResponse(depend=messages.depend(depend))


depend_queries(
    "/job.FrameInterface",
    lambda farm, request: _frame(farm, request.frame),
    job_pb2.FrameGetWhatThisDependsOnResponse,
    job_pb2.FrameGetWhatDependsOnThisResponse,
    job_pb2.FrameDropDependsResponse,
)


@rpc("/job.FrameInterface/GetFrameStateDisplayOverrides")
def get_display_overrides(
    farm: Farm, request: job_pb2.GetFrameStateDisplayOverridesRequest
) -> Message:
    """The colours and texts a frame's states are shown with."""
    overrides = _frame(farm, request.frame).display_overrides or []
    return job_pb2.GetFrameStateDisplayOverridesResponse(
        overrides=job_pb2.FrameStateDisplayOverrideSeq(overrides=overrides)
    )


@rpc("/job.FrameInterface/SetFrameStateDisplayOverride")
def set_display_override(farm: Farm, request: job_pb2.FrameStateDisplayOverrideRequest) -> Message:
    """Show one state of a frame with another text and colour (one override per state)."""
    frame = _frame(farm, request.frame)
    kept = [o for o in frame.display_overrides or [] if o.state != request.override.state]
    frame.display_overrides = [*kept, request.override]
    return job_pb2.FrameStateDisplayOverrideResponse()


@rpc("/job.FrameInterface/AddRenderPartition")
def add_frame_render_partition(
    farm: Farm, request: job_pb2.FrameAddRenderPartitionRequest
) -> Message:
    """Set a host's resources aside for the frame (local booking)."""
    frame = _frame(farm, request.frame)
    partition = book_local(
        farm, request, frame.layer.job, renderPartition_pb2.FRAME_PARTITION,
        layer=frame.layer, frame=frame,
    )
    return job_pb2.FrameAddRenderPartitionResponse(render_partition=partition)
