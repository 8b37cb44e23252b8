"""The sandbox Cuebot's in-memory farm: every entity, indexed, and every change to it.

Entities are the records of :mod:`opencue_gateway.sandbox.records`, indexed by
id and by name so that no lookup scans the farm.  Lookups that match nothing
raise :class:`~opencue_gateway.sandbox.errors.EmptyResultError`, as Cuebot's
DAOs raise Spring's exception; the RPC handlers decide how to report it.

Changes follow Cuebot's semantics (``JobManagerSupport``, ``FrameCompleteHandler``)
but happen at once: where Cuebot queues an eat or a retry on its dispatch queue,
the sandbox applies it before answering, so the next read sees it.

Thread-safety: gRPC handlers run on a thread pool, so one re-entrant lock,
``Farm.lock``, guards all state.  Every public method takes it, and the server
holds it around each whole RPC, so a lookup and the rendering of its answer
see one consistent farm.  Code that reads records directly, rather than through
methods, must hold ``farm.lock`` as well.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from opencue_proto import job_pb2

from opencue_gateway.sandbox import errors, seed
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

# Cuebot's JobSpec.NAME_REGEX, applied after dashes become underscores.
_NAME_PATTERN = re.compile(r"^[\w.-]{3,}$", re.ASCII)
# Cuebot's default department, given to the root group of a new show.
DEFAULT_DEPARTMENT = "Unknown"
# GetUpdatedFrames answers at most this many frames, and refuses older checks.
UPDATED_FRAMES_LIMIT = 100
UPDATED_FRAMES_MAX_AGE = 60


def new_id() -> str:
    """A fresh entity id in Cuebot's form (a random UUID)."""
    return str(uuid.uuid4())


def whole_cores(cores: float) -> float:
    """Round a core count the way Cuebot's ``Convert.coresToWholeCoreUnits`` does.

    Group and job core limits are stored in whole cores; -1 ("no limit") is kept.
    """
    if cores == -1:
        return -1.0
    return float(int((cores * 100.0 + 0.5) / 100))


class Farm:
    """Shows, groups, jobs, layers, frames, hosts, procs, owners and deeds."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self._shows: dict[str, Show] = {}
        self._shows_by_name: dict[str, Show] = {}
        self._groups: dict[str, Group] = {}
        self._jobs: dict[str, Job] = {}
        self._jobs_by_name: dict[str, Job] = {}
        self._layers: dict[str, Layer] = {}
        self._frames: dict[str, Frame] = {}
        self._hosts: dict[str, Host] = {}
        self._hosts_by_name: dict[str, Host] = {}
        self._procs: dict[str, Proc] = {}
        self._owners: dict[str, Owner] = {}
        self._owners_by_name: dict[str, Owner] = {}
        self._deeds: dict[str, Deed] = {}
        self._deeds_by_host: dict[str, Deed] = {}

    @classmethod
    def seeded(cls, clock: Callable[[], float] = time.time) -> Farm:
        """A farm holding the README's example entities (see :mod:`.seed`)."""
        farm = cls(clock)
        seed.populate(farm)
        return farm

    def now(self) -> int:
        """The farm's clock in epoch seconds; injectable so tests and simulations control time."""
        return int(self._clock())

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
            self._layers[layer.id] = layer
            layer.job.layers[layer.name] = layer
            now = self.now()
            for order, (frame_id, number) in enumerate(frames):
                frame = Frame(
                    id=frame_id, number=number, layer=layer, state=job_pb2.WAITING,
                    dispatch_order=order, updated_at=now, llu_time=layer.job.start_time,
                )
                layer.frames.append(frame)
                layer.by_number[number] = frame
                layer.counts[frame.state] += 1
                self._frames[frame.id] = frame
            layer.job.show.created_frame_count += len(layer.frames)
            return layer

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
                del self._deeds[previous.id]
                del previous.owner.deeds[previous.id]
            self._deeds[deed.id] = deed
            self._deeds_by_host[deed.host.id] = deed
            deed.owner.deeds[deed.id] = deed
            return deed

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
        """The frame with this id."""
        return self._get(self._frames, frame_id)

    def find_frame(self, job_name: str, layer_name: str, number: int) -> Frame:
        """A frame of a pending job, by job and layer names and frame number."""
        with self.lock:
            return self._get(self.find_layer(job_name, layer_name).by_number, number)

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
            if len(name) < 3:
                raise errors.short_show_name("Show")
            conformed = name.replace("-", "_").lower()
            if not _NAME_PATTERN.match(conformed):
                raise errors.malformed_name("Show", conformed)
            if conformed in self._shows_by_name:
                raise errors.duplicate_show(conformed)
            show = self.add_show(Show(id=new_id(), name=conformed))
            self.add_group(
                Group(id=new_id(), name=conformed, show=show, department=DEFAULT_DEPARTMENT)
            )
            return show

    def set_group_min_cores(self, group: Group, cores: float) -> None:
        """Set a group's minimum cores, in whole cores as Cuebot stores them."""
        with self.lock:
            group.min_cores = whole_cores(cores)

    def set_group_max_cores(self, group: Group, cores: float) -> None:
        """Set a group's maximum cores, in whole cores as Cuebot stores them."""
        with self.lock:
            group.max_cores = whole_cores(cores)

    # -- jobs and frames ---------------------------------------------------------

    def set_paused(self, job: Job, paused: bool) -> None:
        """Pause or resume a job; any job, finished or not, as Cuebot allows."""
        with self.lock:
            job.is_paused = paused

    def kill_job(self, job: Job, reason: str) -> bool:
        """Kill a pending job by hand: FINISHED, its running frames back to WAITING.

        Cuebot ignores a manual kill without a reason (it logs "Invalid Job Kill
        Request") and a kill of a job that is not pending; so does the sandbox.
        Frames that are not running keep their state.  Returns whether the job
        was killed.
        """
        with self.lock:
            if not reason or job.state != job_pb2.PENDING:
                return False
            for layer in job.layers.values():
                for frame in layer.frames:
                    if frame.state == job_pb2.RUNNING:
                        self._stop_frame(frame, job_pb2.WAITING)
            self._finish(job)
            return True

    def eat_frames(self, frames: Iterable[Frame]) -> None:
        """Eat frames: each becomes EATEN whatever its state, as in Cuebot.

        A running frame's proc is killed.  A job left with nothing to render
        finishes.
        """
        with self.lock:
            jobs: dict[str, Job] = {}
            for frame in list(frames):
                self._stop_frame(frame, job_pb2.EATEN)
                jobs[frame.layer.job.id] = frame.layer.job
            for job in jobs.values():
                if job.state == job_pb2.PENDING and job.is_complete():
                    self._finish(job)

    def retry_frames(self, frames: Iterable[Frame]) -> None:
        """Retry frames: each becomes WAITING whatever its state, as in Cuebot.

        A running frame's proc is killed, and the frame's job goes back to
        PENDING even if it had finished.
        """
        with self.lock:
            for frame in list(frames):
                self._stop_frame(frame, job_pb2.WAITING)
                frame.layer.job.state = job_pb2.PENDING

    def kill_frames(self, frames: Iterable[Frame]) -> None:
        """Kill the procs running these frames; the frames go back to WAITING.

        Cuebot only kills procs: a frame that is not running is left alone.
        """
        with self.lock:
            for frame in list(frames):
                if frame.proc is not None:
                    self._stop_frame(frame, job_pb2.WAITING)

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

    def _stop_frame(self, frame: Frame, state: int) -> None:
        """Put a frame in ``state``, first killing the proc running it, if any."""
        now = self.now()
        if frame.proc is not None:
            self._remove_proc(frame.proc)
            frame.stop_time = now
        frame.set_state(state, now)

    def _finish(self, job: Job) -> None:
        """Mark a job FINISHED now; procs still booked on it leave, freeing their hosts."""
        for proc in list(job.procs.values()):
            self._remove_proc(proc)
        job.state = job_pb2.FINISHED
        job.stop_time = self.now()

    # -- comments -----------------------------------------------------------------

    def add_comment(self, target: Job | Host, user: str, subject: str, message: str) -> Comment:
        """Add a comment to a job or a host, stamped now (Cuebot ignores the client's time)."""
        with self.lock:
            comment = Comment(
                id=new_id(), timestamp=self.now(), user=user, subject=subject, message=message
            )
            target.comments.append(comment)
            return comment

    # -- hosts, procs, owners ----------------------------------------------------

    def set_lock_state(self, host: Host, state: int) -> None:
        """Lock or unlock a host."""
        with self.lock:
            host.lock_state = state

    def kill_proc(self, proc: Proc) -> None:
        """Kill a proc: it leaves its host, and a frame it was running goes back to WAITING."""
        with self.lock:
            if proc.frame is not None:
                self._stop_frame(proc.frame, job_pb2.WAITING)
            else:
                self._remove_proc(proc)

    def unbook_proc(self, proc: Proc, kill: bool) -> None:
        """Unbook a proc: it will leave once its frame ends, or at once when ``kill``."""
        with self.lock:
            proc.unbooked = True
            if kill:
                self.kill_proc(proc)

    def take_ownership(self, owner: Owner, host_name: str) -> Deed:
        """Give a NIMBY host to an owner, replacing the host's previous deed."""
        with self.lock:
            host = self.find_host(host_name)
            if not host.nimby_enabled:
                raise errors.not_nimby()
            return self.add_deed(Deed(id=new_id(), owner=owner, host=host))

    def _remove_proc(self, proc: Proc) -> None:
        """Free a proc's reservation on its host and job."""
        del self._procs[proc.id]
        del proc.host.procs[proc.id]
        del proc.job.procs[proc.id]
        if proc.frame is not None:
            proc.frame.proc = None
            proc.frame = None

