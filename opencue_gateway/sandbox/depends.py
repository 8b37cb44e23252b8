"""Dependencies between jobs, layers and frames, with Cuebot's depend-count semantics.

A depend holds back the frames of its "er" side (a job, a layer or a frame)
until its "on" side is complete.  As in Cuebot's ``DependManagerService``,
creating an active depend raises the ``depend_count`` of every er frame, and a
frame whose count is above zero shows as DEPEND (the database trigger's rule,
applied in :meth:`Frame.set_state`); satisfying the depend lowers the counts,
and a frame whose count reaches zero goes from DEPEND back to WAITING.

A depend on a job that is already complete is refused (Cuebot's
``DependException``); one on a complete layer or frame is created inactive.
A frame-by-frame depend is a parent with one frame-on-frame child per er frame
that has a frame of the same number on the other layer.

Depends are satisfied when their "on" side completes: the farm calls
:meth:`Depends.frame_done` whenever a frame succeeds or is eaten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from opencue_proto import depend_pb2, job_pb2

from opencue_gateway.sandbox import errors
from opencue_gateway.sandbox.records import Frame, Job, Layer

Target = Job | Layer | Frame

# States that count as done for a depend's "on" side.
DONE_STATES = (job_pb2.SUCCEEDED, job_pb2.EATEN)

_KIND = {Job: "JOB", Layer: "LAYER", Frame: "FRAME"}


@dataclass(eq=False, slots=True)
class Depend:
    """One dependency; the er side is the most specific of job, layer and frame given."""

    id: str
    type: int
    er_job: Job
    on_job: Job
    er_layer: Layer | None = None
    er_frame: Frame | None = None
    on_layer: Layer | None = None
    on_frame: Frame | None = None
    any_frame: bool = False
    active: bool = True
    frames: list[Frame] = field(default_factory=list)
    children: list[Depend] = field(default_factory=list)
    parent: Depend | None = None

    @property
    def target(self) -> int:
        """INTERNAL within one job, EXTERNAL across jobs."""
        return depend_pb2.INTERNAL if self.er_job is self.on_job else depend_pb2.EXTERNAL

    @property
    def er(self) -> Target:
        """The most specific entity this depend holds back (its frames are the held ones)."""
        return self.er_frame or self.er_layer or self.er_job


def frames_of(target: Target) -> list[Frame]:
    """Every frame of a job, a layer, or the frame itself."""
    if isinstance(target, Frame):
        return [target]
    if isinstance(target, Layer):
        return list(target.frames)
    return [frame for layer in target.layers.values() for frame in layer.frames]


def is_complete(target: Target) -> bool:
    """True when every frame of the target succeeded or was eaten."""
    if isinstance(target, Frame):
        return target.state in DONE_STATES
    layers = [target] if isinstance(target, Layer) else list(target.layers.values())
    return all(
        sum(layer.counts[state] for state in DONE_STATES) == len(layer.frames)
        for layer in layers
    )


def _sides(target: Target) -> tuple[Job, Layer | None, Frame | None]:
    """A target's job, layer and frame (None where the target is coarser)."""
    if isinstance(target, Frame):
        return target.layer.job, target.layer, target
    if isinstance(target, Layer):
        return target.job, target, None
    return target, None, None


class Depends:
    """Every depend of a farm, indexed by id and by the id of what it depends on.

    Callers hold ``Farm.lock``; ``new_id`` and ``now`` come from the farm.
    """

    def __init__(self, new_id: Callable[[], str], now: Callable[[], int]) -> None:
        self._new_id = new_id
        self._now = now
        self._by_id: dict[str, Depend] = {}
        self._on: dict[str, list[Depend]] = {}

    def get(self, depend_id: str) -> Depend:
        """The depend with this id."""
        try:
            return self._by_id[depend_id]
        except KeyError:
            raise errors.EmptyResultError() from None

    def create(self, er: Target, on: Target, any_frame: bool = False) -> Depend:
        """Make ``er`` wait for ``on``; active unless ``on`` is already complete."""
        if isinstance(on, Job) and is_complete(on):
            raise errors.depend_on_complete_job()
        kind = depend_pb2.DependType.Value(f"{_KIND[type(er)]}_ON_{_KIND[type(on)]}")
        depend = self._new(kind, er, on, any_frame)
        if is_complete(on):
            depend.active = False
        else:
            self._hold(depend, frames_of(er))
        return depend

    def create_frame_by_frame(self, er: Layer, on: Layer, any_frame: bool) -> Depend:
        """Make each frame of ``er`` wait for the frame of the same number on ``on``."""
        parent = self._new(depend_pb2.FRAME_BY_FRAME, er, on, any_frame)
        for frame in er.frames:
            on_frame = on.frame_number(frame.number)
            if on_frame is None:
                continue
            child = self.create(frame, on_frame)
            child.parent = parent
            parent.children.append(child)
        parent.active = any(child.active for child in parent.children)
        return parent

    def satisfy(self, depend: Depend) -> None:
        """Release the frames a depend holds; its children are satisfied too."""
        for child in depend.children:
            self.satisfy(child)
        if not depend.active:
            return
        depend.active = False
        now = self._now()
        for frame in depend.frames:
            if frame.depend_count > 0:
                frame.depend_count -= 1
                if frame.depend_count == 0 and frame.state == job_pb2.DEPEND:
                    frame.set_state(job_pb2.WAITING, now)
        depend.frames = []

    def unsatisfy(self, depend: Depend) -> None:
        """Make a satisfied depend hold its er frames again."""
        if depend.children:
            for child in depend.children:
                self.unsatisfy(child)
            depend.active = True
        elif not depend.active:
            self._hold(depend, frames_of(depend.er))

    def frame_done(self, frame: Frame) -> None:
        """Satisfy what waited on a frame that just succeeded or was eaten.

        Depends on its layer and its job are satisfied once they complete too.
        """
        for target in (frame, frame.layer, frame.layer.job):
            waiting = [d for d in self._on.get(target.id, ()) if d.active]
            if waiting and (target is frame or is_complete(target)):
                for depend in waiting:
                    self.satisfy(depend)

    def holding(self, frame: Frame) -> int:
        """How many active depends (frame-by-frame children included) hold ``frame``."""
        return sum(
            frame in depend.frames for depend in self._by_id.values() if depend.active
        )

    def what_this_depends_on(self, target: Target, only_active: bool = True) -> list[Depend]:
        """Depends whose er side is, or lies within, ``target``."""
        return [
            d for d in self._listed(target, only_active)
            if _within(target, d.er_job, d.er_layer, d.er_frame)
        ]

    def what_depends_on(self, target: Target) -> list[Depend]:
        """Active depends whose on side is, or lies within, ``target``.

        For a frame the index by "on" id answers directly, in creation order
        as the scan would: MarkDoneFrames asks once per frame, and scanning
        every depend for each frame would grow with the farm.
        """
        if isinstance(target, Frame):
            return [d for d in self._on.get(target.id, ()) if d.active]
        return [
            d for d in self._listed(target, True)
            if _within(target, d.on_job, d.on_layer, d.on_frame)
        ]

    def drop(self, target: Target, which: int) -> None:
        """Satisfy what ``target`` depends on: INTERNAL, EXTERNAL or ANY_TARGET depends."""
        for depend in self.what_this_depends_on(target):
            if which in (depend_pb2.ANY_TARGET, depend.target):
                self.satisfy(depend)

    def _listed(self, target: Target, only_active: bool) -> Iterator[Depend]:
        """Depends a listing for ``target`` may show, oldest first.

        Frame-by-frame children are frame-on-frame depends, so only a frame's
        listing shows them; a job's or a layer's shows their parent.
        """
        return (
            d for d in self._by_id.values()
            if (d.parent is None or isinstance(target, Frame)) and (d.active or not only_active)
        )

    def _new(self, kind: int, er: Target, on: Target, any_frame: bool) -> Depend:
        """Register a depend record between ``er`` and ``on``."""
        er_job, er_layer, er_frame = _sides(er)
        on_job, on_layer, on_frame = _sides(on)
        depend = Depend(
            id=self._new_id(), type=kind, er_job=er_job, er_layer=er_layer, er_frame=er_frame,
            on_job=on_job, on_layer=on_layer, on_frame=on_frame, any_frame=any_frame,
        )
        self._by_id[depend.id] = depend
        self._on.setdefault(on.id, []).append(depend)
        return depend

    def _hold(self, depend: Depend, frames: Iterable[Frame]) -> None:
        """Raise the depend count of ``frames`` for an active depend."""
        depend.active = True
        depend.frames = list(frames)
        now = self._now()
        for frame in depend.frames:
            frame.depend_count += 1
            frame.set_state(frame.state, now)


def _within(target: Target, job: Job, layer: Layer | None, frame: Frame | None) -> bool:
    """Whether a depend side (job, layer, frame) is ``target`` or lies inside it."""
    if isinstance(target, Job):
        return job is target
    if isinstance(target, Layer):
        return layer is target
    return frame is target
