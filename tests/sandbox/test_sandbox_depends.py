"""Depends hold frames in DEPEND until what they wait on completes, as Cuebot's depend counts do."""

from __future__ import annotations

import grpc
from opencue_proto import depend_pb2, job_pb2

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import launch, rpc_error

JOB = job_pb2.Job(id=seed.JOB_ID)
LAYER = job_pb2.Layer(id=seed.LAYER_ID)


def _layers(cue, job):
    """A job's layers by name."""
    layers = cue.job.GetLayers(job_pb2.JobGetLayersRequest(job=job)).layers.layers
    return {layer.name: layer for layer in layers}


def _counts(cue, layer):
    """(waiting, depend) frames of a layer, read now."""
    stats = cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=layer.id)).layer.layer_stats
    return stats.waiting_frames, stats.depend_frames


def _eat(cue, layer):
    """Eat every frame of a layer."""
    cue.layer.EatFrames(job_pb2.LayerEatFramesRequest(layer=layer))


def test_layer_on_layer_holds_frames_until_the_layer_completes(cue):
    """A layer waiting on another shows DEPEND frames, WAITING again once the other is eaten."""
    lighting, _ = launch(cue)
    beauty = _layers(cue, lighting)["beauty"]
    depend = cue.layer.CreateDependencyOnLayer(
        job_pb2.LayerCreateDependOnLayerRequest(layer=LAYER, depend_on_layer=beauty)
    ).depend
    assert (depend.type, depend.target, depend.active) == (
        depend_pb2.LAYER_ON_LAYER, depend_pb2.EXTERNAL, True
    )
    assert (depend.depend_er_layer, depend.depend_on_layer) == ("layer_name", "beauty")
    assert _counts(cue, LAYER) == (0, 6)
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    assert (job.job_stats.depend_frames, job.job_stats.pending_frames) == (6, 6)
    _eat(cue, beauty)
    assert _counts(cue, LAYER) == (6, 0)
    got = cue.depend.GetDepend(depend_pb2.DependGetDependRequest(id=depend.id)).depend
    assert not got.active


def test_frame_by_frame_releases_each_frame_with_its_partner(cue):
    """In the spec's frame-by-frame depend, comp frame N waits only for render frame N."""
    _, comp_job = launch(cue)
    layers = _layers(cue, comp_job)
    assert _counts(cue, layers["comp"]) == (0, 3)
    render_2 = cue.frame.FindFrame(job_pb2.FrameFindFrameRequest(
        job=comp_job.name, layer="render", frame=2
    )).frame
    cue.frame.Eat(job_pb2.FrameEatRequest(frame=render_2))
    comp = cue.layer.GetFrames(job_pb2.LayerGetFramesRequest(layer=layers["comp"])).frames.frames
    assert [(f.number, f.state) for f in comp] == [
        (1, job_pb2.DEPEND), (2, job_pb2.WAITING), (3, job_pb2.DEPEND)
    ]


def test_depend_on_a_complete_job_is_refused(cue):
    """Depending on a finished job is Cuebot's DependException, INTERNAL."""
    lighting, _ = launch(cue)
    cue.job.EatFrames(job_pb2.JobEatFramesRequest(job=lighting, req=job_pb2.FrameSearchCriteria()))
    error = rpc_error(cue.job.CreateDependencyOnJob,
                      job_pb2.JobCreateDependencyOnJobRequest(job=JOB, on_job=lighting))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details().startswith("com.imageworks.spcue.depend.DependException: "
                                      "The job you are depending on is already complete.")


def test_depend_on_a_complete_layer_is_created_inactive(cue):
    """A depend on a layer that already completed holds nothing."""
    lighting, _ = launch(cue)
    beauty = _layers(cue, lighting)["beauty"]
    _eat(cue, beauty)
    depend = cue.job.CreateDependencyOnLayer(
        job_pb2.JobCreateDependencyOnLayerRequest(job=JOB, layer=beauty)
    ).depend
    assert not depend.active
    assert _counts(cue, LAYER) == (6, 0)


def test_listing_dropping_and_satisfying_depends(cue):
    """Depends list from both sides; DropDepends and Satisfy release, Unsatisfy holds again."""
    lighting, _ = launch(cue)
    on_job = cue.job.CreateDependencyOnJob(
        job_pb2.JobCreateDependencyOnJobRequest(job=JOB, on_job=lighting)
    ).depend
    frame = job_pb2.Frame(id=seed.FRAME_IDS[1])
    on_frame = cue.frame.CreateDependencyOnFrame(job_pb2.FrameCreateDependencyOnFrameRequest(
        frame=frame, depend_on_frame=job_pb2.Frame(id=seed.FRAME_IDS[0])
    )).depend
    assert on_frame.target == depend_pb2.INTERNAL
    mine = cue.job.GetWhatThisDependsOn(job_pb2.JobGetWhatThisDependsOnRequest(job=JOB))
    theirs = cue.job.GetWhatDependsOnThis(job_pb2.JobGetWhatDependsOnThisRequest(job=lighting))
    frame_side = cue.frame.GetWhatThisDependsOn(
        job_pb2.FrameGetWhatThisDependsOnRequest(frame=frame)
    )
    assert [d.id for d in mine.depends.depends] == [on_job.id, on_frame.id]
    assert [d.id for d in theirs.depends.depends] == [on_job.id]
    assert [d.id for d in frame_side.depends.depends] == [on_frame.id]
    cue.job.DropDepends(job_pb2.JobDropDependsRequest(job=JOB, target=depend_pb2.EXTERNAL))
    assert _counts(cue, LAYER) == (5, 1)
    cue.depend.Satisfy(depend_pb2.DependSatisfyRequest(depend=on_frame))
    assert _counts(cue, LAYER) == (6, 0)
    cue.depend.Unsatisfy(depend_pb2.DependUnsatisfyRequest(depend=on_frame))
    assert _counts(cue, LAYER) == (5, 1)
    every = cue.job.GetDepends(job_pb2.JobGetDependsRequest(job=JOB)).depends.depends
    assert [(d.id, d.active) for d in every] == [(on_job.id, False), (on_frame.id, True)]


def test_mark_done_and_mark_as_waiting_release_held_frames(cue):
    """MarkDoneFrames releases what waits on a frame; MarkAsWaiting frees a DEPEND frame."""
    first, second, third = (job_pb2.Frame(id=frame_id) for frame_id in seed.FRAME_IDS[:3])
    for er in (second, third):
        cue.frame.CreateDependencyOnFrame(
            job_pb2.FrameCreateDependencyOnFrameRequest(frame=er, depend_on_frame=first)
        )
    assert _counts(cue, LAYER) == (4, 2)
    cue.frame.MarkAsWaiting(job_pb2.FrameMarkAsWaitingRequest(frame=third))
    assert _counts(cue, LAYER) == (5, 1)
    cue.job.MarkDoneFrames(job_pb2.JobMarkDoneFramesRequest(
        job=JOB, req=job_pb2.FrameSearchCriteria(frame_range="1")
    ))
    assert _counts(cue, LAYER) == (6, 0)
    assert cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=first.id)).frame.state == (
        job_pb2.WAITING
    )


def test_retrying_a_held_frame_lands_in_depend(cue):
    """A frame still held by a depend goes to DEPEND when retried, as Cuebot's trigger decides."""
    first, second = (job_pb2.Frame(id=frame_id) for frame_id in seed.FRAME_IDS[:2])
    cue.frame.CreateDependencyOnFrame(
        job_pb2.FrameCreateDependencyOnFrameRequest(frame=second, depend_on_frame=first)
    )
    cue.frame.MarkAsWaiting(job_pb2.FrameMarkAsWaitingRequest(frame=second))
    cue.frame.MarkAsDepend(job_pb2.FrameMarkAsDependRequest(frame=second))
    assert cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=second.id)).frame.state == (
        job_pb2.DEPEND
    )
    cue.frame.Retry(job_pb2.FrameRetryRequest(frame=second))
    assert cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=second.id)).frame.state == (
        job_pb2.DEPEND
    )
