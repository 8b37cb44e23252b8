"""The sandbox farm's entities as plain Python records.

Records hold state and the links between entities (a frame knows its layer, a
layer its job); :mod:`opencue_gateway.sandbox.farm` indexes them and owns every
change.  Only one number is stored rather than derived: each layer's count of
frames per state, kept right by :meth:`Frame.set_state`, the only place a
frame's state changes.  Job, group and show frame counts are sums over layers,
and reserved or idle resources are sums over procs, so they cannot drift.

Cores are plain floats in cores (Cuebot's wire unit; its database stores
hundredths), ``-1`` meaning "no limit" as in Cuebot.  Memory is in Cuebot's
KB and times in epoch seconds (:mod:`.units`).  Enum fields hold the
``opencue_proto`` enum numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from opencue_proto import host_pb2, job_pb2

# A frame state counts as pending when it still has to render (JobStats.pending_frames).
PENDING_STATES = (job_pb2.WAITING, job_pb2.DEPEND)
# States a frame with unsatisfied depends is moved out of, to DEPEND (Cuebot's frame trigger).
HELD_STATES = (job_pb2.WAITING, job_pb2.DEAD, job_pb2.SUCCEEDED, job_pb2.CHECKPOINT)
# States that keep a job from being complete (Cuebot's JobDao.isJobComplete).
UNFINISHED_STATES = (
    job_pb2.WAITING, job_pb2.RUNNING, job_pb2.DEAD, job_pb2.DEPEND, job_pb2.CHECKPOINT
)


@dataclass(eq=False, slots=True)
class Comment:
    """A comment on a job or a host."""

    id: str
    timestamp: int
    user: str
    subject: str
    message: str


@dataclass(eq=False, slots=True)
class Show:
    """A show; defaults are those of a row Cuebot inserts for a new show."""

    id: str
    name: str
    default_min_cores: float = 1.0
    default_max_cores: float = 100.0
    default_min_gpus: float = 100.0
    default_max_gpus: float = 100000.0
    booking_enabled: bool = True
    dispatch_enabled: bool = True
    active: bool = True
    comment_email: str = ""
    created_job_count: int = 0
    created_frame_count: int = 0
    scheduler_managed: bool = False
    root: Group | None = None
    groups: dict[str, Group] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)

    def pending_jobs(self) -> list[Job]:
        """Jobs still in the cue: show stats count only these, as Cuebot's do."""
        return [job for job in self.jobs.values() if job.state == job_pb2.PENDING]


@dataclass(eq=False, slots=True)
class Group:
    """A job group (Cuebot's "folder"); a show's root group has no parent.

    Defaults are the column defaults of Cuebot's ``folder`` tables.
    """

    id: str
    name: str
    show: Show
    department: str
    default_job_priority: int = -1
    default_job_min_cores: float = -1.0
    default_job_max_cores: float = -1.0
    default_job_min_gpus: float = -1.0
    default_job_max_gpus: float = -1.0
    min_cores: float = 0.0
    max_cores: float = -1.0
    min_gpus: float = 0.0
    max_gpus: float = -1.0
    parent: Group | None = None
    jobs: dict[str, Job] = field(default_factory=dict)

    @property
    def level(self) -> int:
        """Depth below the show's root group, which is level 0."""
        return 0 if self.parent is None else self.parent.level + 1

    def pending_jobs(self) -> list[Job]:
        """Jobs still in the cue: group stats count only these."""
        return [job for job in self.jobs.values() if job.state == job_pb2.PENDING]


@dataclass(eq=False, slots=True)
class Job:
    """A job; its layers are kept in dispatch order, keyed by name."""

    id: str
    name: str
    show: Show
    group: Group
    shot: str
    user: str
    facility: str
    os: str
    priority: int
    min_cores: float
    max_cores: float
    log_dir: str
    start_time: int
    min_gpus: float = 0.0
    max_gpus: float = -1.0
    state: int = job_pb2.PENDING
    is_paused: bool = False
    auto_eat: bool = False
    stop_time: int = 0
    max_retries: int = 3
    email: str = ""
    layers: dict[str, Layer] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict)

    def frame_counts(self) -> Counter[int]:
        """Frames per state over every layer of the job."""
        return sum_counts(layer.counts for layer in self.layers.values())

    def is_complete(self) -> bool:
        """True when no frame is left to render or to fix."""
        return not any(
            layer.counts[state] for layer in self.layers.values() for state in UNFINISHED_STATES
        )


@dataclass(eq=False, slots=True)
class Usage:
    """What a layer's finished frames used: the source of its rendered and failed stats.

    Kept as running sums, updated when a frame stops running, so stats never
    walk the frames.
    """

    rendered_frames: int = 0
    failed_frames: int = 0
    rendered_frame_sec: int = 0
    rendered_core_sec: float = 0.0
    failed_core_sec: float = 0.0
    high_frame_sec: int = 0
    low_frame_sec: int = 0
    max_rss: int = 0

    def add(self, other: Usage) -> None:
        """Fold another layer's usage into this sum."""
        self.rendered_frames += other.rendered_frames
        self.failed_frames += other.failed_frames
        self.rendered_frame_sec += other.rendered_frame_sec
        self.rendered_core_sec += other.rendered_core_sec
        self.failed_core_sec += other.failed_core_sec
        self.high_frame_sec = max(self.high_frame_sec, other.high_frame_sec)
        lows = [low for low in (self.low_frame_sec, other.low_frame_sec) if low]
        self.low_frame_sec = min(lows, default=0)
        self.max_rss = max(self.max_rss, other.max_rss)


@dataclass(eq=False, slots=True)
class Layer:
    """A layer; ``frames`` is in dispatch order and ``counts`` tallies their states."""

    id: str
    name: str
    job: Job
    type: int
    range: str
    min_cores: float
    max_cores: float
    min_memory: int
    dispatch_order: int
    tags: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    command: str = ""
    is_threadable: bool = False
    chunk_size: int = 1
    min_gpus: float = 0.0
    max_gpus: float = 0.0
    min_gpu_memory: int = 0
    timeout: int = 0
    timeout_llu: int = 0
    memory_optimizer_enabled: bool = True
    start_after: int = 0
    start_after_reason: str = ""
    limits: list[str] = field(default_factory=list)
    output_paths: list[str] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    counts: Counter[int] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    numbered: dict[int, Frame] | None = None

    def frame_number(self, number: int) -> Frame | None:
        """The layer's frame with this number; the index is built on first use.

        A layer never gains frames after it is created, so the index stays
        right, and a farm of a million frames does not pay for it up front.
        """
        if self.numbered is None:
            self.numbered = {frame.number: frame for frame in self.frames}
        return self.numbered.get(number)

    def procs(self) -> list[Proc]:
        """The procs booked on this layer."""
        return [proc for proc in self.job.procs.values() if proc.layer is self]


@dataclass(eq=False, slots=True)
class Frame:
    """One frame of a layer."""

    id: str
    number: int
    layer: Layer
    state: int
    dispatch_order: int
    updated_at: int
    retry_count: int = 0
    exit_status: int = -1
    start_time: int = 0
    stop_time: int = 0
    llu_time: int = 0
    last_resource: str = "/0.00/0"
    checkpoint_state: int = job_pb2.DISABLED
    depend_count: int = 0
    max_rss: int = 0
    used_memory: int = 0
    proc: Proc | None = None
    display_overrides: list[job_pb2.FrameStateDisplayOverride] | None = None

    @property
    def name(self) -> str:
        """Cuebot's frame name: zero-padded number, dash, layer name."""
        return f"{self.number:04d}-{self.layer.name}"

    def set_state(self, state: int, now: int) -> None:
        """Change state and keep the layer's per-state counts right.

        Every state change goes through here, so layer, job, group and show
        stats always agree with the frames.  A frame still held by a depend
        lands in DEPEND instead, as Cuebot's database trigger decides.
        """
        if self.depend_count > 0 and state in HELD_STATES:
            state = job_pb2.DEPEND
        counts = self.layer.counts
        counts[self.state] -= 1
        counts[state] += 1
        self.state = state
        self.updated_at = now


@dataclass(eq=False, slots=True)
class Host:
    """A render host; idle resources are derived from the procs booked on it.

    ``memory`` is what procs can book (Cuebot's ``int_mem``); ``total_*`` and
    ``free_*`` are what the host's RQD reports.  All memory is in KB.
    """

    id: str
    name: str
    alloc_name: str
    cores: float
    memory: int
    gpus: float
    gpu_memory: int
    total_memory: int
    free_memory: int
    boot_time: int
    ping_time: int
    os: str
    nimby_enabled: bool = False
    total_swap: int = 0
    free_swap: int = 0
    total_mcp: int = 0
    free_mcp: int = 0
    total_gpu_memory: int = 0
    free_gpu_memory: int = 0
    load: int = 0
    tags: list[str] = field(default_factory=list)
    state: int = host_pb2.UP
    lock_state: int = host_pb2.OPEN
    thread_mode: int = host_pb2.AUTO
    comments: list[Comment] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def idle_cores(self) -> float:
        """Cores not reserved by a proc."""
        return self.cores - sum(p.reserved_cores for p in self.procs.values())

    @property
    def idle_memory(self) -> int:
        """Memory not reserved by a proc."""
        return self.memory - sum(p.reserved_memory for p in self.procs.values())

    @property
    def idle_gpus(self) -> float:
        """GPUs not reserved by a proc."""
        return self.gpus - sum(p.reserved_gpus for p in self.procs.values())

    @property
    def idle_gpu_memory(self) -> int:
        """GPU memory not reserved by a proc."""
        return self.gpu_memory - sum(p.reserved_gpu_memory for p in self.procs.values())


@dataclass(eq=False, slots=True)
class Proc:
    """A slice of a host booked on a job; ``frame`` is None while it waits for one.

    ``unbooked`` marks a proc that leaves once its frame ends, ``killed`` one
    whose kill was sent to RQD and awaits its report (see ``Farm.kill_proc``).
    """

    id: str
    host: Host
    job: Job
    layer: Layer
    reserved_cores: float
    reserved_memory: int
    used_memory: int
    log_path: str
    booked_time: int
    reserved_gpus: float = 0.0
    reserved_gpu_memory: int = 0
    used_gpu_memory: int = 0
    unbooked: bool = False
    unbooked_at: int = 0
    killed: bool = False
    redirect_target: str = ""
    frame: Frame | None = None

    @property
    def name(self) -> str:
        """Cuebot's proc name: host, reserved cores with two decimals, reserved GPUs."""
        return f"{self.host.name}/{self.reserved_cores:4.2f}/{int(self.reserved_gpus)}"


@dataclass(eq=False, slots=True)
class Owner:
    """A user who owns desktops (NIMBY hosts) for a show."""

    id: str
    name: str
    show: Show
    deeds: dict[str, Deed] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Deed:
    """The link between an owner and one host."""

    id: str
    owner: Owner
    host: Host


def sum_counts(counters: Iterable[Counter[int]]) -> Counter[int]:
    """Add per-state counters; an empty input gives an empty counter."""
    total: Counter[int] = Counter()
    for counter in counters:
        total.update(counter)
    return total
