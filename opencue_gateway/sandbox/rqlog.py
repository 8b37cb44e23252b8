"""Frame logs as RQD writes them, for the frames the simulator runs (``--log-root``).

CueWeb's and CueGUI's log viewers read ``<job logDir>/<job>.<frame>.rqlog``
from shared storage, where RQD writes it; with a log root the sandbox writes
the same files for its simulated frames, so a viewer on the same machine shows
real logs.  Each run gets RQD's header (the frame's command, host, ids and
environment), a progress line every tenth of its run, and RQD's footer (exit
status and signal, kill message, start and end, peak memory in KB, CPU times).
A frame run again first has its previous log rotated to ``.rqlog.1``, ``.2``...
as RQD does.

Only files under the log root are written (a job's log directory comes from
names a client chose), and a log that cannot be written is skipped: the
simulation never stops for a log.  Times are the farm's (simulated) clock.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from opencue_gateway.sandbox.records import Frame, Proc

# RQD's rule line and the widths of its header and footer keys.
RULE = "=" * 59
HEADER_KEY_WIDTH = 21
FOOTER_KEY_WIDTH = 20
# RQD keeps at most this many rotated logs of a frame.
MAX_LOG_FILES = 15
# A progress line every this share of the run.
PROGRESS_STEP = 10
# What a killed frame's report says, as RQD's kill by Cuebot does.
KILL_SIGNAL = 9
KILL_MESSAGE = "Frame killed by Cuebot"


@dataclass(slots=True)
class _Run:
    """A frame run with an open log: what its footer and progress lines need."""

    path: Path
    frame: Frame
    proc: Proc
    start: int
    end: float
    reported: int = 0


class FrameLogs:
    """The rqlog files of the simulated frames, under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._runs: dict[str, _Run] = {}
        self._made: set[Path] = set()

    def started(self, proc: Proc, now: int, end: float) -> None:
        """A frame began on ``proc``, to end at ``end``: rotate its old log, write the header."""
        frame = proc.frame
        if frame is None:
            return
        path = Path(proc.log_path).resolve()
        if not path.is_relative_to(self.root):
            return
        self._runs[proc.id] = run = _Run(path, frame, proc, now, end)
        self._write(run, _header(run), rotate=True)

    def tick(self, now: int) -> None:
        """Write progress lines of the frames still running; close the logs of frames killed."""
        for proc_id, run in list(self._runs.items()):
            if run.frame.proc is not run.proc:
                del self._runs[proc_id]
                self._write(run, _footer(run, now, -1, KILL_SIGNAL, KILL_MESSAGE))
                continue
            span = max(run.end - run.start, 1.0)
            percent = min(int((now - run.start) / span * 100) // PROGRESS_STEP * PROGRESS_STEP, 99)
            if percent > run.reported:
                run.reported = percent
                self._write(run, [_progress(run, now, percent)])

    def ended(self, proc: Proc, now: int, exit_status: int) -> None:
        """The frame on ``proc`` ended by itself with ``exit_status``: write RQD's footer."""
        run = self._runs.pop(proc.id, None)
        if run is not None:
            self._write(run, [_progress(run, now, 100)] if exit_status == 0 else [])
            self._write(run, _footer(run, now, exit_status, 0, ""))

    def _write(self, run: _Run, lines: list[str], rotate: bool = False) -> None:
        """Append lines to a run's log (making its directory once, and rotating a previous
        run's log first); skip what fails."""
        with contextlib.suppress(OSError):
            if run.path.parent not in self._made:
                run.path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(run.path.parent)
            if rotate and run.path.exists():
                _rotate(run.path)
            with run.path.open("a", encoding="utf-8") as log:
                log.writelines(f"{line}\n" for line in lines)


def _rotate(path: Path) -> None:
    """Move a previous run's log to the first free ``.N`` suffix, as RQD does."""
    number = 1
    while path.with_name(f"{path.name}.{number}").exists() and number < MAX_LOG_FILES:
        number += 1
    path.rename(path.with_name(f"{path.name}.{number}"))


def _header(run: _Run) -> list[str]:
    """RQD's header: when, the command, who, where and the frame's environment."""
    frame, proc, job = run.frame, run.proc, run.proc.job
    environment = {
        "CUE_FRAME": frame.name, "CUE_IFRAME": str(frame.number), "CUE_JOB": job.name,
        "CUE_LAYER": frame.layer.name, "CUE_LOG_PATH": job.log_dir,
        "CUE_MEMORY": str(proc.reserved_memory), "CUE_SHOT": job.shot,
        "CUE_SHOW": job.show.name, "CUE_THREADS": str(int(proc.reserved_cores)),
        "CUE_USER": job.user, "LOGNAME": job.user, "USER": job.user,
    }
    fields = [
        ("command", _command(frame)), ("uid", "1000"), ("gid", "1000"),
        ("logDestination", proc.log_path), ("cwd", f"/tmp/{job.name}/{frame.name}"),
        ("renderHost", proc.host.name), ("jobId", job.id), ("frameId", frame.id),
    ] + [("env", f"{name}={value}") for name, value in sorted(environment.items())]
    return [
        RULE,
        f"{'RenderQ JobSpec':<{HEADER_KEY_WIDTH}}{time.ctime(run.start)} ",
        "",
        f"{'proxy':<{HEADER_KEY_WIDTH}}rqd.rqnetwork.RunningFrame/{frame.id} -t:tcp "
        f"-h {proc.host.name} -p 10021",
        *(f"{key:<{HEADER_KEY_WIDTH}}{value}" for key, value in fields),
        RULE,
    ]


def _command(frame: Frame) -> str:
    """The layer's command for this frame (``#IFRAME#`` and ``#FRAME#`` filled in)."""
    command = frame.layer.command or f"render --layer {frame.layer.name}"
    return command.replace("#IFRAME#", str(frame.number)).replace("#FRAME#", frame.name)


def _progress(run: _Run, now: int, percent: int) -> str:
    """One line of the frame's own output: how far its render is."""
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    return f"{stamp} INFO  {run.frame.name}: rendering {percent}% done ({now - run.start}s)"


def _footer(run: _Run, now: int, exit_status: int, signal: int, kill: str) -> list[str]:
    """RQD's footer: how the frame ended, when, and what it used (memory in KB)."""
    seconds = max(now - run.start, 0)
    rss = run.proc.used_memory
    fields = [("exitStatus", exit_status), ("exitSignal", signal)]
    if kill:
        fields.append(("killMessage", kill))
    fields += [
        ("startTime", time.ctime(run.start)), ("endTime", time.ctime(now)), ("maxrss", rss),
        ("maxUsedGpuMemory", run.proc.used_gpu_memory),
        ("utime", int(seconds * run.proc.reserved_cores * 0.9)), ("stime", seconds // 50),
        ("renderhost", run.proc.host.name), ("maxrss (KB)", rss),
    ]
    return ["", RULE, "RenderQ Job Complete", "",
            *(f"{key:<{FOOTER_KEY_WIDTH}}{value}" for key, value in fields), RULE]
