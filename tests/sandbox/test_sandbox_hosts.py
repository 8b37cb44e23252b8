"""Host, proc, owner and allocation changes read back, and idle resources follow the procs."""

from __future__ import annotations

import grpc
from opencue_proto import facility_pb2, host_pb2, job_pb2

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import GIB, rpc_error

HOST = host_pb2.Host(id=seed.HOST_ID)
PROC = host_pb2.Proc(id=seed.PROC_ID)


def _host(cue):
    """The seed host, read now."""
    return cue.host.GetHost(host_pb2.HostGetHostRequest(id=seed.HOST_ID)).host


def _run(sandbox, index, cores=2.0):
    """Run seed frame ``index + 1`` on the seed host; returns its proc id."""
    farm = sandbox.farm
    frame = farm.frame(seed.FRAME_IDS[index])
    return farm.start_frame(frame, farm.host(seed.HOST_ID), cores, GIB).id


def test_tags_add_remove_and_rename(cue):
    """AddTags, RemoveTags and RenameTag keep a set of tags in order of addition."""
    cue.host.AddTags(host_pb2.HostAddTagsRequest(host=HOST, tags=["gpu", "general", "big"]))
    assert list(_host(cue).tags) == ["general", "gpu", "big"]
    cue.host.RemoveTags(host_pb2.HostRemoveTagsRequest(host=HOST, tags=["gpu"]))
    cue.host.RenameTag(host_pb2.HostRenameTagRequest(host=HOST, old_tag="big", new_tag="huge"))
    assert list(_host(cue).tags) == ["general", "huge"]


def test_hardware_state_reboot_thread_mode_and_os(cue):
    """SetHardwareState, Reboot, RebootWhenIdle, SetThreadMode and SetOs read back."""
    cue.host.SetHardwareState(host_pb2.HostSetHardwareStateRequest(host=HOST,
                                                                   state=host_pb2.REPAIR))
    assert _host(cue).state == host_pb2.REPAIR
    cue.host.Reboot(host_pb2.HostRebootRequest(host=HOST))
    assert _host(cue).state == host_pb2.REBOOTING
    cue.host.RebootWhenIdle(host_pb2.HostRebootWhenIdleRequest(host=HOST))
    assert _host(cue).state == host_pb2.REBOOT_WHEN_IDLE
    cue.host.SetThreadMode(host_pb2.HostSetThreadModeRequest(host=HOST, mode=host_pb2.ALL))
    cue.host.SetOs(host_pb2.HostSetOsRequest(host=HOST, os="rocky9"))
    host = _host(cue)
    assert (host.thread_mode, host.os) == (host_pb2.ALL, "rocky9")


def test_set_allocation_refuses_busy_hosts(clock, sandbox, cue):
    """A host with procs cannot change allocation; once free it moves and the stats follow."""
    created = cue.allocation.Create(facility_pb2.AllocCreateRequest(
        name="desktop", tag="desktop", facility=facility_pb2.Facility(name="local")
    )).allocation
    request = host_pb2.HostSetAllocationRequest(host=HOST, allocation_id=created.id)
    error = rpc_error(cue.host.SetAllocation, request)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "You cannot move hosts with running procs between allocations." in error.details()
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=PROC))
    clock.advance(300)
    cue.host.SetAllocation(request)
    assert _host(cue).alloc_name == "local.desktop"
    moved = cue.allocation.Get(facility_pb2.AllocGetRequest(id=created.id)).allocation
    assert (moved.stats.hosts, moved.stats.cores, moved.stats.idle_cores) == (1, 16, 16)


def test_running_frames_book_and_free_host_resources(sandbox, cue):
    """A running frame's proc takes cores and memory from the host; killing it gives them back."""
    proc_id = _run(sandbox, 0, cores=3.0)
    host = _host(cue)
    assert (host.idle_cores, host.idle_memory) == (16 - 4 - 3, 64 * GIB - 8 * GIB - GIB)
    frame = cue.proc.GetFrame(host_pb2.ProcGetFrameRequest(proc=host_pb2.Proc(id=proc_id))).frame
    layer = cue.proc.GetLayer(host_pb2.ProcGetLayerRequest(proc=host_pb2.Proc(id=proc_id))).layer
    assert (frame.id, frame.state, layer.id) == (seed.FRAME_ID, job_pb2.RUNNING, seed.LAYER_ID)
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=host_pb2.Proc(id=proc_id)))
    assert _host(cue).idle_cores == 12
    got = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_ID)).frame
    assert got.state == job_pb2.WAITING


def test_proc_without_a_frame_has_no_frame_or_layer(cue):
    """A proc waiting for a frame answers GetFrame and GetLayer with NOT_FOUND; GetJob works."""
    for call, request in ((cue.proc.GetFrame, host_pb2.ProcGetFrameRequest(proc=PROC)),
                          (cue.proc.GetLayer, host_pb2.ProcGetLayerRequest(proc=PROC))):
        assert rpc_error(call, request).code() == grpc.StatusCode.NOT_FOUND
    job = cue.proc.GetJob(host_pb2.ProcGetJobRequest(proc=PROC)).job
    host = cue.proc.GetHost(host_pb2.ProcGetHostRequest(proc=PROC)).host
    assert (job.id, host.id) == (seed.JOB_ID, seed.HOST_ID)


def test_unbook_procs_counts_and_kills(clock, sandbox, cue):
    """UnbookProcs answers how many procs matched; with kill their frames go back to WAITING
    once RQD reports, and the frameless seed proc leaves after the 300 s orphan check."""
    running = _run(sandbox, 0)
    criteria = host_pb2.ProcSearchCriteria(jobs=["testing-job-001"])
    answer = cue.proc.UnbookProcs(host_pb2.ProcUnbookProcsRequest(r=criteria, kill=True))
    assert answer.num_procs == 2
    procs = cue.host.GetProcs(host_pb2.HostGetProcsRequest(host=HOST)).procs.procs
    assert running not in [p.id for p in procs]
    frame = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_ID)).frame
    assert frame.state == job_pb2.WAITING
    clock.advance(300)
    assert list(cue.host.GetProcs(host_pb2.HostGetProcsRequest(host=HOST)).procs.procs) == []
    assert _host(cue).idle_cores == 16


def test_redirects_mark_procs_and_clear(cue):
    """Redirecting a proc unbooks it toward the target; ClearRedirect keeps it where it is."""
    value = cue.proc.RedirectToJob(host_pb2.ProcRedirectToJobRequest(proc=PROC,
                                                                     job_id=seed.JOB_ID)).value
    proc = cue.host.GetProcs(host_pb2.HostGetProcsRequest(host=HOST)).procs.procs[0]
    assert (value, proc.unbooked, proc.redirect_target) == (True, True, "testing-job-001")
    assert cue.proc.ClearRedirect(host_pb2.ProcClearRedirectRequest(proc=PROC)).value
    proc = cue.host.GetProcs(host_pb2.HostGetProcsRequest(host=HOST)).procs.procs[0]
    assert (proc.unbooked, proc.redirect_target) == (False, "")
    error = rpc_error(cue.proc.UnbookToJob, host_pb2.ProcUnbookToJobRequest(
        r=host_pb2.ProcSearchCriteria(), jobs=job_pb2.JobSeq(jobs=[job_pb2.Job(id=seed.JOB_ID)])
    ))
    assert "You must specify the number of procs to unbook" in error.details()
    host_redirect = cue.host.RedirectToJob(host_pb2.HostRedirectToJobRequest(
        host=HOST, proc_names=[proc.name], job_id=seed.JOB_ID
    ))
    assert host_redirect.value


def test_delete_host_frees_its_frames_and_deed(sandbox, cue):
    """Deleting a host ends its procs (frames back to WAITING) and its deed; it is then gone."""
    _run(sandbox, 0)
    cue.host.Delete(host_pb2.HostDeleteRequest(host=HOST))
    assert rpc_error(cue.host.GetHost, host_pb2.HostGetHostRequest(id=seed.HOST_ID)).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    owner = cue.owner.GetOwner(host_pb2.OwnerGetOwnerRequest(name="artist1")).owner
    assert owner.host_count == 0
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    assert (job.job_stats.running_frames, job.job_stats.waiting_frames) == (0, 6)


def test_owners_and_deeds(cue):
    """Deeds can be removed and owners created, moved between shows and deleted."""
    cue.deed.Delete(host_pb2.DeedDeleteRequest(deed=host_pb2.Deed(id=seed.DEED_ID)))
    owner = cue.owner.GetOwner(host_pb2.OwnerGetOwnerRequest(name="artist1")).owner
    assert owner.host_count == 0
    cue.owner.TakeOwnership(host_pb2.OwnerTakeOwnershipRequest(owner=owner,
                                                               host="render-host-001"))
    deeds = cue.owner.GetDeeds(host_pb2.OwnerGetDeedsRequest(owner=owner)).deeds.deeds
    assert [d.host for d in deeds] == ["render-host-001"]
    cue.owner.Delete(host_pb2.OwnerDeleteRequest(owner=owner))
    error = rpc_error(cue.owner.GetOwner, host_pb2.OwnerGetOwnerRequest(name="artist1"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_host_whiteboard_nests_procs(cue):
    """GetHostWhiteboard lists hosts with their procs nested inside."""
    board = cue.host.GetHostWhiteboard(host_pb2.HostGetHostWhiteboardRequest()).nested_hosts
    host = board.nested_hosts[0]
    assert (host.name, host.idle_cores) == ("render-host-001", 12)
    assert [p.id for p in host.procs.nested_procs] == [seed.PROC_ID]


def test_render_partitions(cue):
    """AddRenderPartition records a partition the host lists; too big a one is refused."""
    request = job_pb2.JobAddRenderPartRequest(job=job_pb2.Job(id=seed.JOB_ID),
                                              host="render-host-001", threads=2, max_cores=4,
                                              max_memory=GIB)
    partition = cue.job.AddRenderPartition(request).render_partition
    listed = cue.host.GetRenderPartitions(host_pb2.HostGetRenderPartitionsRequest(host=HOST))
    assert [p.id for p in listed.render_partitions.render_partitions] == [partition.id]
    assert (partition.job, partition.max_cores, partition.host) == (
        "testing-job-001", 4, "render-host-001"
    )
    request.max_cores = 64
    error = rpc_error(cue.job.AddRenderPartition, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL,
                                               "Failed to find suitable frames.")
