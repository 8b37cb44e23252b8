"""The sandbox Cuebot through the gateway: changes, stats, simulation and concurrent mutations.

Each test runs the gateway with its embedded sandbox (``--sandbox``) and
talks HTTP/JSON to it, reaching into ``service.sandbox.farm`` only to set up
what no RPC makes (a frame that ran and failed) or to check the farm's
invariants afterwards.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest_twisted
from opencue_proto import job_pb2
from twisted.internet import defer

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.simulate import Simulator
from tests.sandbox.sandbox_support import GIB, SPEC

JOB = {"id": seed.JOB_ID}
# Mutations sent at once in the concurrency test, per kind.
ROUNDS = 40


async def _post(gateway, path: str, body: dict) -> dict:
    """POST a JSON body; the call must succeed; return the JSON reply."""
    response = await gateway.post(path, json.dumps(body))
    assert response.status == 200, (path, response.body)
    return response.json()


async def _stats(gateway) -> tuple[dict, dict, dict]:
    """(job, layer, show) stats of the seed family, read through the gateway."""
    job = await _post(gateway, "/job.JobInterface/GetJob", {"id": seed.JOB_ID})
    layer = await _post(gateway, "/job.LayerInterface/GetLayer", {"id": seed.LAYER_ID})
    show = await _post(gateway, "/show.ShowInterface/FindShow", {"name": seed.SHOW_NAME})
    return job["job"]["jobStats"], layer["layer"]["layerStats"], show["show"]["showStats"]


def _assert_consistent(farm: Farm) -> None:
    """The farm's invariants: tallies match frames, procs and frames point at each other."""
    with farm.lock:
        for job in farm.jobs():
            for layer in job.layers.values():
                actual = Counter(frame.state for frame in layer.frames)
                assert +layer.counts == +actual, layer.name
                for frame in layer.frames:
                    running = frame.state == job_pb2.RUNNING
                    assert (frame.proc is not None) == running, frame.name
                    assert frame.proc is None or frame.proc.frame is frame
        for host in farm.hosts():
            assert host.idle_cores >= 0 and host.idle_memory >= 0, host.name
            for proc in host.procs.values():
                assert proc.job.procs[proc.id] is proc
        assert {p.id for p in farm.procs()} == {
            p.id for host in farm.hosts() for p in host.procs.values()
        }


@pytest_twisted.ensureDeferred
async def test_retrying_a_dead_frame_moves_it_from_dead_to_waiting(sandbox_gateway):
    """Through the gateway, Retry on a DEAD frame moves it from dead to waiting at every level."""
    farm = sandbox_gateway.farm
    await _post(sandbox_gateway, "/job.JobInterface/SetMaxRetries",
                {"job": JOB, "max_retries": 1})
    with farm.lock:
        frame = farm.frame(seed.FRAME_ID)
        farm.start_frame(frame, farm.host(seed.HOST_ID), 1.0, GIB)
        farm.complete_frame(frame, 1, GIB)
    job, layer, show = await _stats(sandbox_gateway)
    assert (job["deadFrames"], layer["deadFrames"], show["deadFrames"]) == (1, 1, 1)
    assert (job["waitingFrames"], layer["waitingFrames"], show["pendingFrames"]) == (5, 5, 5)
    await _post(sandbox_gateway, "/job.FrameInterface/Retry", {"frame": {"id": seed.FRAME_ID}})
    job, layer, show = await _stats(sandbox_gateway)
    assert (job["deadFrames"], layer["deadFrames"], show["deadFrames"]) == (0, 0, 0)
    assert (job["waitingFrames"], layer["waitingFrames"], show["pendingFrames"]) == (6, 6, 6)


@pytest_twisted.ensureDeferred
async def test_search_criteria_and_paging_in_json(sandbox_gateway):
    """JSON criteria reach the sandbox's searches: job filters, frame states and pages."""
    await _post(sandbox_gateway, "/job.JobInterface/LaunchSpecAndWait", {"spec": SPEC})
    jobs = await _post(sandbox_gateway, "/job.JobInterface/GetJobs",
                       {"r": {"users": ["artist2"], "regex": ["comp"]}})
    assert [j["name"] for j in jobs["jobs"]["jobs"]] == ["testing-shot002-artist2_comp_job"]
    by_user = await _post(sandbox_gateway, "/job.JobInterface/GetJobs",
                          {"r": {"users": ["artist2"]}})
    assert [j["name"] for j in by_user["jobs"]["jobs"]] == [
        "testing-shot002-artist2_comp_job", "testing-shot002-artist2_lighting"
    ]
    await _post(sandbox_gateway, "/job.JobInterface/EatFrames",
                {"job": JOB, "req": {"frame_range": "2-3"}})
    page = await _post(sandbox_gateway, "/job.JobInterface/GetFrames", {
        "job": JOB, "req": {"states": {"frame_states": ["WAITING"]}, "page": 2, "limit": 2}
    })
    assert [f["number"] for f in page["frames"]["frames"]] == [5, 6]


@pytest_twisted.ensureDeferred
async def test_simulated_farm_reads_consistently_through_the_gateway(sandbox_gateway):
    """After simulated ticks, frames have succeeded and the gateway's stats add up."""
    farm = sandbox_gateway.farm
    await _post(sandbox_gateway, "/job.JobInterface/LaunchSpecAndWait", {"spec": SPEC})
    Simulator(farm, seed=4, tick_seconds=60, failure_rate=0.1).step(15)
    reply = await _post(sandbox_gateway, "/job.JobInterface/GetJobs",
                        {"r": {"include_finished": True}})
    jobs = reply["jobs"]["jobs"]
    assert sum(job["jobStats"]["succeededFrames"] for job in jobs) > 0
    for job in jobs:
        stats = job["jobStats"]
        parts = sum(stats[f"{state}Frames"] for state in
                    ("waiting", "running", "dead", "eaten", "depend", "succeeded"))
        assert parts == stats["totalFrames"]
    hosts = (await _post(sandbox_gateway, "/host.HostInterface/GetHosts", {"r": {}}))
    for host in hosts["hosts"]["hosts"]:
        assert 0 <= host["idleCores"] <= host["cores"]
    _assert_consistent(farm)


@pytest_twisted.ensureDeferred
async def test_concurrent_mutations_never_corrupt_the_farm(start_gateway):
    """Hundreds of simultaneous mutations, while the farm simulates, leave it consistent."""
    # One client sends everything at once: lift the per-client rate limit.
    sandbox_gateway = start_gateway(sandbox=True, RATE_LIMIT_RPS="0")
    farm = sandbox_gateway.farm
    await _post(sandbox_gateway, "/job.JobInterface/LaunchSpecAndWait", {"spec": SPEC})
    simulator = Simulator(farm, seed=2, tick_seconds=30, speed=3000)
    simulator.start()
    try:
        frames = [{"frame": {"id": frame_id}} for frame_id in seed.FRAME_IDS]
        calls = []
        for number in range(ROUNDS):
            frame = frames[number % len(frames)]
            calls += [
                ("/job.FrameInterface/Eat", frame),
                ("/job.FrameInterface/Retry", frame),
                ("/job.FrameInterface/Kill", frame),
                ("/job.JobInterface/Pause" if number % 2 else "/job.JobInterface/Resume",
                 {"job": JOB}),
                ("/job.JobInterface/AddComment",
                 {"job": JOB, "new_comment": {"user": "u", "subject": str(number)}}),
                ("/host.HostInterface/Lock" if number % 2 else "/host.HostInterface/Unlock",
                 {"host": {"id": seed.HOST_ID}}),
                ("/job.JobInterface/GetFrames", {"job": JOB, "req": {}}),
            ]
        await defer.gatherResults(
            [defer.ensureDeferred(_post(sandbox_gateway, path, body)) for path, body in calls]
        )
    finally:
        simulator.stop()
    _assert_consistent(farm)
    comments = await _post(sandbox_gateway, "/job.JobInterface/GetComments", {"job": JOB})
    assert len(comments["comments"]["comments"]) == ROUNDS
