"""A farm that moves: frames are dispatched to idle hosts, run, and succeed or fail.

:class:`Simulator` drives a :class:`~opencue_gateway.sandbox.farm.Farm` in
ticks of ``tick_seconds`` of simulated time.  Each tick, under the farm's
lock and for that tick only:

1. RQD reports: killed procs' frames end and the procs leave
   (:meth:`Farm.deliver_reports`), then running frames whose time is up end,
   through :meth:`Farm.complete_frame` (so retries, DEAD frames, auto-eat,
   depends and job completion follow Cuebot's rules), and their procs leave
   their hosts;
2. open, up hosts with room book WAITING frames of pending, unpaused jobs
   already launched (``start_time`` reached), of shows with booking and
   dispatching on, highest priority first (a layer waits for its
   ``start_after`` time; ``still_jobs`` are never dispatched), layer by layer in
   dispatch order: a proc reserves the layer's minimum cores and memory and
   is never booked beyond the host's idle cores or memory, nor beyond the
   job's maximum cores, and a layer's tags must meet the host's;
3. hosts report: free memory follows what their procs use, and a host
   waiting to reboot when idle reboots, then comes back up;
4. with :class:`~.rqlog.FrameLogs`, each frame's rqlog gets its header when it
   starts, progress lines as it runs and RQD's footer when it ends or is killed.

Durations, peak memory and failures are drawn from ``random.Random(seed)``,
so the same farm, seed and number of ticks give the same farm.  The
simulator owns simulated time: it sets the farm's clock to its own, which
starts at the farm's current time and moves only in :meth:`step` (and
:meth:`catch_up`, which brings a farm built in the past to now), so every
read and change (comments, ``GetUpdatedFrames``) agrees with the simulation.
:meth:`start` steps on a background thread every ``tick_seconds / speed``
wall seconds (``speed`` 10 runs ten simulated seconds per second); the thread
holds the lock for one tick at a time, never while it waits.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from opencue_proto import host_pb2, job_pb2

from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Frame, Host, Job, Layer
from opencue_gateway.sandbox.rqlog import FrameLogs

# A layer's typical frame takes this many simulated seconds, drawn per layer.
FRAME_SECONDS = (60.0, 900.0)
# How much frames of one layer vary around its typical duration (lognormal sigma).
DURATION_SPREAD = 0.35
# A frame's peak memory, as a fraction of the memory its layer reserves.
PEAK_MEMORY = (0.3, 0.95)


@dataclass(slots=True)
class _Ending:
    """A running frame's scheduled end; stale once the frame's proc is gone."""

    proc_id: str
    frame: Frame
    exit_status: int
    peak_memory: int


# What a frame of a layer books: cores, memory, and the tags a host must share.
_Shape = tuple[float, int, frozenset[str]]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A layer that may dispatch this tick, with what each of its frames books."""

    job: Job
    layer: Layer
    shape: _Shape


class Simulator:
    """Advances a farm's time, dispatching and finishing frames; see the module docstring."""

    def __init__(
        self,
        farm: Farm,
        seed: int = 0,
        tick_seconds: float = 1.0,
        speed: float = 1.0,
        failure_rate: float = 0.05,
        logs: FrameLogs | None = None,
        still_jobs: Collection[str] = (),
    ) -> None:
        if tick_seconds <= 0 or speed <= 0:
            raise ValueError("tick_seconds and speed must be positive")
        self.farm = farm
        self.logs = logs
        self.still_jobs = frozenset(still_jobs)
        self.tick_seconds = tick_seconds
        self.speed = speed
        self.failure_rate = failure_rate
        self.ticks = 0
        self._rng = random.Random(seed)
        self._time = float(farm.now())
        self._tick_length = tick_seconds
        self._endings: list[tuple[float, int, _Ending]] = []
        self._sequence = itertools.count()
        self._typical: dict[str, float] = {}
        self._cursor: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        farm.set_clock(self.now)

    def now(self) -> float:
        """Simulated time, in epoch seconds."""
        return self._time

    def step(self, ticks: int = 1) -> None:
        """Run ``ticks`` ticks; each holds the farm's lock only while it runs."""
        for _ in range(ticks):
            self._tick(self.tick_seconds)

    def catch_up(self, until: float, tick_seconds: float) -> None:
        """Run ticks of ``tick_seconds`` until simulated time reaches ``until``.

        How a farm built in the past is brought to the present with a history
        (the lively preset): coarser ticks than live ones, same rules.
        """
        if tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        while self._time < until:
            self._tick(min(tick_seconds, until - self._time))

    def _tick(self, seconds: float) -> None:
        """One tick of ``seconds``, under the farm's lock."""
        with self.farm.lock:
            self._time += seconds
            self._tick_length = seconds
            self.ticks += 1
            self.farm.deliver_reports()
            self._finish_due()
            self._dispatch()
            self._report()
            if self.logs is not None:
                self.logs.tick(int(self._time))

    def start(self) -> None:
        """Step on a background thread, one tick every ``tick_seconds / speed`` seconds."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread, waiting for a tick in progress; no-op when stopped."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        """The background loop: wait, tick, until stopped."""
        while not self._stop.wait(self.tick_seconds / self.speed):
            self.step()

    # -- one tick ---------------------------------------------------------------------

    def _finish_due(self) -> None:
        """End every running frame whose time has come."""
        while self._endings and self._endings[0][0] <= self._time:
            ending = heapq.heappop(self._endings)[2]
            proc = ending.frame.proc
            if proc is not None and proc.id == ending.proc_id:
                if self.logs is not None:
                    self.logs.ended(proc, int(self._time), ending.exit_status)
                self.farm.complete_frame(ending.frame, ending.exit_status, ending.peak_memory)

    def _dispatch(self) -> None:
        """Book waiting frames onto hosts with room, best job first.

        Candidate layers are queued by shape (cores, memory, tags), each queue
        in priority order.  A host takes, again and again, the best head among
        the queues whose shape it fits; a head leaves its queue for the rest
        of the tick once its job is at its core cap or it has no WAITING frame
        left.  A tick therefore costs in proportion to the frames booked and
        the hosts with room, not to hosts x layers.
        """
        queues: dict[_Shape, deque[tuple[int, _Candidate]]] = {}
        for rank, candidate in enumerate(self._candidates()):
            queues.setdefault(candidate.shape, deque()).append((rank, candidate))
        reserved: dict[str, float] = {}
        for host in sorted(self.farm.hosts(), key=lambda h: h.name):
            if not queues:
                return
            if host.state == host_pb2.UP and host.lock_state == host_pb2.OPEN:
                self._fill(host, queues, reserved)

    def _fill(
        self, host: Host, queues: dict[_Shape, deque[tuple[int, _Candidate]]],
        reserved: dict[str, float],
    ) -> None:
        """Book the best fitting candidates' frames on one host until nothing more fits."""
        idle_cores, idle_memory = host.idle_cores, host.idle_memory
        tags = set(host.tags)
        while True:
            best: tuple[int, _Candidate, Frame] | None = None
            for shape in list(queues):
                cores, memory, wanted = shape
                if idle_cores < cores or idle_memory < memory or (
                    wanted and not tags.intersection(wanted)
                ):
                    continue
                head = self._head(queues, shape, reserved)
                if head is not None and (best is None or head[0] < best[0]):
                    best = head
            if best is None:
                return
            candidate, frame = best[1], best[2]
            self._start(frame, host)
            idle_cores -= candidate.shape[0]
            idle_memory -= candidate.shape[1]
            reserved[candidate.job.id] += candidate.shape[0]

    def _head(
        self, queues: dict[_Shape, deque[tuple[int, _Candidate]]], shape: _Shape,
        reserved: dict[str, float],
    ) -> tuple[int, _Candidate, Frame] | None:
        """The best candidate of a shape that can still book, with its next frame.

        Candidates that cannot (job at its core cap, no WAITING frame) leave
        the queue, and an emptied queue leaves ``queues``.
        """
        queue = queues[shape]
        while queue:
            rank, candidate = queue[0]
            job = candidate.job
            if job.id not in reserved:
                reserved[job.id] = sum(p.reserved_cores for p in job.procs.values())
            frame = None
            if not 0 < job.max_cores < reserved[job.id] + shape[0]:
                frame = self._next_waiting(candidate.layer)
            if frame is not None:
                return rank, candidate, frame
            queue.popleft()
        del queues[shape]
        return None

    def _candidates(self) -> list[_Candidate]:
        """Layers with waiting frames that may dispatch now, best job first."""
        now = self._time
        jobs = [
            job for job in self.farm.jobs()
            if job.state == job_pb2.PENDING and not job.is_paused and job.start_time <= now
            and job.show.dispatch_enabled and job.show.booking_enabled
            and job.id not in self.still_jobs
        ]
        jobs.sort(key=lambda job: (-job.priority, job.name))
        return [
            _Candidate(job, layer, (_cores(layer), layer.min_memory, frozenset(layer.tags)))
            for job in jobs
            for layer in sorted(job.layers.values(), key=lambda layer: layer.dispatch_order)
            if layer.counts[job_pb2.WAITING] and layer.start_after <= now
        ]

    def _next_waiting(self, layer: Layer) -> Frame | None:
        """The layer's first WAITING frame in dispatch order, from where the last search ended.

        Frames before the cursor were not WAITING when passed; a retry or a
        reorder can change that, so the search wraps around to the start.
        The cursor stays on the frame found: once booked it is RUNNING, and
        the next search steps over it.
        """
        frames = layer.frames
        start = self._cursor.get(layer.id, 0)
        for position in itertools.chain(range(start, len(frames)), range(min(start, len(frames)))):
            if frames[position].state == job_pb2.WAITING:
                self._cursor[layer.id] = position
                return frames[position]
        return None

    def _start(self, frame: Frame, host: Host) -> None:
        """Book ``frame`` on ``host`` and schedule its end."""
        layer = frame.layer
        proc = self.farm.start_frame(frame, host, _cores(layer), layer.min_memory, layer.min_gpus)
        typical = self._typical.setdefault(layer.id, self._rng.uniform(*FRAME_SECONDS))
        seconds = max(self._tick_length, typical * self._rng.lognormvariate(0, DURATION_SPREAD))
        peak = int(layer.min_memory * self._rng.uniform(*PEAK_MEMORY))
        failed = self._rng.random() < self.failure_rate
        proc.used_memory = peak
        ending = _Ending(proc.id, frame, exit_status=1 if failed else 0, peak_memory=peak)
        heapq.heappush(self._endings, (self._time + seconds, next(self._sequence), ending))
        if self.logs is not None:
            self.logs.started(proc, int(self._time), self._time + seconds)

    def _report(self) -> None:
        """Hosts report in: ping time, free memory, and reboots when idle."""
        now = int(self._time)
        for host in self.farm.hosts():
            host.ping_time = now
            host.free_memory = host.total_memory - sum(p.used_memory for p in host.procs.values())
            if host.state == host_pb2.REBOOTING:
                host.state, host.boot_time = host_pb2.UP, now
            elif host.state == host_pb2.REBOOT_WHEN_IDLE and not host.procs:
                host.state = host_pb2.REBOOTING


def _cores(layer: Layer) -> float:
    """Cores a frame of the layer books: its minimum, at least one."""
    return max(layer.min_cores, 1.0)
