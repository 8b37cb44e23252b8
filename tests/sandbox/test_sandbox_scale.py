"""Generated farms: the scale knobs, reproducibility, and the benchmark farm's costs."""

from __future__ import annotations

import time

from opencue_proto import host_pb2, job_pb2, show_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.generate import FarmSpec, generated_farm
from opencue_gateway.sandbox.handlers import HANDLERS
from tests.sandbox.sandbox_support import START, FakeClock

# The budgets for the 100 jobs x 10 layers x 1,000 frames farm, in CPU seconds of
# the building or answering thread (wall time would measure the machine's load too).
BUILD_SECONDS = 5.0
PAGE_CPU_SECONDS = 0.05
PAGE = 1000


def test_knobs_size_the_farm_around_the_seed(serve):
    """shows, jobs_per_show, layers_per_job, frames_per_layer and hosts size the generated farm."""
    farm = generated_farm(clock=FakeClock(START), shows=3, jobs_per_show=4, layers_per_job=2,
                          frames_per_layer=5, hosts=7, seed=1)
    cue = serve(farm)
    shows = cue.show.GetShows(show_pb2.ShowGetShowsRequest()).shows.shows
    assert [s.name for s in shows] == ["testing", "show001", "show002", "show003"]
    assert [s.show_stats.pending_jobs for s in shows] == [1, 4, 4, 4]
    assert [s.show_stats.pending_frames for s in shows] == [6, 40, 40, 40]
    hosts = cue.host.GetHosts(host_pb2.HostGetHostsRequest()).hosts.hosts
    assert len(hosts) == 8
    job = farm.jobs()[5]
    frames = cue.job.GetFrames(job_pb2.JobGetFramesRequest(
        job=job_pb2.Job(id=job.id), req=job_pb2.FrameSearchCriteria()
    )).frames.frames
    assert [f.number for f in frames] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    by_id = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=frames[3].id)).frame
    assert by_id == frames[3]
    found = cue.frame.FindFrame(job_pb2.FrameFindFrameRequest(
        job=job.name, layer=frames[3].layer_name, frame=2
    )).frame
    assert found == frames[3]
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.name == seed.JOB_NAME


def test_the_same_seed_builds_the_same_farm():
    """Two builds of one spec agree on every id and name; another seed does not."""

    def shape(farm):
        """Every job's id and name, and every host's id, name and cores."""
        return ([(j.id, j.name, j.priority) for j in farm.jobs()],
                [(h.id, h.name, h.cores) for h in farm.hosts()])

    spec = {"shows": 2, "jobs_per_show": 3, "layers_per_job": 2, "frames_per_layer": 3,
            "hosts": 4}
    first = generated_farm(clock=FakeClock(START), seed=5, **spec)
    again = generated_farm(clock=FakeClock(START), seed=5, **spec)
    other = generated_farm(clock=FakeClock(START), seed=6, **spec)
    assert shape(first) == shape(again)
    assert shape(first) != shape(other)
    assert FarmSpec() == FarmSpec(shows=1, jobs_per_show=10, layers_per_job=3,
                                  frames_per_layer=100, hosts=10, seed=0)


def test_benchmark_farm_builds_quickly_and_pages_without_scanning(serve):
    """100 jobs x 10 layers x 1,000 frames build in < 5 s of CPU; a 1,000-frame page in < 50 ms."""
    began = time.thread_time()
    farm = generated_farm(shows=10, jobs_per_show=10, layers_per_job=10, frames_per_layer=1000,
                          hosts=100, seed=1)
    assert time.thread_time() - began < BUILD_SECONDS
    handler = HANDLERS["/job.JobInterface/GetFrames"]
    job = farm.jobs()[50]
    for page in (1, 10):
        request = job_pb2.JobGetFramesRequest(
            job=job_pb2.Job(id=job.id), req=job_pb2.FrameSearchCriteria(page=page, limit=PAGE)
        )
        began = time.thread_time()
        with farm.lock:
            reply = handler(farm, request)
        assert time.thread_time() - began < PAGE_CPU_SECONDS
        assert len(reply.frames.frames) == PAGE
    cue = serve(farm)
    frames = cue.job.GetFrames(job_pb2.JobGetFramesRequest(
        job=job_pb2.Job(id=job.id), req=job_pb2.FrameSearchCriteria(page=3, limit=PAGE)
    )).frames.frames
    assert [f.number for f in frames[:11]] == [201] * 10 + [202]
