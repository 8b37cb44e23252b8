"""Reordering and staggering a layer's frames (Reorder*/Stagger* RPCs).

A layer's ``frames`` list is kept in dispatch order and each frame's
``dispatch_order`` is its index in that list, so frame searches, which walk
layers lazily in dispatch order, see the new order at once.  Callers hold
``Farm.lock``.
"""

from __future__ import annotations

from opencue_proto import job_pb2

from opencue_gateway.sandbox.records import Frame, Layer
from opencue_gateway.sandbox.search import frame_set


def reorder(layer: Layer, spec: str, order: int) -> None:
    """Move the frames of ``spec`` to the front (FIRST), the back (LAST), or reverse them."""
    numbers = frame_set(spec)
    chosen = [frame for frame in layer.frames if frame.number in numbers]
    rest = [frame for frame in layer.frames if frame.number not in numbers]
    if order == job_pb2.FIRST:
        _renumber(layer, chosen + rest)
    elif order == job_pb2.LAST:
        _renumber(layer, rest + chosen)
    else:
        reversed_chosen = iter(reversed(chosen))
        _renumber(layer, [
            next(reversed_chosen) if frame.number in numbers else frame for frame in layer.frames
        ])


def stagger(layer: Layer, spec: str, step: int) -> None:
    """Spread the frames of ``spec`` out: every ``step``-th frame first, then the gaps.

    The staggered frames keep the dispatch positions they held, in their new
    order, so frames outside ``spec`` do not move.
    """
    numbers = frame_set(spec)
    chosen = sorted((f for f in layer.frames if f.number in numbers), key=lambda f: f.number)
    step = max(step, 1)
    staggered = iter([frame for start in range(step) for frame in chosen[start::step]])
    _renumber(layer, [
        next(staggered) if frame.number in numbers else frame for frame in layer.frames
    ])


def _renumber(layer: Layer, frames: list[Frame]) -> None:
    """Make ``frames`` the layer's dispatch order."""
    layer.frames[:] = frames
    for position, frame in enumerate(frames):
        frame.dispatch_order = position
