"""Search criteria applied to the farm's records, following Cuebot's criteria classes.

Each ``*SearchCriteria`` field narrows the result only when it is set, and the
fields combine with AND, as in Cuebot's ``JobSearch``, ``FrameSearch``,
``HostSearch`` and ``ProcSearch``.  Memory is in KB (:mod:`.units`) and
times in epoch seconds.  Frames are read lazily, layer by layer in
dispatch order, so a page of a large job never visits every frame.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Iterable, Iterator

from opencue_proto import host_pb2, job_pb2

from opencue_gateway.sandbox.records import Frame, Host, Job, Layer, Proc
from opencue_gateway.sandbox.units import KB_PER_GIB

# FrameSearch's page size when the client gives none, and its ceiling.
MAX_FRAME_RESULTS = 1000

_FRAME_SET_ITEM = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:([xy:])(\d+))?)?$")
# FrameSearch's memory and duration ranges: "low-high" or "low" (at least), as floats.
_FLOAT_RANGE = re.compile(r"^([0-9.]+)-([0-9.]+)$")
# FrameSearch's memory ranges are in GiB of the frame's peak memory, which is in KB.
# FrameSearch's duration ranges are in hours.
HOUR = 3600


def match_jobs(jobs: Iterable[Job], criteria: job_pb2.JobSearchCriteria) -> list[Job]:
    """Jobs matching ``criteria``, sorted by name as Cuebot sorts them."""
    ids = set(criteria.ids)
    names = set(criteria.jobs)
    shots = set(criteria.shots)
    shows = set(criteria.shows)
    users = set(criteria.users)
    regexes = [re.compile(pattern) for pattern in criteria.regex]

    def wanted(job: Job) -> bool:
        """Apply each set field of the criteria; an unset field matches everything."""
        return (
            (criteria.include_finished or job.state == job_pb2.PENDING)
            and (not ids or job.id in ids)
            and (not names or job.name in names)
            and (not shots or job.shot in shots)
            and (not shows or job.show.name in shows)
            and (not users or job.user in users)
            and (not criteria.substr or any(s in job.name for s in criteria.substr))
            and (not regexes or any(r.search(job.name) for r in regexes))
        )

    return sorted((job for job in jobs if wanted(job)), key=lambda job: job.name)


def frame_page(
    layers: Iterable[Layer], criteria: job_pb2.FrameSearchCriteria, now: int
) -> list[Frame]:
    """One page of the frames of ``layers`` matching ``criteria``, for Get*Frames.

    ``page`` is 1-based (0 means 1) and ``limit`` is the page size; a limit of 0
    or over 1000 means 1000, which is what Cuebot's FrameSearch evidently intends
    (its code, as written, returns nothing for a limit of 0).  The page is cut
    from a lazy walk, so only the frames up to its end are visited.
    """
    page = max(criteria.page, 1)
    limit = criteria.limit if 0 < criteria.limit < MAX_FRAME_RESULTS else MAX_FRAME_RESULTS
    frames = matching_frames(layers, criteria, now)
    return list(itertools.islice(frames, (page - 1) * limit, page * limit))


def matching_frames(
    layers: Iterable[Layer], criteria: job_pb2.FrameSearchCriteria, now: int
) -> Iterator[Frame]:
    """Every frame of ``layers`` matching ``criteria``, ignoring paging.

    This is what Cuebot's eat, kill and retry act on.  Order is Cuebot's: frame
    dispatch order, then layer dispatch order.  ``include_finished``,
    ``offset`` and ``max_results`` are ignored, as Cuebot's FrameSearch ignores
    them; ``now`` is the end of a running frame's duration.
    """
    wanted = _frame_filter(criteria, now)
    return (frame for frame in _ordered(layers) if wanted(frame))


def _ordered(layers: Iterable[Layer]) -> Iterator[Frame]:
    """Merge the layers' frame lists lazily into Cuebot's frame order."""
    return heapq.merge(
        *(layer.frames for layer in layers),
        key=lambda frame: (frame.dispatch_order, frame.layer.dispatch_order),
    )


def _frame_filter(criteria: job_pb2.FrameSearchCriteria, now: int) -> Callable[[Frame], bool]:
    """Build the frame predicate once per search, so no field is re-parsed per frame."""
    ids = set(criteria.ids)
    names = set(criteria.frames)
    layers = set(criteria.layers)
    states = set(criteria.states.frame_states)
    numbers = frame_set(criteria.frame_range) if criteria.frame_range else None
    change_date = criteria.change_date
    memory = float_range(criteria.memory_range, KB_PER_GIB)
    duration = float_range(criteria.duration_range, HOUR)

    def wanted(frame: Frame) -> bool:
        """Apply each set field of the criteria; an unset field matches everything."""
        return (
            (not ids or frame.id in ids)
            and (not names or frame.name in names)
            and (not layers or frame.layer.name in layers)
            and (not states or frame.state in states)
            and (change_date <= 0 or frame.updated_at > change_date)
            and (numbers is None or frame.number in numbers)
            and (memory is None or memory[0] <= frame.max_rss <= memory[1])
            and (duration is None or (
                frame.state != job_pb2.WAITING
                and duration[0] <= _duration(frame, now) <= duration[1]
            ))
        )

    return wanted


def float_range(text: str, unit: float) -> tuple[float, float] | None:
    """Read a FrameSearch range (``"2-4"`` or ``"2"``, meaning at least 2) in ``unit``s.

    None means "no filter": the field is empty or, as Cuebot logs and skips, unreadable.
    """
    match = _FLOAT_RANGE.match(text)
    try:
        if match:
            return float(match.group(1)) * unit, float(match.group(2)) * unit
        return (float(text) * unit, float("inf")) if text else None
    except ValueError:
        return None


def _duration(frame: Frame, now: int) -> int:
    """Seconds a frame has run: to its stop, or to now while it runs (Cuebot's find_duration)."""
    if not frame.start_time:
        return 0
    end = frame.stop_time if frame.stop_time >= frame.start_time else now
    return end - frame.start_time


def frame_set(spec: str) -> set[int]:
    """Expand an OpenCue frame set such as ``1-10x2,15,20-25`` into frame numbers.

    ``x`` steps through a range, ``y`` takes what ``x`` would skip, and ``:``
    (interleave) is read as a plain step, since a search needs membership, not
    order.  Items that do not parse select nothing.
    """
    numbers: set[int] = set()
    for item in spec.split(","):
        match = _FRAME_SET_ITEM.match(item.strip())
        if match is None:
            continue
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(4) or 1) or 1
        direction = 1 if end >= start else -1
        span = set(range(start, end + direction, direction))
        stepped = set(range(start, end + direction, direction * step))
        numbers |= span - stepped if match.group(3) == "y" else stepped
    return numbers


def match_hosts(hosts: Iterable[Host], criteria: host_pb2.HostSearchCriteria) -> list[Host]:
    """Hosts matching ``criteria``, sorted by name."""
    ids = set(criteria.ids)
    names = set(criteria.hosts)
    allocs = set(criteria.allocs)
    states = set(criteria.states.state)
    lock_states = set(criteria.lock_states.state)
    regexes = [re.compile(pattern) for pattern in criteria.regex]

    def wanted(host: Host) -> bool:
        """Apply each set field of the criteria; an unset field matches everything."""
        return (
            (not ids or host.id in ids)
            and (not names or host.name in names)
            and (not allocs or host.alloc_name in allocs)
            and (not states or host.state in states)
            and (not lock_states or host.lock_state in lock_states)
            and (not criteria.substr or any(s in host.name for s in criteria.substr))
            and (not regexes or any(r.search(host.name) for r in regexes))
        )

    return sorted((host for host in hosts if wanted(host)), key=lambda host: host.name)


def match_procs(
    procs: Iterable[Proc], criteria: host_pb2.ProcSearchCriteria, now: int
) -> list[Proc]:
    """Procs matching ``criteria``, as Cuebot's ProcSearch filters and pages them.

    Names (hosts, jobs, layers, shows, allocations) must be among those given.
    The memory criteria bound the proc's reserved memory, in KB: ``memory_range``
    from its ``min`` to its ``max``, and ``memory_greater_than`` and
    ``memory_less_than`` both from their ``value`` up, because the proto types
    both as a GreaterThan criterion and Cuebot applies each as one (only the
    first of each repeated field counts).  ``duration_range`` bounds the seconds
    since the proc was dispatched, to ``now``.  Sorted by host name then booking
    time, as Cuebot sorts them; ``first_result`` is 1-based and the first
    ``max_results`` value caps the count.
    """
    hosts = set(criteria.hosts)
    jobs = set(criteria.jobs)
    layers = set(criteria.layers)
    shows = set(criteria.shows)
    allocs = set(criteria.allocs)
    low, high = _reserved_memory_bounds(criteria)
    durations = criteria.duration_range[0] if criteria.duration_range else None

    def wanted(proc: Proc) -> bool:
        """Apply each set criterion; an unset one matches everything."""
        return (
            (not hosts or proc.host.name in hosts)
            and (not jobs or proc.job.name in jobs)
            and (not layers or proc.layer.name in layers)
            and (not shows or proc.job.show.name in shows)
            and (not allocs or proc.host.alloc_name in allocs)
            and low <= proc.reserved_memory <= high
            and (durations is None
                 or durations.min <= now - proc.booked_time <= durations.max)
        )

    found = sorted(
        (proc for proc in procs if wanted(proc)),
        key=lambda proc: (proc.host.name, proc.booked_time),
    )
    start = max(criteria.first_result, 1) - 1
    stop = start + criteria.max_results[0] if criteria.max_results else None
    return found[start:stop]


def _reserved_memory_bounds(criteria: host_pb2.ProcSearchCriteria) -> tuple[float, float]:
    """The lowest and highest reserved memory (KB) ProcSearch's memory criteria allow."""
    lows = [float("-inf")]
    high = float("inf")
    if criteria.memory_range:
        lows.append(criteria.memory_range[0].min)
        high = criteria.memory_range[0].max
    lows += [field[0].value for field in (criteria.memory_greater_than,
                                           criteria.memory_less_than) if field]
    return max(lows), high
