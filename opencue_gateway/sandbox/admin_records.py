"""The farm's administrative entities, as plain records.

Facilities and their allocations, show subscriptions, limits, services and
per-show service overrides, departments and their tasks, filters with their
matchers and actions, and local render partitions.  Like
:mod:`opencue_gateway.sandbox.records`, they hold state and links only;
:class:`~opencue_gateway.sandbox.farm.Farm` indexes them and handlers change
them under ``Farm.lock``.  Enum fields hold ``opencue_proto`` enum numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opencue_proto import filter_pb2, limit_pb2

from opencue_gateway.sandbox.records import Frame, Host, Job, Layer, Show


@dataclass(eq=False, slots=True)
class Facility:
    """A site; allocations belong to one."""

    id: str
    name: str


@dataclass(eq=False, slots=True)
class Allocation:
    """A pool of hosts; its name is ``facility.alloc`` as Cuebot stores it."""

    id: str
    name: str
    tag: str
    facility: Facility
    billable: bool = True


@dataclass(eq=False, slots=True)
class Subscription:
    """A show's share of an allocation; size and burst are in core units (cores x 100)."""

    id: str
    show: Show
    allocation: Allocation
    size: int
    burst: int

    @property
    def name(self) -> str:
        """Cuebot's subscription name: allocation name, dot, show name."""
        return f"{self.allocation.name}.{self.show.name}"


@dataclass(eq=False, slots=True)
class Limit:
    """A named limit layers can hold (Cuebot's ``limit_record``)."""

    id: str
    name: str
    max_value: int
    type: int = limit_pb2.FRAME
    enforcement: int = limit_pb2.ENFORCED
    soft_value: int = 0
    exit_status: int = 0
    delay_minutes: int = 0
    auto_tag: bool = False


@dataclass(eq=False, slots=True)
class Service:
    """A service's resource defaults; ``show`` is set for a show's override of one."""

    id: str
    name: str
    threadable: bool = False
    min_cores: int = 100
    max_cores: int = 0
    min_memory: int = 0
    min_gpu_memory: int = 0
    tags: list[str] = field(default_factory=list)
    timeout: int = 0
    timeout_llu: int = 0
    min_gpus: int = 0
    max_gpus: int = 0
    min_memory_increase: int = 0
    show: Show | None = None


@dataclass(eq=False, slots=True)
class Department:
    """A show's configuration of one department (Cuebot's "point"); ``id`` is the point's."""

    id: str
    name: str
    dept_id: str
    show: Show
    ti_task: str = ""
    managed_cores: float = 0.0
    ti_managed: bool = False
    tasks: dict[str, Task] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Task:
    """A shot's minimum cores within a department of a show."""

    id: str
    shot: str
    department: Department
    min_cores: float
    adjust_cores: float = 0.0

    @property
    def name(self) -> str:
        """The task's name: department name, dot, shot."""
        return f"{self.department.name}.{self.shot}"


@dataclass(eq=False, slots=True)
class Filter:
    """A show's job filter; matchers and actions are kept in creation order."""

    id: str
    name: str
    show: Show
    type: int = filter_pb2.MATCH_ALL
    order: float = 0.0
    enabled: bool = True
    matchers: dict[str, Matcher] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Matcher:
    """One condition of a filter."""

    id: str
    filter: Filter
    subject: int
    type: int
    input: str


@dataclass(eq=False, slots=True)
class Action:
    """One effect of a filter; only the value field of its value type matters."""

    id: str
    filter: Filter
    type: int
    value_type: int
    group_value: str = ""
    string_value: str = ""
    integer_value: int = 0
    float_value: float = 0.0
    boolean_value: bool = False


@dataclass(eq=False, slots=True)
class RenderPartition:
    """A host's resources set aside for one job, layer or frame (local booking)."""

    id: str
    host: Host
    job: Job
    type: int
    threads: int
    max_cores: int
    max_memory: int
    max_gpu_memory: int
    max_gpus: int
    layer: Layer | None = None
    frame: Frame | None = None
