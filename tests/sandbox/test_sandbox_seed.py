"""The sandbox starts with the README's example entities, ids and stats."""

from __future__ import annotations

from opencue_proto import host_pb2, job_pb2, show_pb2

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import GIB, START


def test_seed_show(cue):
    """The show ``testing`` has the README's id, defaults and stats for one waiting job."""
    show = cue.show.FindShow(show_pb2.ShowFindShowRequest(name="testing")).show
    assert show.id == "00000000-0000-0000-0000-000000000000"
    assert (show.default_min_cores, show.default_max_cores) == (1, 2000)
    assert (show.default_min_gpus, show.default_max_gpus) == (100, 100000)
    assert show.booking_enabled and show.dispatch_enabled and show.active
    stats = show.show_stats
    assert (stats.pending_frames, stats.pending_jobs, stats.running_frames) == (6, 1, 0)
    assert (stats.created_job_count, stats.created_frame_count) == (1, 6)
    assert stats.reserved_cores == 4


def test_seed_job(cue):
    """The job ``testing-job-001`` has the README's fields, six pending frames, and was
    launched ten minutes before the sandbox started."""
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id="00000000-0000-0000-0000-000000000001")).job
    assert (job.name, job.show, job.shot, job.user) == (
        "testing-job-001", "testing", "shot001", "artist1"
    )
    assert (job.group, job.facility, job.os) == ("default", "cloud", "linux")
    assert (job.priority, job.min_cores, job.max_cores) == (100, 1, 10)
    assert job.log_dir == "/shots/testing/shot001/logs"
    assert job.start_time == START - 600
    assert job.state == job_pb2.PENDING and not job.is_paused
    stats = job.job_stats
    assert (stats.total_layers, stats.total_frames) == (1, 6)
    assert (stats.waiting_frames, stats.pending_frames, stats.succeeded_frames) == (6, 6, 0)
    assert stats.reserved_cores == 4


def test_seed_layer(cue):
    """The layer ``layer_name`` is an enabled Render layer of six waiting frames."""
    layer = cue.layer.GetLayer(
        job_pb2.LayerGetLayerRequest(id="00000000-0000-0000-0000-000000000003")
    ).layer
    assert (layer.name, layer.type, layer.range) == ("layer_name", job_pb2.RENDER, "1-6")
    assert (layer.min_cores, layer.max_cores, layer.min_memory) == (1, 10, 2 * GIB)
    assert layer.parent_id == seed.JOB_ID
    assert (layer.layer_stats.total_frames, layer.layer_stats.waiting_frames) == (6, 6)
    assert layer.layer_stats.pending_frames == 6


def test_seed_frames(cue):
    """The layer has frames 1 to 6; frame 1 has the README's id and fields."""
    frames = cue.layer.GetFrames(
        job_pb2.LayerGetFramesRequest(layer=job_pb2.Layer(id=seed.LAYER_ID))
    ).frames.frames
    assert [f.number for f in frames] == [1, 2, 3, 4, 5, 6]
    assert [f.id for f in frames] == seed.FRAME_IDS
    others = [seed.SHOW_ID, seed.JOB_ID, seed.LAYER_ID, seed.GROUP_ID, seed.HOST_ID,
              seed.PROC_ID, seed.DEED_ID, seed.OWNER_ID]
    assert len(set(seed.FRAME_IDS + others)) == len(seed.FRAME_IDS) + len(others)
    first = frames[0]
    assert (first.id, first.name) == ("00000000-0000-0000-0000-000000000002", "0001-layer_name")
    assert (first.state, first.exit_status, first.last_resource) == (job_pb2.WAITING, -1, "/0.00/0")
    assert (first.checkpoint_state, first.llu_time) == (job_pb2.DISABLED, START - 600)
    assert all(f.state == job_pb2.WAITING for f in frames)


def test_seed_group(cue):
    """The group ``default`` is the show's root group with the README's job defaults."""
    group = cue.group.GetGroup(
        job_pb2.GroupGetGroupRequest(id="00000000-0000-0000-0000-000000000004")
    ).group
    assert (group.name, group.department) == ("default", "lighting")
    assert (group.default_job_priority, group.default_job_min_cores) == (100, 1)
    assert group.default_job_max_cores == 10
    assert (group.level, group.parent_id) == (0, "")
    assert (group.group_stats.waiting_frames, group.group_stats.pending_jobs) == (6, 1)


def test_seed_host(cue):
    """The host ``render-host-001`` has 16 cores (4 reserved by the seed proc), memory in KB."""
    host = cue.host.GetHost(
        host_pb2.HostGetHostRequest(id="00000000-0000-0000-0000-000000000005")
    ).host
    assert (host.name, host.lock_state, host.os) == ("render-host-001", host_pb2.OPEN, "linux")
    assert (host.boot_time, host.ping_time) == (START - 3 * 86400, START)
    assert (host.cores, host.idle_cores) == (16, 12)
    assert (host.total_memory, host.free_memory) == (67_108_864, 33_554_432)
    assert (host.gpus, host.gpu_memory) == (1, 8_388_608)
    assert host.nimby_enabled


def test_seed_proc(cue):
    """The proc on the host reserves 4 cores and reports the README's log path and memory."""
    procs = cue.host.GetProcs(
        host_pb2.HostGetProcsRequest(host=host_pb2.Host(id=seed.HOST_ID))
    ).procs.procs
    assert len(procs) == 1
    proc = procs[0]
    assert (proc.id, proc.name) == (
        "00000000-0000-0000-0000-000000000006", "render-host-001/4.00/1"
    )
    assert (proc.log_path, proc.reserved_cores) == ("/tmp/rqd/logs/proc-001.log", 4)
    assert (proc.used_memory, proc.reserved_memory) == (2_097_152, 8_388_608)
    assert (proc.job_name, proc.show_name, proc.group_name) == (
        "testing-job-001", "testing", "default"
    )


def test_seed_owner_and_deed(cue):
    """Owner ``artist1`` of show testing holds deed ...0007 on render-host-001."""
    owner = cue.owner.GetOwner(host_pb2.OwnerGetOwnerRequest(name="artist1")).owner
    assert (owner.show, owner.host_count) == ("testing", 1)
    deeds = cue.owner.GetDeeds(host_pb2.OwnerGetDeedsRequest(owner=owner)).deeds.deeds
    assert [(d.id, d.host, d.owner) for d in deeds] == [
        ("00000000-0000-0000-0000-000000000007", "render-host-001", "artist1")
    ]
