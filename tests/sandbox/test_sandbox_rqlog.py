"""With a log root, the simulator writes each frame's rqlog where the job's logDir says,
in RQD's format: header, progress, footer; reruns rotate, kills are logged, and nothing
is written outside the root or without one."""

from __future__ import annotations

from pathlib import Path

from opencue_proto import job_pb2

from opencue_gateway.sandbox import Farm, seed
from opencue_gateway.sandbox.factory import sandbox_server
from opencue_gateway.sandbox.generate import generated_farm
from opencue_gateway.sandbox.rqlog import FrameLogs
from opencue_gateway.sandbox.simulate import Simulator
from tests.sandbox.sandbox_support import START, FakeClock

RULE = "=" * 59


def _farm(root: Path, **sizes) -> Farm:
    """A small generated farm whose jobs log under ``root``."""
    spec = {"shows": 1, "jobs_per_show": 1, "layers_per_job": 1, "frames_per_layer": 4,
            "hosts": 2, "seed": 4, **sizes}
    return generated_farm(clock=FakeClock(START), log_root=str(root), **spec)


def _log(frame) -> Path:
    """Where RQD writes a frame's log: ``<job logDir>/<job>.<frame>.rqlog``."""
    job = frame.layer.job
    return Path(job.log_dir) / f"{job.name}.{frame.name}.rqlog"


def _generated_frames(farm: Farm) -> list:
    """The frames of the generated show's jobs."""
    return [frame for job in farm.jobs() if job.show.name == "show001"
            for layer in job.layers.values() for frame in layer.frames]


def _one_frame(root: Path, ticks: int, **simulation):
    """A one-frame job simulated ``ticks`` ticks, logging under ``root``: simulator, frame."""
    farm = _farm(root, frames_per_layer=1)
    simulator = Simulator(farm, seed=1, logs=FrameLogs(root), **simulation)
    simulator.step(ticks)
    return simulator, _generated_frames(farm)[0]


def test_each_simulated_frame_writes_an_rqd_style_log_in_its_jobs_log_dir(tmp_path, serve):
    """A finished frame's rqlog holds RQD's header (its frame id and host), progress lines,
    and RQD's footer with its exit status and peak memory in KB; logDir is under the root."""
    farm = _farm(tmp_path)
    Simulator(farm, seed=2, tick_seconds=30, failure_rate=0.0, logs=FrameLogs(tmp_path)).step(80)
    done = [f for f in _generated_frames(farm) if f.state == job_pb2.SUCCEEDED]
    assert done
    for frame in done:
        lines = _log(frame).read_text().splitlines()
        host = frame.last_resource.split("/")[0]
        assert lines[0] == RULE and lines[1].startswith("RenderQ JobSpec      ")
        assert f"frameId              {frame.id}" in lines
        assert f"renderHost           {host}" in lines
        assert any(line.endswith(f"{frame.name}: rendering 100% done "
                                 f"({frame.stop_time - frame.start_time}s)") for line in lines)
        footer = lines[lines.index("RenderQ Job Complete"):]
        assert "exitStatus          0" in footer and "exitSignal          0" in footer
        assert f"maxrss              {frame.max_rss}" in footer
        assert footer[-1] == RULE
    job = next(j for j in farm.jobs() if j.show.name == "show001")
    cue = serve(farm)
    log_dir = cue.job.GetJob(job_pb2.JobGetJobRequest(id=job.id)).job.log_dir
    assert log_dir == f"{tmp_path}/show001/{job.shot}/logs"


def test_a_frame_run_again_rotates_its_previous_log(tmp_path):
    """Every run of a failing frame leaves a log: the latest .rqlog, older ones .rqlog.1, .2."""
    _, frame = _one_frame(tmp_path, 10, tick_seconds=1000, failure_rate=1.0)
    assert (frame.state, frame.retry_count) == (job_pb2.DEAD, 3)
    logs = sorted(path.name for path in _log(frame).parent.iterdir())
    base = _log(frame).name
    assert logs == [base, f"{base}.1", f"{base}.2"]
    for path in _log(frame).parent.iterdir():
        assert "exitStatus          1" in path.read_text().splitlines()


def test_a_killed_frames_log_ends_with_the_kill(tmp_path):
    """A frame killed by Cuebot gets RQD's footer with signal 9 and the kill message."""
    simulator, frame = _one_frame(tmp_path, 1, tick_seconds=10, failure_rate=0.0)
    assert frame.state == job_pb2.RUNNING
    frame.layer.job.is_paused = True
    simulator.farm.kill_proc(frame.proc)
    simulator.step(1)
    footer = _log(frame).read_text().splitlines()
    assert "exitSignal          9" in footer
    assert "killMessage         Frame killed by Cuebot" in footer


def test_nothing_is_written_outside_the_log_root(tmp_path):
    """A job whose log directory lies outside the root (a shot named ``../..``) gets no log."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    farm = _farm(root)
    for job in farm.jobs():
        job.log_dir = f"{root}/../outside/logs"
    Simulator(farm, seed=2, tick_seconds=30, failure_rate=0.0, logs=FrameLogs(root)).step(40)
    assert any(f.state == job_pb2.SUCCEEDED for f in _generated_frames(farm))
    assert not outside.exists()
    assert list(root.rglob("*.rqlog*")) == []


def test_logs_are_off_unless_a_log_root_is_given(tmp_path):
    """Without a log root, jobs' logDir is Cuebot-like (/shots/...) and no log is written;
    with one, it is created, resolved, and the simulator writes there."""
    still = sandbox_server(sizes={"shows": 1}, simulate=True)
    assert still.simulator.logs is None
    assert still.farm.job(seed.JOB_ID).log_dir == "/shots/testing/shot001/logs"
    root = tmp_path / "new" / "logs"
    logged = sandbox_server(simulate=True, log_root=str(root))
    assert root.is_dir()
    assert logged.simulator.logs.root == root.resolve()
    assert logged.farm.job(seed.JOB_ID).log_dir == f"{root.resolve()}/testing/shot001/logs"
