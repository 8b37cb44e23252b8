"""The scenarios: which canned reply, at how many connections, and the targets.

Reply sizes span what CueWeb asks for: the show list (small), a show's job
list (medium), and a job's frames a page at a time (large, 1,000 and
10,000 frames).  Each runs with one connection (latency, nothing queued) and
with 32 (throughput).  The fan-in scenario has 200 clients asking the very
same GetJobs, as dashboards that refresh together do: it shows how many
Cuebot calls one client request costs (1.0 without request coalescing).  It
is the only scenario measured on a gateway with ``FAN_IN=true`` (its own
process); every other one runs with fan-in off, like for like with Envoy.

The production-size scenarios (``large``) are GetJobs with 20,000 and
60,000 jobs (7.5 MB and 22 MB of protobuf, 22 MB and 66 MB of JSON), as a
busy facility's CueWeb asks for: not a load run but a few whole requests,
one at a time or ten at once, each timed to its first and last byte, on a
freshly started target (see :mod:`bench.large`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

TARGETS = ("gateway", "envoy", "grpc")
TARGET_LABELS = {
    "gateway": "our gateway (twistd, HTTP/1.1 JSON)",
    "envoy": "Envoy grpc_json_transcoder (1 worker)",
    "grpc": "direct gRPC to the stand-in (no gateway)",
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One load shape: a canned reply (see :mod:`bench.data`) at a number of connections."""

    name: str
    reply: str
    connections: int
    description: str
    fan_in: bool = False
    smoke: bool = False
    large: bool = False
    # Large scenarios: requests each connection sends, one after the other.
    requests: int = 0


SCENARIOS = (
    Scenario("shows.c1", "shows", 1, "GetShows, 2 shows (~1 KB JSON), 1 connection",
             smoke=True),
    Scenario("shows.c32", "shows", 32, "GetShows, 2 shows (~1 KB JSON), 32 connections",
             smoke=True),
    Scenario("jobs100.c1", "jobs100", 1, "GetJobs, 100 jobs (~110 KB JSON), 1 connection"),
    Scenario("jobs100.c32", "jobs100", 32, "GetJobs, 100 jobs (~110 KB JSON), 32 connections"),
    Scenario("frames1k.c1", "frames1k", 1, "GetFrames, 1,000 frames (~590 KB JSON), 1 connection"),
    Scenario("frames1k.c32", "frames1k", 32,
             "GetFrames, 1,000 frames (~590 KB JSON), 32 connections"),
    Scenario("frames10k.c1", "frames10k", 1,
             "GetFrames, 10,000 frames (~5.9 MB JSON), 1 connection"),
    Scenario("frames10k.c32", "frames10k", 32,
             "GetFrames, 10,000 frames (~5.9 MB JSON), 32 connections"),
    Scenario("fanin.c200", "jobs100", 200,
             "fan-in: 200 connections asking the identical GetJobs (100 jobs)", fan_in=True),
    Scenario("jobs20k.c1", "jobs20k", 1, "GetJobs, 20,000 jobs (~22 MB JSON), 3 requests in turn",
             large=True, requests=3),
    Scenario("jobs20k.c10", "jobs20k", 10, "GetJobs, 20,000 jobs (~22 MB JSON), 10 at once",
             large=True, requests=1),
    Scenario("jobs60k.c1", "jobs60k", 1, "GetJobs, 60,000 jobs (~66 MB JSON), 3 requests in turn",
             large=True, requests=3),
    Scenario("jobs60k.c10", "jobs60k", 10, "GetJobs, 60,000 jobs (~66 MB JSON), 10 at once",
             large=True, requests=1),
)


def select_scenarios(patterns: str | None, smoke: bool = False) -> list[Scenario]:
    """The scenarios named by a comma-separated filter, in the table's order.

    Each item is a name (``shows.c32``), a family (``frames10k`` means
    ``frames10k.*``) or a glob (``*.c1``).  With ``smoke`` and no filter, only
    the small scenarios run.
    """
    if not patterns:
        return [s for s in SCENARIOS if s.smoke or not smoke]
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [s for s in SCENARIOS if any(_matches(s.name, p) for p in wanted)]
    unknown = [p for p in wanted if not any(_matches(s.name, p) for s in SCENARIOS)]
    if unknown:
        names = ", ".join(s.name for s in SCENARIOS)
        raise ValueError(f"no scenario matches {', '.join(unknown)}; the scenarios are {names}")
    return chosen


def _matches(name: str, pattern: str) -> bool:
    """A scenario name against one filter item: exact, family, or glob."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def select_targets(names: str | None) -> list[str]:
    """The targets named by a comma-separated filter (all three by default)."""
    if not names:
        return list(TARGETS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target {', '.join(unknown)}; the targets are "
                         f"{', '.join(TARGETS)}")
    return [t for t in TARGETS if t in wanted]
