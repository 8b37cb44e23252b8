"""Layer and group settings, limits, tags, the group tree and departments read back as set."""

from __future__ import annotations

import grpc
from opencue_proto import job_pb2, limit_pb2, show_pb2

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import GIB, START, rpc_error

LAYER = job_pb2.Layer(id=seed.LAYER_ID)
ROOT = job_pb2.Group(id=seed.GROUP_ID)
SHOW = show_pb2.Show(id=seed.SHOW_ID)


def _layer(cue):
    """The seed layer, read now."""
    return cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=seed.LAYER_ID)).layer


def _group(cue, group_id=seed.GROUP_ID):
    """A group, read now."""
    return cue.group.GetGroup(job_pb2.GroupGetGroupRequest(id=group_id)).group


def _sub(cue, name, parent=ROOT):
    """Create a sub group."""
    request = job_pb2.GroupCreateSubGroupRequest(group=parent, name=name)
    return cue.group.CreateSubGroup(request).group


def test_layer_resource_settings(cue):
    """Tags, cores, memory, GPU memory, threading, timeouts and dispatch order read back."""
    cue.layer.SetTags(job_pb2.LayerSetTagsRequest(layer=LAYER, tags=["gpu", "big", "gpu"]))
    cue.layer.SetMinCores(job_pb2.LayerSetMinCoresRequest(layer=LAYER, cores=2.5))
    cue.layer.SetMaxCores(job_pb2.LayerSetMaxCoresRequest(layer=LAYER, cores=8.0))
    cue.layer.SetMinMemory(job_pb2.LayerSetMinMemoryRequest(layer=LAYER, memory=8 * GIB))
    cue.layer.SetMinGpuMemory(job_pb2.LayerSetMinGpuMemoryRequest(layer=LAYER, gpu_memory=GIB))
    cue.layer.SetThreadable(job_pb2.LayerSetThreadableRequest(layer=LAYER, threadable=True))
    cue.layer.SetTimeout(job_pb2.LayerSetTimeoutRequest(layer=LAYER, timeout=30))
    cue.layer.SetTimeoutLLU(job_pb2.LayerSetTimeoutLLURequest(layer=LAYER, timeout_llu=5))
    cue.layer.SetDispatchOrder(job_pb2.LayerSetDispatchOrderRequest(layer=LAYER, order=3))
    cue.layer.EnableMemoryOptimizer(
        job_pb2.LayerEnableMemoryOptimizerRequest(layer=LAYER, value=False)
    )
    layer = _layer(cue)
    assert list(layer.tags) == ["big", "gpu"]
    assert (layer.min_cores, layer.max_cores, layer.min_memory) == (2.5, 8.0, 8 * GIB)
    assert (layer.min_gpu_memory, layer.is_threadable, layer.timeout) == (GIB, True, 30)
    assert (layer.timeout_llu, layer.dispatch_order) == (5, 3)
    assert not layer.memory_optimizer_enabled


def test_start_after_gates_and_validates(cue):
    """SetStartAfter records the time and who set it; a millisecond value is INVALID_ARGUMENT."""
    request = job_pb2.LayerSetStartAfterRequest(layer=LAYER, start_after=START + 600,
                                                username="ops")
    cue.layer.SetStartAfter(request)
    layer = _layer(cue)
    assert (layer.start_after, layer.start_after_reason) == (START + 600, "Set by ops")
    error = rpc_error(cue.layer.SetStartAfter, job_pb2.LayerSetStartAfterRequest(
        layer=LAYER, start_after=START * 1000
    ))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "milliseconds" in error.details()
    cue.layer.SetStartAfter(job_pb2.LayerSetStartAfterRequest(layer=LAYER, start_after=0))
    assert (_layer(cue).start_after, _layer(cue).start_after_reason) == (0, "")


def test_limits_on_layers_follow_renames_and_deletes(cue):
    """A layer holds limits by id; renaming or deleting the limit shows on the layer."""
    limit = cue.limit.Create(limit_pb2.LimitCreateRequest(name="katana", max_value=5)).limit
    cue.layer.AddLimit(job_pb2.LayerAddLimitRequest(layer=LAYER, limit_id=limit.id))
    held = cue.layer.GetLimits(job_pb2.LayerGetLimitsRequest(layer=LAYER)).limits
    assert [(lim.name, lim.max_value) for lim in held] == [("katana", 5)]
    cue.limit.Rename(limit_pb2.LimitRenameRequest(old_name="katana", new_name="katana2"))
    cue.limit.SetMaxValue(limit_pb2.LimitSetMaxValueRequest(name="katana2", max_value=9))
    assert list(_layer(cue).limits) == ["katana2"]
    found = cue.limit.Find(limit_pb2.LimitFindRequest(name="katana2")).limit
    assert (found.id, found.max_value) == (limit.id, 9)
    cue.layer.DropLimit(job_pb2.LayerDropLimitRequest(layer=LAYER, limit_id=limit.id))
    assert list(_layer(cue).limits) == []
    cue.layer.AddLimit(job_pb2.LayerAddLimitRequest(layer=LAYER, limit_id=limit.id))
    cue.limit.Delete(limit_pb2.LimitDeleteRequest(name="katana2"))
    assert list(_layer(cue).limits) == []
    names = [lim.name for lim in cue.limit.GetAll(limit_pb2.LimitGetAllRequest()).limits]
    assert names == [seed.LIMIT_NAME]


def test_output_paths(cue):
    """RegisterOutputPath adds to what GetOutputPaths lists."""
    spec = "/shots/testing/out.#.exr"
    cue.layer.RegisterOutputPath(job_pb2.LayerRegisterOutputPathRequest(layer=LAYER, spec=spec))
    paths = cue.layer.GetOutputPaths(job_pb2.LayerGetOutputPathsRequest(layer=LAYER))
    assert list(paths.output_paths) == [spec]


def test_group_settings_read_back(cue):
    """Group names, job defaults and limits read back (cores in whole cores)."""
    group = _sub(cue, "lighting")
    cue.group.SetName(job_pb2.GroupSetNameRequest(group=group, name="lighting_sq1"))
    cue.group.SetDefaultJobPriority(job_pb2.GroupSetDefJobPriorityRequest(group=group,
                                                                          priority=200))
    cue.group.SetDefaultJobMinCores(job_pb2.GroupSetDefJobMinCoresRequest(group=group,
                                                                          min_cores=2.2))
    cue.group.SetDefaultJobMaxCores(job_pb2.GroupSetDefJobMaxCoresRequest(group=group,
                                                                          max_cores=40))
    cue.group.SetDefaultJobMinGpus(job_pb2.GroupSetDefJobMinGpusRequest(group=group, min_gpus=1))
    cue.group.SetDefaultJobMaxGpus(job_pb2.GroupSetDefJobMaxGpusRequest(group=group, max_gpus=2))
    cue.group.SetMinCores(job_pb2.GroupSetMinCoresRequest(group=group, min_cores=10))
    cue.group.SetMaxCores(job_pb2.GroupSetMaxCoresRequest(group=group, max_cores=100))
    cue.group.SetMinGpus(job_pb2.GroupSetMinGpusRequest(group=group, min_gpus=1))
    cue.group.SetMaxGpus(job_pb2.GroupSetMaxGpusRequest(group=group, max_gpus=8))
    got = _group(cue, group.id)
    assert (got.name, got.default_job_priority, got.parent_id, got.level) == (
        "lighting_sq1", 200, seed.GROUP_ID, 1
    )
    assert (got.default_job_min_cores, got.default_job_max_cores) == (2.0, 40.0)
    assert (got.default_job_min_gpus, got.default_job_max_gpus) == (1, 2)
    assert (got.min_cores, got.max_cores, got.min_gpus, got.max_gpus) == (10, 100, 1, 8)


def test_reparenting_jobs_applies_group_defaults(cue):
    """Jobs moved into a group take its job defaults, as Cuebot's Inherit.All does."""
    group = _sub(cue, "fx")
    cue.group.SetDefaultJobPriority(job_pb2.GroupSetDefJobPriorityRequest(group=group,
                                                                          priority=300))
    jobs = job_pb2.JobSeq(jobs=[job_pb2.Job(id=seed.JOB_ID)])
    cue.group.ReparentJobs(job_pb2.GroupReparentJobsRequest(group=group, jobs=jobs))
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    assert (job.group, job.priority) == ("fx", 300)
    assert _group(cue, group.id).group_stats.pending_jobs == 1
    assert _group(cue).group_stats.pending_jobs == 0


def test_group_tree_reparenting_and_cycles(cue):
    """ReparentGroups and SetGroup move groups; moving a group under its own child fails."""
    first, second = _sub(cue, "seq1"), _sub(cue, "seq2")
    cue.group.ReparentGroups(job_pb2.GroupReparentGroupsRequest(
        group=first, groups=job_pb2.GroupSeq(groups=[second])
    ))
    children = cue.group.GetGroups(job_pb2.GroupGetGroupsRequest(group=first)).groups.groups
    assert [g.name for g in children] == ["seq2"]
    error = rpc_error(cue.group.SetGroup,
                      job_pb2.GroupSetGroupRequest(group=first, parent_group=second))
    assert error.code() == grpc.StatusCode.INTERNAL
    cue.group.SetGroup(job_pb2.GroupSetGroupRequest(group=second, parent_group=ROOT))
    assert _group(cue, second.id).parent_id == seed.GROUP_ID


def test_group_delete_rules(cue):
    """A group with sub groups or pending jobs, or a root, is not deleted; an empty one is."""
    parent = _sub(cue, "parent")
    _sub(cue, "child", parent)
    for group in (parent, ROOT):
        error = rpc_error(cue.group.Delete, job_pb2.GroupDeleteRequest(group=group))
        assert error.code() == grpc.StatusCode.INTERNAL
        assert error.details().startswith("Failed to remove group")
    empty = _sub(cue, "empty")
    cue.group.Delete(job_pb2.GroupDeleteRequest(group=empty))
    error = rpc_error(cue.group.GetGroup, job_pb2.GroupGetGroupRequest(id=empty.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_department_of_a_group_appears_in_the_show(cue):
    """SetDepartment needs a known department and adds it to the show's departments."""
    cue.group.SetDepartment(job_pb2.GroupSetDeptRequest(group=ROOT, dept="comp"))
    assert _group(cue).department == "comp"
    departments = cue.show.GetDepartments(show_pb2.ShowGetDepartmentsRequest(show=SHOW))
    assert [d.name for d in departments.departments.departments] == ["comp", "lighting"]
    error = rpc_error(cue.group.SetDepartment,
                      job_pb2.GroupSetDeptRequest(group=ROOT, dept="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_job_whiteboard_nests_groups_and_jobs(cue):
    """GetJobWhiteboard nests sub groups under the root, each with its pending jobs inline."""
    sub = _sub(cue, "nested")
    jobs = job_pb2.JobSeq(jobs=[job_pb2.Job(id=seed.JOB_ID)])
    cue.group.ReparentJobs(job_pb2.GroupReparentJobsRequest(group=sub, jobs=jobs))
    board = cue.show.GetJobWhiteboard(show_pb2.ShowGetJobWhiteboardRequest(show=SHOW)).whiteboard
    nested = board.groups.nested_groups
    assert (board.name, [g.name for g in nested]) == ("default", ["nested"])
    assert [j.name for j in nested[0].inline_jobs] == ["testing-job-001"]
