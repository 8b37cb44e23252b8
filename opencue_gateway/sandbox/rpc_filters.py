"""``filter.FilterInterface``, ``filter.ActionInterface`` and ``filter.MatcherInterface``,
and ``JobInterface.RunFilters`` (see :mod:`opencue_gateway.sandbox.filtering`).

A show's filters run in ``order``; as in Cuebot's ``FilterManager``, every
reordering renumbers the show's filters 1, 2, 3, ... so that raising a filter
swaps it with the one before it and "order first/last" put it at either end.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import filter_pb2, job_pb2

from opencue_gateway.sandbox import errors, filtering, messages
from opencue_gateway.sandbox.admin_records import Action, Filter, Matcher
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Show
from opencue_gateway.sandbox.rpc_registry import job_of, pending_jobs_by_name, rpc

# Orders Cuebot's servant passes for "first" and "last" before renumbering.
FIRST, LAST = 0.0, 9999.0


def filter_seq(filters: list[Filter]) -> filter_pb2.FilterSeq:
    """Filters in running order."""
    ordered = sorted(filters, key=lambda f: f.order)
    return filter_pb2.FilterSeq(filters=[messages.filter_(f) for f in ordered])


def renumber(farm: Farm, show: Show) -> None:
    """Number a show's filters 1, 2, 3, ... in their current order."""
    filters = sorted((f for f in farm.all(Filter) if f.show is show), key=lambda f: f.order)
    for position, each in enumerate(filters, start=1):
        each.order = float(position)


def _filter(farm: Farm, message: filter_pb2.Filter) -> Filter:
    """The filter a Filter message names by id."""
    return farm.get(Filter, message.id)


def _reorder(farm: Farm, message: filter_pb2.Filter, order: float) -> None:
    """Give a filter a provisional order, then renumber its show's filters."""
    found = _filter(farm, message)
    found.order = order
    renumber(farm, found.show)


def _set_action(action: Action, data: filter_pb2.Action) -> None:
    """Copy an Action message's type and values onto a record."""
    action.type, action.value_type = data.type, data.value_type
    action.group_value, action.string_value = data.group_value, data.string_value
    action.integer_value, action.float_value = data.integer_value, data.float_value
    action.boolean_value = data.boolean_value


@rpc("/filter.FilterInterface/FindFilter")
def find_filter(farm: Farm, request: filter_pb2.FilterFindFilterRequest) -> Message:
    """A filter by show name and filter name."""
    with not_found():
        show = farm.find_show(request.show)
        found = farm.named(Filter, request.name, lambda f: f.show is show)
    return filter_pb2.FilterFindFilterResponse(filter=messages.filter_(found))


@rpc("/filter.FilterInterface/GetActions")
def get_actions(farm: Farm, request: filter_pb2.FilterGetActionsRequest) -> Message:
    """A filter's actions."""
    actions = _filter(farm, request.filter).actions.values()
    return filter_pb2.FilterGetActionsResponse(
        actions=filter_pb2.ActionSeq(actions=[messages.action(a) for a in actions])
    )


@rpc("/filter.FilterInterface/GetMatchers")
def get_matchers(farm: Farm, request: filter_pb2.FilterGetMatchersRequest) -> Message:
    """A filter's matchers."""
    matchers = _filter(farm, request.filter).matchers.values()
    return filter_pb2.FilterGetMatchersResponse(
        matchers=filter_pb2.MatcherSeq(matchers=[messages.matcher(m) for m in matchers])
    )


@rpc("/filter.FilterInterface/CreateAction")
def create_action(farm: Farm, request: filter_pb2.FilterCreateActionRequest) -> Message:
    """Add an action to a filter."""
    parent = _filter(farm, request.filter)
    action = farm.register(
        Action(id=farm.new_id(), filter=parent, type=0, value_type=0)
    )
    _set_action(action, request.data)
    parent.actions[action.id] = action
    return filter_pb2.FilterCreateActionResponse(action=messages.action(action))


@rpc("/filter.FilterInterface/CreateMatcher")
def create_matcher(farm: Farm, request: filter_pb2.FilterCreateMatcherRequest) -> Message:
    """Add a matcher to a filter."""
    parent = _filter(farm, request.filter)
    data = request.data
    matcher = farm.register(Matcher(
        id=farm.new_id(), filter=parent, subject=data.subject, type=data.type, input=data.input
    ))
    parent.matchers[matcher.id] = matcher
    return filter_pb2.FilterCreateMatcherResponse(matcher=messages.matcher(matcher))


@rpc("/filter.FilterInterface/Delete")
def delete_filter(farm: Farm, request: filter_pb2.FilterDeleteRequest) -> Message:
    """Delete a filter with its matchers and actions."""
    found = _filter(farm, request.filter)
    for child in [*found.matchers.values(), *found.actions.values()]:
        farm.unregister(child)
    farm.unregister(found)
    renumber(farm, found.show)
    return filter_pb2.FilterDeleteResponse()


@rpc("/filter.FilterInterface/SetEnabled")
def set_enabled(farm: Farm, request: filter_pb2.FilterSetEnabledRequest) -> Message:
    """Turn a filter on or off."""
    _filter(farm, request.filter).enabled = request.enabled
    return filter_pb2.FilterSetEnabledResponse()


@rpc("/filter.FilterInterface/SetName")
def set_name(farm: Farm, request: filter_pb2.FilterSetNameRequest) -> Message:
    """Rename a filter."""
    _filter(farm, request.filter).name = request.name
    return filter_pb2.FilterSetNameResponse()


@rpc("/filter.FilterInterface/SetType")
def set_type(farm: Farm, request: filter_pb2.FilterSetTypeRequest) -> Message:
    """Make a filter match all or any of its matchers."""
    _filter(farm, request.filter).type = request.type
    return filter_pb2.FilterSetTypeResponse()


@rpc("/filter.FilterInterface/SetOrder")
def set_order(farm: Farm, request: filter_pb2.FilterSetOrderRequest) -> Message:
    """Move a filter to a position."""
    _reorder(farm, request.filter, float(request.order))
    return filter_pb2.FilterSetOrderResponse()


@rpc("/filter.FilterInterface/RaiseOrder")
def raise_order(farm: Farm, request: filter_pb2.FilterRaiseOrderRequest) -> Message:
    """Swap a filter with the one before it."""
    _reorder(farm, request.filter, _filter(farm, request.filter).order - 1.5)
    return filter_pb2.FilterRaiseOrderResponse()


@rpc("/filter.FilterInterface/LowerOrder")
def lower_order(farm: Farm, request: filter_pb2.FilterLowerOrderRequest) -> Message:
    """Swap a filter with the one after it."""
    _reorder(farm, request.filter, _filter(farm, request.filter).order + 1.5)
    return filter_pb2.FilterLowerOrderResponse()


@rpc("/filter.FilterInterface/OrderFirst")
def order_first(farm: Farm, request: filter_pb2.FilterOrderFirstRequest) -> Message:
    """Run a filter first."""
    _reorder(farm, request.filter, FIRST)
    return filter_pb2.FilterOrderFirstResponse()


@rpc("/filter.FilterInterface/OrderLast")
def order_last(farm: Farm, request: filter_pb2.FilterOrderLastRequest) -> Message:
    """Run a filter last."""
    _reorder(farm, request.filter, LAST)
    return filter_pb2.FilterOrderLastResponse()


@rpc("/filter.ActionInterface/GetParentFilter")
def get_action_filter(farm: Farm, request: filter_pb2.ActionGetParentFilterRequest) -> Message:
    """The filter an action belongs to."""
    action = farm.get(Action, request.action.id)
    return filter_pb2.ActionGetParentFilterResponse(filter=messages.filter_(action.filter))


@rpc("/filter.ActionInterface/Commit")
def commit_action(farm: Farm, request: filter_pb2.ActionCommitRequest) -> Message:
    """Save an edited action."""
    try:
        action = farm.get(Action, request.action.id)
    except errors.EmptyResultError:
        raise errors.bad_action_id(request.action.id) from None
    _set_action(action, request.action)
    return filter_pb2.ActionCommitResponse()


@rpc("/filter.ActionInterface/Delete")
def delete_action(farm: Farm, request: filter_pb2.ActionDeleteRequest) -> Message:
    """Remove an action from its filter."""
    action = farm.get(Action, request.action.id)
    del action.filter.actions[action.id]
    farm.unregister(action)
    return filter_pb2.ActionDeleteResponse()


@rpc("/filter.MatcherInterface/GetParentFilter")
def get_matcher_filter(farm: Farm, request: filter_pb2.MatcherGetParentFilterRequest) -> Message:
    """The filter a matcher belongs to."""
    matcher = farm.get(Matcher, request.matcher.id)
    return filter_pb2.MatcherGetParentFilterResponse(filter=messages.filter_(matcher.filter))


@rpc("/filter.MatcherInterface/Commit")
def commit_matcher(farm: Farm, request: filter_pb2.MatcherCommitRequest) -> Message:
    """Save an edited matcher."""
    matcher = farm.get(Matcher, request.matcher.id)
    data = request.matcher
    matcher.subject, matcher.type, matcher.input = data.subject, data.type, data.input
    return filter_pb2.MatcherCommitResponse()


@rpc("/filter.MatcherInterface/Delete")
def delete_matcher(farm: Farm, request: filter_pb2.MatcherDeleteRequest) -> Message:
    """Remove a matcher from its filter."""
    matcher = farm.get(Matcher, request.matcher.id)
    del matcher.filter.matchers[matcher.id]
    farm.unregister(matcher)
    return filter_pb2.MatcherDeleteResponse()


@rpc("/filter.FilterInterface/RunFilterOnJobs")
def run_filter_on_jobs(farm: Farm, request: filter_pb2.FilterRunFilterOnJobsRequest) -> Message:
    """Apply one filter, enabled or not, to some jobs."""
    jobs = [farm.job(job.id) for job in request.jobs.jobs]
    filtering.run_filter(farm, _filter(farm, request.filter), jobs)
    return filter_pb2.FilterRunFilterOnJobsResponse()


@rpc("/filter.FilterInterface/RunFilterOnGroup")
def run_filter_on_group(farm: Farm, request: filter_pb2.FilterRunFilterOnGroupRequest) -> Message:
    """Apply one filter, enabled or not, to a group's pending jobs."""
    jobs = pending_jobs_by_name(farm.group(request.group.id).jobs.values())
    filtering.run_filter(farm, _filter(farm, request.filter), jobs)
    return filter_pb2.FilterRunFilterOnGroupResponse()


@rpc("/job.JobInterface/RunFilters")
def run_filters(farm: Farm, request: job_pb2.JobRunFiltersRequest) -> Message:
    """Run the show's enabled filters on a job, as at launch."""
    filtering.run_show_filters(farm, job_of(farm, request.job))
    return job_pb2.JobRunFiltersResponse()
