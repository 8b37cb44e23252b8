"""Running a show's filters on jobs, as Cuebot's ``FilterManagerService`` does.

A filter matches a job when all (MATCH_ALL) or any (MATCH_ANY) of its
matchers match; a filter without matchers matches nothing.  A matching
filter's actions apply in creation order; STOP_PROCESSING ends the run, so
later filters are skipped.  Filters run in ``order``, disabled ones only when
run one at a time (RunFilterOnJobs, RunFilterOnGroup).  Jobs are filtered when
launched and on demand (RunFilters).  Callers hold ``Farm.lock``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable

from opencue_proto import filter_pb2, job_pb2

from opencue_gateway.sandbox import errors
from opencue_gateway.sandbox.admin_records import Action, Filter, Matcher
from opencue_gateway.sandbox.farm import Farm, whole_cores
from opencue_gateway.sandbox.records import Job, Layer

_TESTS: dict[int, Callable[[str, str], bool]] = {
    filter_pb2.CONTAINS: lambda value, wanted: wanted in value,
    filter_pb2.DOES_NOT_CONTAIN: lambda value, wanted: wanted not in value,
    filter_pb2.IS: lambda value, wanted: value == wanted,
    filter_pb2.IS_NOT: lambda value, wanted: value != wanted,
    filter_pb2.REGEX: lambda value, wanted: re.search(wanted, value) is not None,
    filter_pb2.BEGINS_WITH: lambda value, wanted: value.startswith(wanted),
    filter_pb2.ENDS_WITH: lambda value, wanted: value.endswith(wanted),
}

# Layer-wide actions: the layer type they touch and the setting they change.
_LAYER_ACTIONS: dict[int, tuple[int, str]] = {
    filter_pb2.SET_ALL_RENDER_LAYER_TAGS: (job_pb2.RENDER, "tags"),
    filter_pb2.SET_ALL_RENDER_LAYER_MEMORY: (job_pb2.RENDER, "memory"),
    filter_pb2.SET_ALL_RENDER_LAYER_CORES: (job_pb2.RENDER, "min_cores"),
    filter_pb2.SET_ALL_RENDER_LAYER_MIN_CORES: (job_pb2.RENDER, "min_cores"),
    filter_pb2.SET_ALL_RENDER_LAYER_MAX_CORES: (job_pb2.RENDER, "max_cores"),
    filter_pb2.SET_ALL_UTIL_LAYER_TAGS: (job_pb2.UTIL, "tags"),
    filter_pb2.SET_ALL_UTIL_LAYER_MEMORY: (job_pb2.UTIL, "memory"),
    filter_pb2.SET_ALL_UTIL_LAYER_MIN_CORES: (job_pb2.UTIL, "min_cores"),
    filter_pb2.SET_ALL_UTIL_LAYER_MAX_CORES: (job_pb2.UTIL, "max_cores"),
    filter_pb2.SET_ALL_PRE_LAYER_TAGS: (job_pb2.PRE, "tags"),
    filter_pb2.SET_ALL_PRE_LAYER_MEMORY: (job_pb2.PRE, "memory"),
    filter_pb2.SET_ALL_PRE_LAYER_MIN_CORES: (job_pb2.PRE, "min_cores"),
    filter_pb2.SET_ALL_PRE_LAYER_MAX_CORES: (job_pb2.PRE, "max_cores"),
}


def run_show_filters(farm: Farm, job: Job) -> None:
    """Run every enabled filter of the job's show on it, in order."""
    filters = sorted(
        (f for f in farm.all(Filter) if f.show is job.show and f.enabled),
        key=lambda f: f.order,
    )
    for each in filters:
        if not run_filter(farm, each, [job]):
            return


def run_filter(farm: Farm, each: Filter, jobs: Iterable[Job]) -> bool:
    """Apply one filter to jobs; False when a STOP_PROCESSING action fired."""
    go_on = True
    for job in jobs:
        if matches(each, job):
            for action in each.actions.values():
                go_on = _apply(farm, action, job) and go_on
    return go_on


def matches(each: Filter, job: Job) -> bool:
    """Whether a filter's matchers accept a job."""
    results = [_matched(matcher, job) for matcher in each.matchers.values()]
    if not results:
        return False
    return all(results) if each.type == filter_pb2.MATCH_ALL else any(results)


def _matched(matcher: Matcher, job: Job) -> bool:
    """Whether one matcher accepts a job; list subjects match when any value does."""
    test = _TESTS[matcher.type]
    try:
        return any(test(value, matcher.input) for value in _subject(matcher.subject, job))
    except re.error:
        return False


def _subject(subject: int, job: Job) -> list[str]:
    """The job's values a matcher subject looks at."""
    if subject == filter_pb2.SERVICE_NAME:
        return [service for layer in job.layers.values() for service in layer.services]
    if subject == filter_pb2.LAYER_NAME:
        return list(job.layers)
    return [{
        filter_pb2.JOB_NAME: job.name, filter_pb2.SHOW: job.show.name,
        filter_pb2.SHOT: job.shot, filter_pb2.USER: job.user,
        filter_pb2.PRIORITY: str(job.priority), filter_pb2.FACILITY: job.facility,
    }[subject]]


def _apply(farm: Farm, action: Action, job: Job) -> bool:
    """Apply one action to a job; False for STOP_PROCESSING."""
    kind = action.type
    if kind == filter_pb2.STOP_PROCESSING:
        return False
    if kind == filter_pb2.MOVE_JOB_TO_GROUP:
        with contextlib.suppress(errors.EmptyResultError):
            farm.set_group(job, farm.group(action.group_value))
    elif kind == filter_pb2.PAUSE_JOB:
        job.is_paused = action.boolean_value
    elif kind == filter_pb2.SET_JOB_PRIORITY:
        job.priority = action.integer_value
    elif kind == filter_pb2.SET_JOB_MIN_CORES:
        job.min_cores = whole_cores(action.float_value)
    elif kind == filter_pb2.SET_JOB_MAX_CORES:
        job.max_cores = whole_cores(action.float_value)
    elif kind == filter_pb2.SET_MEMORY_OPTIMIZER:
        for layer in job.layers.values():
            layer.memory_optimizer_enabled = action.boolean_value
    else:
        layer_type, setting = _LAYER_ACTIONS[kind]
        for layer in job.layers.values():
            if layer.type == layer_type:
                _set_layer(layer, setting, action)
    return True


def _set_layer(layer: Layer, setting: str, action: Action) -> None:
    """Change one setting of a layer from an action's value."""
    if setting == "tags":
        layer.tags = [tag for tag in re.split(r"[\s|]+", action.string_value) if tag]
    elif setting == "memory":
        layer.min_memory = action.integer_value
    elif setting == "min_cores":
        layer.min_cores = round(action.float_value, 2)
    else:
        layer.max_cores = whole_cores(action.float_value)
