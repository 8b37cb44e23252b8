"""The sandbox Cuebot's in-memory farm: every entity, indexed, and every change to it.

Entities are the records of :mod:`opencue_gateway.sandbox.records`, indexed by
id and by name so that no lookup scans the farm.  Lookups that match nothing
raise :class:`~opencue_gateway.sandbox.errors.EmptyResultError`, as Cuebot's
DAOs raise Spring's exception; the RPC handlers decide how to report it.

Changes follow Cuebot's semantics (``JobManagerSupport``, ``FrameCompleteHandler``)
and most happen at once: where Cuebot queues an eat or a retry on its dispatch
queue, the sandbox applies it before answering, so the next read sees it.
Kills are asynchronous, as in Cuebot, which only asks RQD to kill: a killed
proc is unbooked at once but stays, its frame RUNNING, until RQD's report
arrives (:meth:`Farm.deliver_reports`: the simulator's next tick, or, on a
still farm, before the server's next call); a proc that runs no frame has
nothing for RQD to report and leaves once Cuebot's orphaned-proc check would
clear it, :data:`ORPHAN_SECONDS` after it was unbooked.  Changes
that touch several records (frame states and the stats that follow them, procs
and the hosts they book, depends) are Farm methods; a change of one field of
one record (a priority, a tag list) is a plain assignment by the RPC handler.

Thread-safety: one lock, no single writer.  gRPC handlers run on a thread
pool and the simulator (:mod:`.simulate`) on its own thread, so one re-entrant
lock, ``Farm.lock``, guards all state.  Every public method takes it, the
server holds it around each whole RPC (so a lookup, the change and the
rendering of the answer see one consistent farm), and the simulator holds it
for one tick at a time.  Code that reads or changes records directly, rather
than through methods, must hold ``farm.lock`` as well.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from opencue_proto import job_pb2

from opencue_gateway.sandbox import errors
from opencue_gateway.sandbox.depends import Depends
from opencue_gateway.sandbox.records import (
    Comment,
    Deed,
    Frame,
    Group,
    Host,
    Job,
    Layer,
    Owner,
    Proc,
    Show,
)

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

# Cuebot's JobSpec.NAME_REGEX, applied after dashes become underscores.
NAME_PATTERN = re.compile(r"^[\w.-]{3,}$", re.ASCII)
# Cuebot's default department, given to the root group of a new show.
DEFAULT_DEPARTMENT = "Unknown"
# GetUpdatedFrames answers at most this many frames, and refuses older checks.
UPDATED_FRAMES_LIMIT = 100
UPDATED_FRAMES_MAX_AGE = 60
# Cuebot's ORPHANED_PROC_INTERVAL: an unbooked proc RQD never reports on is cleared this
# many seconds later.
ORPHAN_SECONDS = 300
# Where jobs' log directories are, unless the sandbox writes logs somewhere real (--log-root).
DEFAULT_LOG_ROOT = "/shots"
# Frames of numbered layers have ids of this many characters of their layer's id,
# then their number in 12 hex digits.
FRAME_ID_PREFIX = 24
_HEX_NUMBER = re.compile(r"^[0-9a-f]{12}$")


@functools.cache
def _hex(number: int) -> str:
    """A frame number as the 12 hex digits that end a derived frame id (cached: reused a lot)."""
    return f"{number:012x}"


def new_id() -> str:
    """A fresh entity id in Cuebot's form (a random UUID)."""
    return str(uuid.uuid4())


def conform_name(kind: str, name: str) -> str:
    """A show or layer name as Cuebot's ``JobSpec.conformName`` accepts it.

    At least three characters; dashes become underscores; lower case; then only
    word characters and dots.  ``kind`` ("Show", "Layer") words the errors.
    """
    if len(name) < 3:
        raise errors.short_name(kind)
    conformed = name.replace("-", "_").lower()
    if not NAME_PATTERN.match(conformed):
        raise errors.malformed_name(kind, conformed)
    return conformed


def java_int(value: float) -> int:
    """Java's float-to-int narrowing: NaN is 0, infinities and overflows clamp, the rest truncates.

    Cuebot converts request floats this way and never fails on NaN or infinity.
    """
    if value != value:
        return 0
    return int(max(-(2**31), min(2**31 - 1, value)))


def whole_cores(cores: float) -> float:
    """Round a core count the way Cuebot's ``Convert.coresToWholeCoreUnits`` does.

    Group and job core limits are stored in whole cores; -1 ("no limit") is kept.
    """
    if cores == -1:
        return -1.0
    return float(java_int((cores * 100.0 + 0.5) / 100))


class Farm:
    """Shows, groups, jobs, layers, frames, hosts, procs, owners and deeds, indexed.

    Administrative records (facilities, allocations, subscriptions, limits,
    services, departments, tasks, filters, render partitions) are kept by type
    and id (:meth:`register`, :meth:`get`, :meth:`all`, :meth:`named`), and
    dependencies in :attr:`depends`.  ``ids`` makes every new id, so a seeded
    id source makes a reproducible farm.  Jobs' log directories lie under
    ``log_root`` (:meth:`log_dir`).
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, ids: Callable[[], str] = new_id,
        log_root: str = DEFAULT_LOG_ROOT,
    ) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.new_id = ids
        self.log_root = log_root
        self.depends = Depends(ids, self.now)
        self._records: dict[type, dict[str, Any]] = {}
        self._comments: dict[str, tuple[Comment, list[Comment]]] = {}
        self.department_names: dict[str, str] = {}
        self.default_allocation_id = ""
        self._shows: dict[str, Show] = {}
        self._shows_by_name: dict[str, Show] = {}
        self._groups: dict[str, Group] = {}
        self._jobs: dict[str, Job] = {}
        self._jobs_by_name: dict[str, Job] = {}
        self._layers: dict[str, Layer] = {}
        self._frames: dict[str, Frame] = {}
        self._numbered_layers: dict[str, Layer] = {}
        self._hosts: dict[str, Host] = {}
        self._hosts_by_name: dict[str, Host] = {}
        self._procs: dict[str, Proc] = {}
        self._leaving: dict[str, Proc] = {}
        self._owners: dict[str, Owner] = {}
        self._owners_by_name: dict[str, Owner] = {}
        self._deeds: dict[str, Deed] = {}
        self._deeds_by_host: dict[str, Deed] = {}

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Read time from ``clock`` from now on (the simulator installs simulated time)."""
        with self.lock:
            self._clock = clock

    def now(self) -> int:
        """The farm's clock in epoch seconds; injectable so tests and simulations control time."""
        return int(self._clock())

    def log_dir(self, show: str, shot: str) -> str:
        """Where a show's shot keeps its jobs' logs: ``<log root>/<show>/<shot>/logs``."""
        return f"{self.log_root}/{show}/{shot}/logs"

    # -- registration: how entities enter the farm -------------------------------

    def add_show(self, show: Show) -> Show:
        """Register a show; its groups are added separately."""
        with self.lock:
            self._shows[show.id] = show
            self._shows_by_name[show.name] = show
            return show

    def add_group(self, group: Group) -> Group:
        """Register a group; the first group without a parent becomes the show's root."""
        with self.lock:
            self._groups[group.id] = group
            group.show.groups[group.id] = group
            if group.parent is None and group.show.root is None:
                group.show.root = group
            return group

    def add_job(self, job: Job) -> Job:
        """Register a job in its show and group; layers are added separately."""
        with self.lock:
            self._jobs[job.id] = job
            self._jobs_by_name[job.name] = job
            job.show.jobs[job.id] = job
            job.group.jobs[job.id] = job
            job.show.created_job_count += 1
            return job

    def add_layer(self, layer: Layer, frames: Iterable[tuple[str, int]]) -> Layer:
        """Register a layer and create its frames, WAITING, from ``(id, number)`` pairs."""
        with self.lock:
            pairs = list(frames)
            made = self._make_frames(layer, pairs)
            self._frames.update(zip((frame_id for frame_id, _ in pairs), made, strict=True))
            return layer

    def add_numbered_layer(self, layer: Layer, numbers: Iterable[int]) -> Layer:
        """Register a layer and create its frames, WAITING, with ids derived from the layer's.

        A frame's id is the first 24 characters of its layer's id followed by
        its number in 12 hex digits, so the farm indexes the layer once rather
        than every frame: this is how a million-frame farm builds in seconds.
        """
        with self.lock:
            prefix = layer.id[:FRAME_ID_PREFIX]
            if prefix in self._numbered_layers:
                return self.add_layer(layer, ((prefix + _hex(n), n) for n in numbers))
            self._make_frames(layer, [(prefix + _hex(n), n) for n in numbers])
            self._numbered_layers[prefix] = layer
            return layer

    def _make_frames(self, layer: Layer, pairs: list[tuple[str, int]]) -> list[Frame]:
        """Index a layer and make its frames in bulk (positional arguments are the quick way)."""
        self._layers[layer.id] = layer
        layer.job.layers[layer.name] = layer
        now, llu, waiting = self.now(), layer.job.start_time, job_pb2.WAITING
        made = [
            # id, number, layer, state, dispatch_order, updated_at, retry_count,
            # exit_status, start_time, stop_time, llu_time
            Frame(frame_id, number, layer, waiting, order, now, 0, -1, 0, 0, llu)
            for order, (frame_id, number) in enumerate(pairs)
        ]
        layer.frames.extend(made)
        layer.counts[waiting] += len(made)
        layer.job.show.created_frame_count += len(made)
        return made

    def remove_job(self, job: Job) -> None:
        """Take a job, its layers, frames and procs out of the farm (a launch that failed)."""
        with self.lock:
            for proc in list(job.procs.values()):
                self._remove_proc(proc)
            for layer in job.layers.values():
                del self._layers[layer.id]
                self._numbered_layers.pop(layer.id[:FRAME_ID_PREFIX], None)
                for frame in layer.frames:
                    self._frames.pop(frame.id, None)
            del self._jobs[job.id]
            if self._jobs_by_name.get(job.name) is job:
                del self._jobs_by_name[job.name]
            del job.show.jobs[job.id]
            del job.group.jobs[job.id]

    def add_host(self, host: Host) -> Host:
        """Register a host."""
        with self.lock:
            self._hosts[host.id] = host
            self._hosts_by_name[host.name] = host
            return host

    def add_proc(self, proc: Proc) -> Proc:
        """Book a proc on its host and job (and its frame, when it has one)."""
        with self.lock:
            self._procs[proc.id] = proc
            proc.host.procs[proc.id] = proc
            proc.job.procs[proc.id] = proc
            if proc.frame is not None:
                proc.frame.proc = proc
            return proc

    def add_owner(self, owner: Owner) -> Owner:
        """Register an owner."""
        with self.lock:
            self._owners[owner.id] = owner
            self._owners_by_name[owner.name] = owner
            return owner

    def add_deed(self, deed: Deed) -> Deed:
        """Give a host to an owner, replacing any deed the host had (a host has one owner)."""
        with self.lock:
            previous = self._deeds_by_host.get(deed.host.id)
            if previous is not None:
                self.remove_deed(previous)
            self._deeds[deed.id] = deed
            self._deeds_by_host[deed.host.id] = deed
            deed.owner.deeds[deed.id] = deed
            return deed

    def register(self, record: R) -> R:
        """Index an administrative record (see :mod:`.admin_records`) by its type and id."""
        with self.lock:
            self._records.setdefault(type(record), {})[record.id] = record
            return record

    def unregister(self, record: object) -> None:
        """Remove an administrative record from the farm."""
        with self.lock:
            del self._records[type(record)][record.id]

    def get(self, kind: type[R], record_id: str) -> R:
        """The administrative record of this type with this id."""
        return self._get(self._records.get(kind, {}), record_id)

    def all(self, kind: type[R]) -> list[R]:
        """Every administrative record of a type, in creation order."""
        with self.lock:
            return list(self._records.get(kind, {}).values())

    def named(self, kind: type[R], name: str, where: Callable[[R], bool] | None = None) -> R:
        """The record of a type with this name (and passing ``where``, when given)."""
        with self.lock:
            for record in self._records.get(kind, {}).values():
                if record.name == name and (where is None or where(record)):
                    return record
            raise errors.EmptyResultError()

    # -- lookups ------------------------------------------------------------------

    def show(self, show_id: str) -> Show:
        """The show with this id."""
        return self._get(self._shows, show_id)

    def find_show(self, name: str) -> Show:
        """The show with this name."""
        return self._get(self._shows_by_name, name)

    def shows(self) -> list[Show]:
        """Every show, in creation order."""
        with self.lock:
            return list(self._shows.values())

    def group(self, group_id: str) -> Group:
        """The group with this id."""
        return self._get(self._groups, group_id)

    def find_group(self, show_name: str, name: str) -> Group:
        """The group of a show with this name."""
        with self.lock:
            show = self.find_show(show_name)
            for group in show.groups.values():
                if group.name == name:
                    return group
            raise errors.EmptyResultError()

    def job(self, job_id: str) -> Job:
        """The job with this id, in any state."""
        return self._get(self._jobs, job_id)

    def find_job(self, name: str) -> Job:
        """The pending job with this name; Cuebot lower-cases the name first."""
        with self.lock:
            job = self._get(self._jobs_by_name, name.lower())
            if job.state != job_pb2.PENDING:
                raise errors.EmptyResultError()
            return job

    def jobs(self) -> list[Job]:
        """Every job, in creation order."""
        with self.lock:
            return list(self._jobs.values())

    def layer(self, layer_id: str) -> Layer:
        """The layer with this id."""
        return self._get(self._layers, layer_id)

    def find_layer(self, job_name: str, layer_name: str) -> Layer:
        """A layer of a pending job, by names (Cuebot does not lower-case these)."""
        with self.lock:
            job = self._get(self._jobs_by_name, job_name)
            if job.state != job_pb2.PENDING:
                raise errors.EmptyResultError()
            return self._get(job.layers, layer_name)

    def frame(self, frame_id: str) -> Frame:
        """The frame with this id (see :meth:`add_numbered_layer` for derived ids)."""
        with self.lock:
            frame = self._frames.get(frame_id)
            if frame is None:
                layer = self._numbered_layers.get(frame_id[:FRAME_ID_PREFIX])
                number = frame_id[FRAME_ID_PREFIX:]
                if layer is not None and _HEX_NUMBER.match(number):
                    frame = layer.frame_number(int(number, 16))
            if frame is None or frame.id != frame_id:
                raise errors.EmptyResultError()
            return frame

    def find_frame(self, job_name: str, layer_name: str, number: int) -> Frame:
        """A frame of a pending job, by job and layer names and frame number."""
        with self.lock:
            frame = self.find_layer(job_name, layer_name).frame_number(number)
            if frame is None:
                raise errors.EmptyResultError()
            return frame

    def host(self, host_id: str) -> Host:
        """The host with this id."""
        return self._get(self._hosts, host_id)

    def find_host(self, name: str) -> Host:
        """The host with this name."""
        return self._get(self._hosts_by_name, name)

    def hosts(self) -> list[Host]:
        """Every host, in creation order."""
        with self.lock:
            return list(self._hosts.values())

    def proc(self, proc_id: str) -> Proc:
        """The proc with this id."""
        return self._get(self._procs, proc_id)

    def procs(self) -> list[Proc]:
        """Every proc, in booking order."""
        with self.lock:
            return list(self._procs.values())

    def owner(self, owner_id: str) -> Owner:
        """The owner with this id."""
        return self._get(self._owners, owner_id)

    def find_owner(self, name_or_id: str) -> Owner:
        """The owner with this user name or id, as Cuebot's GetOwner accepts either."""
        with self.lock:
            owner = self._owners_by_name.get(name_or_id) or self._owners.get(name_or_id)
            if owner is None:
                raise errors.EmptyResultError()
            return owner

    def owners(self) -> list[Owner]:
        """Every owner, in creation order."""
        with self.lock:
            return list(self._owners.values())

    def deed(self, deed_id: str) -> Deed:
        """The deed with this id."""
        return self._get(self._deeds, deed_id)

    def deed_of(self, host: Host) -> Deed:
        """The deed on a host."""
        return self._get(self._deeds_by_host, host.id)

    def _get(self, index: dict[K, V], key: K) -> V:
        """Look ``key`` up in one index, raising Cuebot's "no row" exception on a miss."""
        with self.lock:
            try:
                return index[key]
            except KeyError:
                raise errors.EmptyResultError() from None

    # -- shows and groups --------------------------------------------------------

    def create_show(self, name: str) -> Show:
        """Create a show and its root group, named after the show, as Cuebot does.

        The name is conformed like Cuebot's ``JobSpec.conformShowName``: at least
        three characters, dashes become underscores, lower case.
        """
        with self.lock:
            conformed = conform_name("Show", name)
            if conformed in self._shows_by_name:
                raise errors.duplicate_show(conformed)
            show = self.add_show(Show(id=self.new_id(), name=conformed))
            self.add_group(
                Group(id=self.new_id(), name=conformed, show=show, department=DEFAULT_DEPARTMENT)
            )
            return show

    def remove_group(self, group: Group) -> None:
        """Remove a group that holds no jobs and no sub groups."""
        with self.lock:
            del self._groups[group.id]
            del group.show.groups[group.id]

    # -- jobs and frames ---------------------------------------------------------

    def kill_job(self, job: Job, reason: str) -> bool:
        """Kill a pending job by hand: FINISHED now, its procs killed (see :meth:`kill_proc`).

        Cuebot ignores a manual kill without a reason (it logs "Invalid Job Kill
        Request") and a kill of a job that is not pending; so does the sandbox.
        Running frames go back to WAITING when RQD reports their kill; frames
        that are not running keep their state.  Returns whether the job was
        killed.
        """
        with self.lock:
            if not reason or job.state != job_pb2.PENDING:
                return False
            for proc in list(job.procs.values()):
                self.kill_proc(proc)
            self._finish(job)
            return True

    def eat_frames(self, frames: Iterable[Frame]) -> None:
        """Eat frames: each becomes EATEN whatever its state, as in Cuebot.

        A running frame's proc is killed, what waited on the frame is released,
        and a job left with nothing to render finishes.
        """
        with self.lock:
            jobs: dict[str, Job] = {}
            for frame in list(frames):
                self._stop_frame(frame, job_pb2.EATEN)
                self.depends.frame_done(frame)
                jobs[frame.layer.job.id] = frame.layer.job
            for job in jobs.values():
                self._finish_if_complete(job)

    def retry_frames(self, frames: Iterable[Frame]) -> None:
        """Retry frames: each becomes WAITING whatever its state, as in Cuebot.

        A running frame's proc is killed, and the frame's job goes back to
        PENDING even if it had finished.  A frame still held by a depend lands
        in DEPEND.
        """
        with self.lock:
            for frame in list(frames):
                self._stop_frame(frame, job_pb2.WAITING)
                frame.layer.job.state = job_pb2.PENDING

    def kill_frames(self, frames: Iterable[Frame]) -> None:
        """Kill the procs running these frames (see :meth:`kill_proc`).

        Cuebot only kills procs: a frame that is not running is left alone.
        """
        with self.lock:
            for frame in list(frames):
                if frame.proc is not None:
                    self.kill_proc(frame.proc)

    def mark_as_waiting(self, frames: Iterable[Frame]) -> None:
        """Put DEPEND frames back to WAITING, forgetting their depends (Cuebot's query).

        Only frames in DEPEND change; their depend count drops to zero.
        """
        with self.lock:
            now = self.now()
            for frame in list(frames):
                if frame.state == job_pb2.DEPEND:
                    frame.depend_count = 0
                    frame.set_state(job_pb2.WAITING, now)
                    frame.llu_time = now

    def mark_as_depend(self, frame: Frame) -> None:
        """Put a WAITING frame with unsatisfied depends back to DEPEND."""
        with self.lock:
            held = self.depends.holding(frame)
            if held and frame.state == job_pb2.WAITING:
                frame.depend_count = held
                frame.set_state(job_pb2.WAITING, self.now())

    def start_frame(
        self, frame: Frame, host: Host, cores: float, memory: int, gpus: float = 0.0
    ) -> Proc:
        """Book a proc for a WAITING frame on ``host`` and mark the frame RUNNING."""
        with self.lock:
            now = self.now()
            job = frame.layer.job
            proc = self.add_proc(Proc(
                id=self.new_id(), host=host, job=job, layer=frame.layer,
                reserved_cores=cores, reserved_memory=memory, used_memory=0,
                reserved_gpus=gpus, log_path=f"{job.log_dir}/{job.name}.{frame.name}.rqlog",
                booked_time=now, frame=frame,
            ))
            frame.start_time, frame.stop_time, frame.exit_status = now, 0, -1
            frame.llu_time, frame.used_memory = now, 0
            frame.last_resource = proc.name
            frame.set_state(job_pb2.RUNNING, now)
            return proc

    def complete_frame(self, frame: Frame, exit_status: int, max_rss: int) -> None:
        """End a running frame the way Cuebot's FrameCompleteHandler does.

        Exit status 0 succeeds (and releases what waited on the frame); any
        other retries the frame until the job's ``max_retries`` is used up, then
        the frame is DEAD, or EATEN when the job eats its dead frames.  Either
        way the proc leaves the host, the layer's usage grows, and a job with
        nothing left to render finishes.
        """
        with self.lock:
            proc = frame.proc
            if proc is None:
                return
            now = self.now()
            seconds = max(now - frame.start_time, 0)
            self._remove_proc(proc)
            frame.stop_time, frame.exit_status = now, exit_status
            frame.max_rss = max(frame.max_rss, max_rss)
            frame.used_memory = max_rss
            usage = frame.layer.usage
            usage.max_rss = max(usage.max_rss, max_rss)
            job = frame.layer.job
            if exit_status == 0:
                usage.rendered_frames += 1
                usage.rendered_frame_sec += seconds
                usage.rendered_core_sec += seconds * proc.reserved_cores
                usage.high_frame_sec = max(usage.high_frame_sec, seconds)
                usage.low_frame_sec = min(usage.low_frame_sec or seconds, seconds)
                frame.set_state(job_pb2.SUCCEEDED, now)
                self.depends.frame_done(frame)
            else:
                usage.failed_frames += 1
                usage.failed_core_sec += seconds * proc.reserved_cores
                frame.retry_count += 1
                if frame.retry_count < job.max_retries:
                    frame.set_state(job_pb2.WAITING, now)
                elif job.auto_eat:
                    frame.set_state(job_pb2.EATEN, now)
                    self.depends.frame_done(frame)
                else:
                    frame.set_state(job_pb2.DEAD, now)
            self._finish_if_complete(job)

    def updated_frames(
        self, job: Job, last_check: int, layer_ids: Iterable[str]
    ) -> list[Frame]:
        """Frames of ``job`` changed after ``last_check`` (at most 100), as GetUpdatedFrames.

        Raises the INVALID_ARGUMENT error when ``last_check`` is over a minute old.
        """
        with self.lock:
            difference = self.now() - last_check
            if difference > UPDATED_FRAMES_MAX_AGE:
                raise errors.stale_update_check(difference)
            wanted = set(layer_ids)
            changed = (
                frame
                for layer in job.layers.values() if not wanted or layer.id in wanted
                for frame in layer.frames if frame.updated_at > last_check
            )
            return list(itertools.islice(changed, UPDATED_FRAMES_LIMIT))

    def set_group(self, job: Job, group: Group) -> None:
        """Move a job to another group of its show."""
        with self.lock:
            if group.show is not job.show:
                raise errors.EmptyResultError()
            del job.group.jobs[job.id]
            job.group = group
            group.jobs[job.id] = job

    def _stop_frame(self, frame: Frame, state: int) -> None:
        """Put a frame in ``state``, first killing the proc running it, if any."""
        now = self.now()
        if frame.proc is not None:
            self._remove_proc(frame.proc)
            frame.stop_time = now
        frame.set_state(state, now)

    def finish_if_complete(self, job: Job) -> None:
        """Finish a pending job with nothing left to render (ShutdownIfCompleted).

        The public, locked entry to the rule the farm applies after every frame
        change, so the RPC handler does not restate it.
        """
        with self.lock:
            self._finish_if_complete(job)

    def _finish_if_complete(self, job: Job) -> None:
        """Finish a pending job once none of its frames is left to render or fix."""
        if job.state == job_pb2.PENDING and job.is_complete():
            self._finish(job)

    def _finish(self, job: Job) -> None:
        """Mark a job FINISHED now; its procs leave (killed ones once RQD reports), and depends
        on the job record are met."""
        for proc in list(job.procs.values()):
            if not proc.killed:
                self._remove_proc(proc)
        job.state = job_pb2.FINISHED
        job.stop_time = self.now()
        for depend in self.depends.what_depends_on(job):
            if depend.on_layer is None:
                self.depends.satisfy(depend)

    # -- comments -----------------------------------------------------------------

    def add_comment(self, target: Job | Host, user: str, subject: str, message: str) -> Comment:
        """Add a comment to a job or a host, stamped now (Cuebot ignores the client's time)."""
        with self.lock:
            comment = Comment(
                id=self.new_id(), timestamp=self.now(), user=user, subject=subject,
                message=message,
            )
            target.comments.append(comment)
            self._comments[comment.id] = (comment, target.comments)
            return comment

    def comment(self, comment_id: str) -> Comment:
        """The comment with this id, on any job or host."""
        return self._get(self._comments, comment_id)[0]

    def delete_comment(self, comment_id: str) -> None:
        """Remove a comment from its job or host."""
        with self.lock:
            comment, owner_list = self._get(self._comments, comment_id)
            owner_list.remove(comment)
            del self._comments[comment_id]

    # -- hosts, procs, owners ----------------------------------------------------

    def kill_proc(self, proc: Proc) -> None:
        """Ask RQD to kill a proc, as Cuebot's ``JobManagerSupport.unbookProc`` does.

        The proc is unbooked at once and stays, with its frame RUNNING, until
        :meth:`deliver_reports` brings RQD's answer: then the frame goes back to
        WAITING and the proc leaves its host.
        """
        with self.lock:
            self.unbook_proc(proc, kill=False)
            proc.killed = True

    def unbook_proc(self, proc: Proc, kill: bool) -> None:
        """Unbook a proc: it leaves once its frame ends, or once RQD reports its kill."""
        with self.lock:
            if not proc.unbooked:
                proc.unbooked, proc.unbooked_at = True, self.now()
            self._leaving[proc.id] = proc
            if kill:
                self.kill_proc(proc)

    def keep_proc(self, proc: Proc) -> bool:
        """Cancel a proc's unbooking or redirect (ClearRedirect); True if it had one.

        A kill already sent to RQD cannot be taken back, so a killed proc stays unbooked.
        """
        with self.lock:
            had_redirect = bool(proc.redirect_target)
            proc.redirect_target = ""
            if not proc.killed:
                proc.unbooked = False
                self._leaving.pop(proc.id, None)
            return had_redirect

    def deliver_reports(self) -> None:
        """Apply what RQD reports to Cuebot about the procs that are leaving.

        A killed proc's frame ends (back to WAITING) and the proc leaves its
        host; an unbooked proc that runs no frame leaves once Cuebot's
        orphaned-proc check would clear it, :data:`ORPHAN_SECONDS` after it
        was unbooked.  The simulator calls this every tick; the server, on a
        farm that is not simulated, before every call.
        """
        with self.lock:
            now = self.now()
            for proc in list(self._leaving.values()):
                if proc.killed and proc.frame is not None:
                    self._stop_frame(proc.frame, job_pb2.WAITING)
                elif proc.frame is None and now - proc.unbooked_at >= ORPHAN_SECONDS:
                    self._remove_proc(proc)

    def delete_host(self, host: Host) -> None:
        """Remove a host, its procs (their frames go back to WAITING) and its deed."""
        with self.lock:
            for proc in list(host.procs.values()):
                if proc.frame is not None:
                    self._stop_frame(proc.frame, job_pb2.WAITING)
                else:
                    self._remove_proc(proc)
            deed = self._deeds_by_host.get(host.id)
            if deed is not None:
                self.remove_deed(deed)
            del self._hosts[host.id]
            del self._hosts_by_name[host.name]

    def take_ownership(self, owner: Owner, host_name: str) -> Deed:
        """Give a NIMBY host to an owner, replacing the host's previous deed."""
        with self.lock:
            host = self.find_host(host_name)
            if not host.nimby_enabled:
                raise errors.not_nimby()
            return self.add_deed(Deed(id=self.new_id(), owner=owner, host=host))

    def remove_deed(self, deed: Deed) -> None:
        """Take a host away from its owner."""
        with self.lock:
            del self._deeds[deed.id]
            del self._deeds_by_host[deed.host.id]
            del deed.owner.deeds[deed.id]

    def delete_owner(self, owner: Owner) -> None:
        """Remove an owner and its deeds."""
        with self.lock:
            for deed in list(owner.deeds.values()):
                self.remove_deed(deed)
            del self._owners[owner.id]
            del self._owners_by_name[owner.name]

    def _remove_proc(self, proc: Proc) -> None:
        """Free a proc's reservation on its host and job."""
        del self._procs[proc.id]
        self._leaving.pop(proc.id, None)
        del proc.host.procs[proc.id]
        del proc.job.procs[proc.id]
        if proc.frame is not None:
            proc.frame.proc = None
            proc.frame = None
