"""Kills are asynchronous, as in Cuebot: the proc stays, unbooked, until RQD reports.

Cuebot answers a kill once it has asked RQD to kill the frame; the proc and its
RUNNING frame remain until RQD's report arrives.  In the sandbox the report is
delivered by the simulator's next tick, or, on a farm nothing simulates, before
the server's next call.  These tests call the handlers directly (no server) to
see the farm between the answer and the report.
"""

from __future__ import annotations

import grpc
import pytest
from opencue_proto import host_pb2, job_pb2

from opencue_gateway.sandbox import Farm, errors, seed
from opencue_gateway.sandbox.handlers import HANDLERS
from opencue_gateway.sandbox.seed import seeded_farm
from opencue_gateway.sandbox.simulate import Simulator
from tests.sandbox.sandbox_support import GIB, START, FakeClock, rpc_error

JOB = job_pb2.Job(id=seed.JOB_ID)


def _running(farm: Farm, index: int = 0) -> str:
    """Run seed frame ``index + 1`` on the seed host; returns its proc's id."""
    frame = farm.frame(seed.FRAME_IDS[index])
    return farm.start_frame(frame, farm.host(seed.HOST_ID), 1.0, GIB).id


def _call(farm: Farm, path: str, request: object) -> object:
    """Run one handler under the farm lock, as the server does, without delivering reports."""
    with farm.lock:
        return HANDLERS[path](farm, request)


# Every way to kill a running frame's proc: (method, request for proc id and frame id).
KILLS = [
    ("/host.ProcInterface/Kill", lambda proc, frame: host_pb2.ProcKillRequest(
        proc=host_pb2.Proc(id=proc))),
    ("/host.ProcInterface/Unbook", lambda proc, frame: host_pb2.ProcUnbookRequest(
        proc=host_pb2.Proc(id=proc), kill=True)),
    ("/host.ProcInterface/UnbookProcs", lambda proc, frame: host_pb2.ProcUnbookProcsRequest(
        r=host_pb2.ProcSearchCriteria(hosts=["render-host-001"]), kill=True)),
    ("/host.ProcInterface/RedirectToJob", lambda proc, frame: host_pb2.ProcRedirectToJobRequest(
        proc=host_pb2.Proc(id=proc), job_id=seed.JOB_ID, kill=True)),
    ("/job.FrameInterface/Kill", lambda proc, frame: job_pb2.FrameKillRequest(
        frame=job_pb2.Frame(id=frame))),
    ("/job.LayerInterface/KillFrames", lambda proc, frame: job_pb2.LayerKillFramesRequest(
        layer=job_pb2.Layer(id=seed.LAYER_ID))),
    ("/job.JobInterface/KillFrames", lambda proc, frame: job_pb2.JobKillFramesRequest(
        job=JOB, req=job_pb2.FrameSearchCriteria(ids=[frame]))),
    ("/job.JobInterface/Kill", lambda proc, frame: job_pb2.JobKillRequest(
        job=JOB, reason="wrong camera")),
]


@pytest.mark.parametrize(("path", "request_for"), KILLS, ids=[path for path, _ in KILLS])
def test_a_kill_leaves_the_proc_until_rqd_reports(path, request_for):
    """After the kill's answer the proc is still there, unbooked, its frame RUNNING; RQD's
    report ends the frame (back to WAITING) and takes the proc off the host."""
    farm = seeded_farm(clock=FakeClock(START))
    proc_id = _running(farm)
    _call(farm, path, request_for(proc_id, seed.FRAME_ID))
    proc, frame = farm.proc(proc_id), farm.frame(seed.FRAME_ID)
    assert (proc.unbooked, proc.killed, frame.state) == (True, True, job_pb2.RUNNING)
    assert farm.host(seed.HOST_ID).idle_cores == 16 - 4 - 1
    farm.deliver_reports()
    assert frame.state == job_pb2.WAITING
    with pytest.raises(errors.EmptyResultError):
        farm.proc(proc_id)
    assert proc_id not in farm.host(seed.HOST_ID).procs


def test_a_killed_job_is_finished_at_once_and_its_frames_stop_on_the_report():
    """JobInterface.Kill finishes the job in its answer; its running frame stops on the report."""
    farm = seeded_farm(clock=FakeClock(START))
    _running(farm, 2)
    _call(farm, "/job.JobInterface/Kill", job_pb2.JobKillRequest(job=JOB, reason="r"))
    assert (farm.job(seed.JOB_ID).state, farm.frame(seed.FRAME_IDS[2]).state) == (
        job_pb2.FINISHED, job_pb2.RUNNING
    )
    farm.deliver_reports()
    assert farm.frame(seed.FRAME_IDS[2]).state == job_pb2.WAITING


def test_the_simulated_rqd_reports_on_the_next_tick():
    """With a simulator, a killed frame stays RUNNING until the simulator's next tick."""
    farm = seeded_farm(clock=FakeClock(START))
    simulator = Simulator(farm, tick_seconds=1, failure_rate=0.0)
    proc_id = _running(farm)
    _call(farm, "/host.ProcInterface/Kill", host_pb2.ProcKillRequest(
        proc=host_pb2.Proc(id=proc_id)))
    reply = _call(farm, "/job.FrameInterface/GetFrame",
                  job_pb2.FrameGetFrameRequest(id=seed.FRAME_ID))
    assert reply.frame.state == job_pb2.RUNNING
    farm.job(seed.JOB_ID).is_paused = True  # so the tick does not dispatch the frame again
    simulator.step()
    assert farm.frame(seed.FRAME_ID).state == job_pb2.WAITING
    with pytest.raises(errors.EmptyResultError):
        farm.proc(proc_id)


def test_unbook_after_kill_finds_the_proc(cue):
    """The README's order: Kill then Unbook on the seed proc both succeed, through gRPC."""
    proc = host_pb2.Proc(id=seed.PROC_ID)
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=proc))
    cue.proc.Unbook(host_pb2.ProcUnbookRequest(proc=proc))
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert [(p.id, p.unbooked) for p in procs] == [(seed.PROC_ID, True)]


def test_a_running_frames_kill_shows_on_the_next_call(sandbox, cue):
    """On a farm nothing simulates, RQD's report is delivered before the server's next call."""
    proc_id = _running(sandbox.farm, 1)
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=host_pb2.Proc(id=proc_id)))
    frame = cue.frame.GetFrame(job_pb2.FrameGetFrameRequest(id=seed.FRAME_IDS[1])).frame
    assert frame.state == job_pb2.WAITING
    error = rpc_error(cue.proc.Unbook, host_pb2.ProcUnbookRequest(proc=host_pb2.Proc(id=proc_id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_a_kill_cannot_be_taken_back(clock, cue):
    """ClearRedirect keeps a redirected proc, but a killed one stays unbooked and leaves."""
    proc = host_pb2.Proc(id=seed.PROC_ID)
    cue.proc.RedirectToJob(host_pb2.ProcRedirectToJobRequest(proc=proc, job_id=seed.JOB_ID))
    assert cue.proc.ClearRedirect(host_pb2.ProcClearRedirectRequest(proc=proc)).value
    cue.proc.Kill(host_pb2.ProcKillRequest(proc=proc))
    assert not cue.proc.ClearRedirect(host_pb2.ProcClearRedirectRequest(proc=proc)).value
    procs = cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs
    assert [p.unbooked for p in procs] == [True]
    clock.advance(300)
    assert list(cue.proc.GetProcs(host_pb2.ProcGetProcsRequest()).procs.procs) == []
