"""The lively farm: a sandbox that looks like a working render farm from its first second.

It is the README's seed, untouched (its ids, names and states are as
documented, and the simulator never dispatches the README's job, so every
README example keeps working), inside a studio:

* shows (``aurora``, ``borealis``, ...) whose jobs were launched at staggered
  times over the last :data:`HISTORY` seconds, each of one to
  ``layers_per_job`` layers of up to ``frames_per_layer`` frames, with various
  core and memory needs;
* in every show a job allowed one try (DEAD frames), one that eats its dead
  frames (EATEN frames), a paused one, and, the newest, one whose second layer
  waits frame by frame on its first (DEPEND frames);
* ``hosts`` render hosts of four sizes, one of them locked and one down for
  repair.

The studio is built :data:`HISTORY` seconds before the start and the simulator
runs it up to the start in ticks of :data:`HISTORY_TICK_SECONDS`
(:func:`bring_to_start`): early jobs have finished, frames ran for plausible
durations (their stats, peak memory and, with a log root, rqlogs hold that
history), later jobs are half done with frames running, and the newest have
barely begun.  Then the simulation goes on live.  Everything is drawn from
``random.Random(seed)`` and placed relative to the start, so one seed gives
one farm relative to its start.
"""

from __future__ import annotations

import random

from opencue_proto import host_pb2

from opencue_gateway.sandbox import seed
from opencue_gateway.sandbox.admin_records import Allocation
from opencue_gateway.sandbox.farm import DEFAULT_LOG_ROOT, Farm
from opencue_gateway.sandbox.generate import (
    FarmSpec,
    add_host,
    add_job,
    add_layer,
    add_show,
    building,
    seeded_ids,
)
from opencue_gateway.sandbox.records import Job, Show
from opencue_gateway.sandbox.simulate import Simulator

# How long before the start the studio's first jobs were launched, in seconds.
HISTORY = 3 * 3600
# The simulated ticks that bring the farm from its past to the start.
HISTORY_TICK_SECONDS = 30.0
# The lively farm's size unless size options say otherwise.
SIZES = FarmSpec(shows=4, jobs_per_show=6, layers_per_job=4, frames_per_layer=300, hosts=36)
SHOW_NAMES = ("aurora", "borealis", "cascade", "dynamo", "eclipse", "fjord", "glacier", "harbor")
# Launches crowd towards the start (0.5: half the jobs in the last quarter of the history).
LAUNCH_SKEW = 0.5
# The README's job, which the simulator leaves as documented.
STILL_JOBS = (seed.JOB_ID,)
# A job's maximum cores: enough to keep big jobs running for hours, not minutes.
JOB_MAX_CORES = (50.0, 100.0, 150.0)
# Render nodes (cores, GiB): a studio's workhorses, smaller than the benchmark farm's.
HOST_SHAPES = ((8, 32), (16, 64), (16, 64), (32, 128))


def build(spec: FarmSpec, start: int, log_root: str = DEFAULT_LOG_ROOT) -> Farm:
    """The lively farm as it was :data:`HISTORY` seconds before ``start`` (whole seconds,
    so that one seed gives one farm relative to any start).

    The README's seed is placed relative to ``start`` itself; bring the farm
    to the start with :func:`bring_to_start`.
    """
    rng = random.Random(spec.seed)
    farm = Farm(lambda: start, ids=seeded_ids(rng), log_root=log_root)
    seed.populate(farm)
    past = start - HISTORY
    farm.set_clock(lambda: past)
    with building():
        allocation = farm.get(Allocation, seed.ALLOCATION_ID)
        for number in range(spec.shows):
            show = add_show(farm, allocation, _show_name(number), spec.hosts)
            _jobs(farm, rng, spec, show, past)
        hosts = [add_host(farm, rng, allocation, f"host{number:04d}", HOST_SHAPES)
                 for number in range(1, spec.hosts + 1)]
        if len(hosts) > 2:
            locked, down = rng.sample(hosts, 2)
            locked.lock_state = host_pb2.LOCKED
            down.state = host_pb2.REPAIR
    return farm


def bring_to_start(simulator: Simulator, start: int) -> None:
    """Simulate the lively farm's history, from its past up to ``start``."""
    simulator.catch_up(start, HISTORY_TICK_SECONDS)


def _show_name(number: int) -> str:
    """The name of the show ``number`` (0-based): a word, numbered once the words run out."""
    word = SHOW_NAMES[number % len(SHOW_NAMES)]
    return word if number < len(SHOW_NAMES) else f"{word}{number // len(SHOW_NAMES) + 1}"


def _jobs(farm: Farm, rng: random.Random, spec: FarmSpec, show: Show, past: float) -> None:
    """A show's jobs, launched one after another over the history, in every kind of state."""
    count = spec.jobs_per_show
    for index in range(count):
        launched = int(past + HISTORY * ((index + rng.random()) / count) ** LAUNCH_SKEW)
        job = add_job(farm, rng, show, index + 1, launched)
        job.max_cores = rng.choice(JOB_MAX_CORES)
        layers = rng.randint(2 if index == count - 1 else 1, max(spec.layers_per_job, 2))
        smallest = min(max(spec.frames_per_layer // 10, 1), spec.frames_per_layer)
        for order in range(layers):
            add_layer(farm, rng, job, order, rng.randint(smallest, spec.frames_per_layer))
        _give_character(farm, job, index, newest=index == count - 1)


def _give_character(farm: Farm, job: Job, index: int, newest: bool) -> None:
    """Make a show's jobs differ: the newest's second layer waits frame by frame on its
    first; the second is allowed one try, the third eats its dead frames, the fourth is
    paused."""
    if newest:
        layers = list(job.layers.values())
        farm.depends.create_frame_by_frame(layers[1], layers[0], False)
    elif index == 1:
        job.max_retries = 1
    elif index == 2:
        job.max_retries, job.auto_eat = 1, True
    elif index == 3:
        job.is_paused = True
