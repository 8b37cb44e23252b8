"""Every memory figure the sandbox sends or takes is in Cuebot's KB, pinned to numbers a
person can check: 64 GiB is 67,108,864 KB, 8 GiB is 8,388,608, 2 GiB is 2,097,152."""

from __future__ import annotations

import grpc
import pytest
from opencue_proto import host_pb2, job_pb2, service_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.generate import generated_farm
from opencue_gateway.sandbox.seed import seeded_farm
from opencue_gateway.sandbox.simulate import Simulator
from tests.sandbox.sandbox_support import START, FakeClock, launch, rpc_error

HOST = host_pb2.Host(id=seed.HOST_ID)
LAYER = job_pb2.Layer(id=seed.LAYER_ID)

# A one-layer spec for the launch tests; LAYER_TAGS is replaced by each case's children.
ONE_LAYER = """<?xml version="1.0"?>
<spec><facility>local</facility><show>testing</show><shot>s01</shot><user>u</user>
<job name="units"><layers><layer name="only" type="Render"><cmd>c</cmd><range>1</range>
LAYER_TAGS</layer></layers></job></spec>
"""


def test_host_memory_fields_are_in_kb(cue):
    """The seed desktop's 64 GiB reads 67,108,864; every other host memory field is KB too."""
    host = cue.host.GetHost(host_pb2.HostGetHostRequest(id=seed.HOST_ID)).host
    assert (host.memory, host.total_memory) == (67_108_864, 67_108_864)  # 64 GiB
    assert host.idle_memory == 58_720_256  # 64 GiB less the seed proc's 8 GiB
    assert host.free_memory == 33_554_432  # 32 GiB
    assert (host.total_swap, host.free_swap) == (8_388_608, 7_340_032)  # 8 and 7 GiB
    assert (host.total_mcp, host.free_mcp) == (104_857_600, 83_886_080)  # 100 and 80 GiB
    assert (host.gpu_memory, host.idle_gpu_memory) == (8_388_608, 8_388_608)  # 8 GiB
    assert (host.total_gpu_memory, host.free_gpu_memory) == (8_388_608, 8_388_608)
    board = cue.host.GetHostWhiteboard(host_pb2.HostGetHostWhiteboardRequest()).nested_hosts
    nested = board.nested_hosts[0]
    assert (nested.memory, nested.idle_memory) == (67_108_864, 58_720_256)
    assert nested.procs.nested_procs[0].reserved_memory == 8_388_608


def test_proc_memory_fields_are_in_kb(cue):
    """The seed proc reserves 8 GiB (8,388,608) and uses 2 GiB (2,097,152)."""
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert [(p.reserved_memory, p.used_memory) for p in procs] == [(8_388_608, 2_097_152)]


def test_layer_and_waiting_frame_memory_are_in_kb(cue):
    """The seed layer's 2 GiB minimum reads 2,097,152, and so does a waiting frame's reservation."""
    layer = cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=seed.LAYER_ID)).layer
    frame = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_ID)).frame
    assert (layer.min_memory, frame.reserved_memory) == (2_097_152, 2_097_152)


def test_simulated_frames_use_kb_and_stats_follow(serve):
    """A 2 GiB layer's simulated frames peak between 30 % and 95 % of 2,097,152 KB; the job's
    and layer's figures are those same KB, and hosts have free what their procs do not use."""
    clock = FakeClock(START)
    farm = seeded_farm(clock=clock)
    simulator = Simulator(farm, seed=1, tick_seconds=60, failure_rate=0.0)
    simulator.step(30)
    cue = serve(farm)
    frames = cue.job.GetFrames(job_pb2.JobGetFramesRequest(
        job=job_pb2.Job(id=seed.JOB_ID), req=job_pb2.FrameSearchCriteria()
    )).frames.frames
    done = [f for f in frames if f.state == job_pb2.SUCCEEDED]
    assert done
    for frame in done:
        assert 629_145 <= frame.max_rss <= 1_992_294
        assert frame.used_memory == frame.max_rss
    job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    layer = cue.layer.GetLayer(job_pb2.LayerGetLayerRequest(id=seed.LAYER_ID)).layer
    peak = max(f.max_rss for f in done)
    assert job.job_stats.max_rss == layer.layer_stats.max_rss == peak
    host = cue.host.GetHost(host_pb2.HostGetHostRequest(id=seed.HOST_ID)).host
    used = sum(p.used_memory for p in farm.host(seed.HOST_ID).procs.values())
    assert host.free_memory == 67_108_864 - used


def test_updated_frames_carry_memory(clock, sandbox, cue):
    """GetUpdatedFrames sends a frame's peak and used memory, as Cuebot does."""
    farm = sandbox.farm
    frame = farm.frame(seed.FRAME_ID)
    farm.start_frame(frame, farm.host(seed.HOST_ID), 1.0, 2_097_152)
    clock.advance(30)
    farm.complete_frame(frame, 0, 1_500_000)
    updated = cue.job.GetUpdatedFrames(job_pb2.JobGetUpdatedFramesRequest(
        job=job_pb2.Job(id=seed.JOB_ID), last_check=START + 10
    )).updated_frames.updated_frames
    assert [(u.id, u.max_rss, u.used_memory) for u in updated] == [
        (seed.FRAME_ID, 1_500_000, 1_500_000)
    ]


def test_default_services_carry_cuebots_kb_figures(cue):
    """Cuebot's stock services: default 3,355,443 KB (its mem_reserved_default), maya 2 GiB,
    each raising memory by 2 GiB after an out-of-memory kill."""
    services = cue.service.GetDefaultServices(
        service_pb2.ServiceGetDefaultServicesRequest()
    ).services.services
    memory = {s.name: s.min_memory for s in services}
    assert (memory["default"], memory["arnold"], memory["maya"]) == (3_355_443, 3_355_443,
                                                                     2_097_152)
    assert {s.min_memory_increase for s in services} == {2_097_152}


def test_generated_hosts_are_sized_in_kb():
    """Generated hosts have 32, 64, 128 or 256 GiB and 16 GiB of swap, in KB."""
    farm = generated_farm(clock=FakeClock(START), shows=0, hosts=12, seed=3)
    generated = [h for h in farm.hosts() if h.name.startswith("host")]
    sizes = {h.total_memory for h in generated}
    assert len(sizes) > 1
    assert sizes <= {33_554_432, 67_108_864, 134_217_728, 268_435_456}
    assert all(h.memory == h.total_memory for h in generated)
    assert {h.total_swap for h in generated} == {16_777_216}


@pytest.mark.parametrize(("children", "memory", "gpu_memory"), [
    ("<memory>4g</memory>", 4_194_304, 0),
    ("<memory>512m</memory>", 524_288, 0),
    ("<memory>6</memory>", 6_291_456, 0),  # a bare number is GiB, as in Cuebot
    ("<memory>100m</memory>", 262_144, 0),  # below Cuebot's 256 MiB minimum
    ("<services><service>maya</service></services>", 2_097_152, 0),  # the service's minimum
    ("", 3_355_443, 0),  # the default service's minimum
    ("<memory>2g</memory><gpu_memory>2g</gpu_memory>", 2_097_152, 2_097_152),
    ("<gpu_memory>200g</gpu_memory>", 3_355_443, 0),  # over Cuebot's 100 GiB: its minimum, 0
])
def test_launched_layers_read_spec_memory_into_kb(cue, children, memory, gpu_memory):
    """A spec's memory is read as Cuebot's JobSpec reads it, into KB."""
    job = launch(cue, ONE_LAYER.replace("LAYER_TAGS", children))[0]
    layer = cue.job.GetLayers(job_pb2.JobGetLayersRequest(job=job)).layers.layers[0]
    assert (layer.min_memory, layer.min_gpu_memory) == (memory, gpu_memory)


def test_memory_in_requests_is_taken_as_kb(cue):
    """SetMinMemory's 8,388,608 is 8 GiB, and a render partition is measured against the
    host's idle KB: 56 GiB fits the 56 GiB left, 57 GiB does not."""
    cue.layer.SetMinMemory(job_pb2.LayerSetMinMemoryRequest(layer=LAYER, memory=8_388_608))
    frame = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_ID)).frame
    assert frame.reserved_memory == 8_388_608
    request = job_pb2.JobAddRenderPartRequest(
        job=job_pb2.Job(id=seed.JOB_ID), host=seed.HOST_NAME, threads=1, max_cores=1,
        max_memory=58_720_256,
    )
    assert cue.job.AddRenderPartition(request).render_partition.max_memory == 58_720_256
    request.max_memory = 59_768_832
    assert rpc_error(cue.job.AddRenderPartition, request).code() == grpc.StatusCode.INTERNAL
