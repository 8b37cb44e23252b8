"""Failures carry the status code and wording a Cuebot client sees."""

from __future__ import annotations

import grpc
import pytest
from opencue_proto import host_pb2, job_pb2, show_pb2

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.farm import new_id
from opencue_gateway.sandbox.records import Host
from opencue_gateway.sandbox.server import generic_handlers
from tests.sandbox.sandbox_support import START, rpc_error

NO_ROW = "Incorrect result size: expected 1, actual 0"
UNKNOWN = "00000000-0000-0000-0000-00000000dead"


@pytest.mark.parametrize(
    ("service", "method", "request_message"),
    [
        ("show", "FindShow", show_pb2.ShowFindShowRequest(name="testingX")),
        ("job", "FindJob", job_pb2.JobFindJobRequest(name="nope")),
        ("job", "GetJob", job_pb2.JobGetJobRequest(id=UNKNOWN)),
        ("frame", "GetFrame", job_pb2.FrameGetFrameRequest(id=UNKNOWN)),
        ("frame", "FindFrame", job_pb2.FrameFindFrameRequest(
            job="testing-job-001", layer="layer_name", frame=7)),
        ("layer", "GetLayer", job_pb2.LayerGetLayerRequest(id=UNKNOWN)),
        ("layer", "FindLayer", job_pb2.LayerFindLayerRequest(
            job="testing-job-001", layer="nope")),
        ("group", "GetGroup", job_pb2.GroupGetGroupRequest(id=UNKNOWN)),
        ("group", "FindGroup", job_pb2.GroupFindGroupRequest(show="testing", name="nope")),
        ("host", "FindHost", host_pb2.HostFindHostRequest(name="nope")),
        ("host", "GetHost", host_pb2.HostGetHostRequest(id=UNKNOWN)),
        ("owner", "GetOwner", host_pb2.OwnerGetOwnerRequest(name="nobody")),
    ],
)
def test_lookups_answer_not_found(cue, service, method, request_message):
    """Find*/Get*-by-id of an unknown entity answer NOT_FOUND with Spring's text."""
    error = rpc_error(getattr(getattr(cue, service), method), request_message)
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, NO_ROW)


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        ("Pause", job_pb2.JobPauseRequest(job=job_pb2.Job(id=UNKNOWN))),
        ("GetFrames", job_pb2.JobGetFramesRequest(job=job_pb2.Job(id=UNKNOWN))),
        ("GetLayers", job_pb2.JobGetLayersRequest(job=job_pb2.Job(id=UNKNOWN))),
        ("Kill", job_pb2.JobKillRequest(job=job_pb2.Job(id=UNKNOWN), reason="x")),
        ("AddComment", job_pb2.JobAddCommentRequest(job=job_pb2.Job(id=UNKNOWN))),
    ],
)
def test_job_methods_answer_job_not_found(cue, method, request_message):
    """JobInterface methods given an unknown Job answer NOT_FOUND "Job not found"."""
    error = rpc_error(getattr(cue.job, method), request_message)
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "Job not found")


@pytest.mark.parametrize(
    ("service", "method", "request_message"),
    [
        ("frame", "Retry", job_pb2.FrameRetryRequest(frame=job_pb2.Frame(id=UNKNOWN))),
        ("layer", "EatFrames", job_pb2.LayerEatFramesRequest(layer=job_pb2.Layer(id=UNKNOWN))),
        ("group", "SetMinCores", job_pb2.GroupSetMinCoresRequest(group=job_pb2.Group(id=UNKNOWN))),
        ("host", "Lock", host_pb2.HostLockRequest(host=host_pb2.Host(id=UNKNOWN))),
        ("show", "GetGroups", show_pb2.ShowGetGroupsRequest(show=show_pb2.Show(id=UNKNOWN))),
        ("proc", "Kill", host_pb2.ProcKillRequest(proc=host_pb2.Proc(id=UNKNOWN))),
        ("deed", "GetOwner", host_pb2.DeedGetOwnerRequest(deed=host_pb2.Deed(id=UNKNOWN))),
        ("frame", "GetFrames", job_pb2.FrameGetFramesRequest(job="nope")),
    ],
)
def test_uncaught_lookups_answer_not_found(cue, service, method, request_message):
    """Where Cuebot would let a failed lookup escape as INTERNAL, the sandbox says NOT_FOUND."""
    error = rpc_error(getattr(getattr(cue, service), method), request_message)
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, NO_ROW)


def test_finished_job_is_not_found_by_name_but_is_by_id(cue):
    """FindJob only sees pending jobs, while GetJob still returns a finished one."""
    cue.job.Kill(job_pb2.JobKillRequest(job=job_pb2.Job(id=seed.JOB_ID), reason="done"))
    error = rpc_error(cue.job.FindJob, job_pb2.JobFindJobRequest(name="testing-job-001"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.state == job_pb2.FINISHED


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("testing", "A show named testing already exists."),
        ("TESTING", "A show named testing already exists."),
        ("ab", "The show name must be at least 3 characters."),
        ("bad name!", "The show name: bad name! is not in the proper format.  Show names must "
                      "be alpha numeric, no dashes or punctuation."),
    ],
)
def test_create_show_failures(cue, name, reason):
    """CreateShow refuses bad or taken names as Cuebot reports CreateShow failures."""
    error = rpc_error(cue.show.CreateShow, show_pb2.ShowCreateShowRequest(name=name))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "Show could not be created." + reason


def test_take_ownership_of_a_non_nimby_host_is_refused(sandbox, cue):
    """Deeds are refused on hosts that are not NIMBY desktops, with Cuebot's message."""
    with sandbox.farm.lock:
        sandbox.farm.add_host(Host(
            id=new_id(), name="farm-002", alloc_name="local.general", cores=8.0, memory=1,
            gpus=0.0, gpu_memory=0, total_memory=1, free_memory=1, boot_time=START,
            ping_time=START, os="linux",
        ))
    request = host_pb2.OwnerTakeOwnershipRequest(
        owner=host_pb2.Owner(id=seed.OWNER_ID), host="farm-002"
    )
    error = rpc_error(cue.owner.TakeOwnership, request)
    message = "Cannot setup deeeds on non-NIMBY hosts."
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == f"com.imageworks.spcue.SpcueRuntimeException: {message}\n{message}"


def test_stale_updated_frames_check_is_refused(clock, cue):
    """GetUpdatedFrames with a last_check over a minute old answers INVALID_ARGUMENT."""
    clock.advance(100)
    request = job_pb2.JobGetUpdatedFramesRequest(job=job_pb2.Job(id=seed.JOB_ID), last_check=START)
    error = rpc_error(cue.job.GetUpdatedFrames, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().endswith("difference was: 100")


def test_unimplemented_method_names_itself(cue):
    """A catalog method the sandbox lacks answers UNIMPLEMENTED and names the method."""
    error = rpc_error(cue.host.RestartRqdNow, host_pb2.HostRestartRqdNowRequest())
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == (
        "the sandbox Cuebot does not implement host.HostInterface/RestartRqdNow"
    )


def test_every_catalog_method_is_registered(channel):
    """No catalog method meets gRPC's "Method not found", and none crashes on an empty request.

    Each is served or names itself as unimplemented; UNKNOWN would mean a
    handler raised an unexpected Python exception.
    """
    catalog = MethodCatalog.default()
    assert len(catalog) == 293
    for method in catalog:
        call = channel.unary_unary(
            method.path,
            request_serializer=method.input_type.SerializeToString,
            response_deserializer=method.output_type.FromString,
        )
        try:
            call(method.input_type(), timeout=5)
        except grpc.RpcError as error:
            assert error.code() != grpc.StatusCode.UNKNOWN, (method.path, error.details())
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                expected = f"the sandbox Cuebot does not implement {method.path[1:]}"
                assert error.details() == expected


def test_handler_for_a_method_outside_the_catalog_is_rejected(sandbox):
    """Building the server's handlers fails loudly if a handler's method is not in the catalog."""
    catalog = [m for m in MethodCatalog.default() if m.path != "/show.ShowInterface/GetShows"]
    with pytest.raises(ValueError, match="GetShows"):
        list(generic_handlers(sandbox.farm, catalog))


@pytest.mark.parametrize(("value", "stored"), [
    (float("nan"), 0), (float("inf"), 2**31), (-float("inf"), -(2**31)),
])
def test_special_floats_never_crash_core_setters(cue, value, stored):
    """NaN and infinities in core counts are narrowed as Java does, never an internal error."""
    cue.group.SetMinCores(job_pb2.GroupSetMinCoresRequest(
        group=job_pb2.Group(id=seed.GROUP_ID), min_cores=value))
    group = cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=seed.GROUP_ID)).group
    assert group.min_cores == pytest.approx(stored, rel=1e-6)
