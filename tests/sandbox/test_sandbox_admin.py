"""Show settings, filters, subscriptions, services, departments, comments and allocations."""

from __future__ import annotations

import grpc
import pytest
from opencue_proto import (
    comment_pb2,
    department_pb2,
    facility_pb2,
    filter_pb2,
    host_pb2,
    job_pb2,
    service_pb2,
    show_pb2,
    subscription_pb2,
    task_pb2,
)

from opencue_gateway.sandbox import seed
from tests.sandbox.sandbox_support import launch, rpc_error

SHOW = show_pb2.Show(id=seed.SHOW_ID)
JOB = job_pb2.Job(id=seed.JOB_ID)


def _show(cue):
    """The seed show, read now."""
    return cue.show.FindShow(show_pb2.ShowFindShowRequest(name="testing")).show


def _filters(cue):
    """(name, order) of the show's filters in running order."""
    filters = cue.show.GetFilters(show_pb2.ShowGetFiltersRequest(show=SHOW)).filters.filters
    return [(f.name, f.order) for f in filters]


def _filter(cue, name):
    """Create a filter on the seed show."""
    return cue.show.CreateFilter(show_pb2.ShowCreateFilterRequest(show=SHOW, name=name)).filter


def test_show_settings_read_back(cue):
    """Booking, dispatching, default cores and GPUs, comment email and active flag read back."""
    cue.show.EnableBooking(show_pb2.ShowEnableBookingRequest(show=SHOW, enabled=False))
    cue.show.EnableDispatching(show_pb2.ShowEnableDispatchingRequest(show=SHOW, enabled=False))
    cue.show.SetDefaultMinCores(show_pb2.ShowSetDefaultMinCoresRequest(show=SHOW, min_cores=2))
    cue.show.SetDefaultMaxCores(show_pb2.ShowSetDefaultMaxCoresRequest(show=SHOW,
                                                                       max_cores=500.7))
    cue.show.SetDefaultMinGpus(show_pb2.ShowSetDefaultMinGpusRequest(show=SHOW, min_gpus=1))
    cue.show.SetDefaultMaxGpus(show_pb2.ShowSetDefaultMaxGpusRequest(show=SHOW, max_gpus=8))
    cue.show.SetCommentEmail(show_pb2.ShowSetCommentEmailRequest(show=SHOW,
                                                                 email="a@x.org,b@x.org"))
    show = _show(cue)
    assert (show.booking_enabled, show.dispatch_enabled) == (False, False)
    assert (show.default_min_cores, show.default_max_cores) == (2, 500)
    assert (show.default_min_gpus, show.default_max_gpus) == (1, 8)
    assert show.comment_email == "a@x.org,b@x.org"
    cue.show.SetActive(show_pb2.ShowSetActiveRequest(show=SHOW, value=False))
    active = cue.show.GetActiveShows(show_pb2.ShowGetActiveShowsRequest()).shows.shows
    assert list(active) == []


def test_filters_are_ordered_and_reordered(cue):
    """New filters go last; raise, lower, first, last and SetOrder renumber them 1, 2, 3."""
    for name in ("a", "b", "c"):
        _filter(cue, name)
    assert _filters(cue) == [("a", 1), ("b", 2), ("c", 3)]
    by_name = {f.name: f for f in
               cue.show.GetFilters(show_pb2.ShowGetFiltersRequest(show=SHOW)).filters.filters}
    cue.filter.RaiseOrder(filter_pb2.FilterRaiseOrderRequest(filter=by_name["c"]))
    assert _filters(cue) == [("a", 1), ("c", 2), ("b", 3)]
    cue.filter.LowerOrder(filter_pb2.FilterLowerOrderRequest(filter=by_name["a"]))
    assert [name for name, _ in _filters(cue)] == ["c", "a", "b"]
    cue.filter.OrderLast(filter_pb2.FilterOrderLastRequest(filter=by_name["c"]))
    cue.filter.OrderFirst(filter_pb2.FilterOrderFirstRequest(filter=by_name["b"]))
    assert [name for name, _ in _filters(cue)] == ["b", "a", "c"]
    cue.filter.SetOrder(filter_pb2.FilterSetOrderRequest(filter=by_name["c"], order=0))
    assert [name for name, _ in _filters(cue)] == ["c", "b", "a"]


def test_filter_settings_matchers_and_actions(cue):
    """A filter's settings, matchers and actions read back, edit, and delete with it."""
    created = _filter(cue, "night")
    assert (created.type, created.enabled) == (filter_pb2.MATCH_ALL, True)
    cue.filter.SetName(filter_pb2.FilterSetNameRequest(filter=created, name="nightly"))
    cue.filter.SetType(filter_pb2.FilterSetTypeRequest(filter=created, type=filter_pb2.MATCH_ANY))
    cue.filter.SetEnabled(filter_pb2.FilterSetEnabledRequest(filter=created, enabled=False))
    found = cue.filter.FindFilter(filter_pb2.FilterFindFilterRequest(show="testing",
                                                                     name="nightly")).filter
    assert (found.id, found.type, found.enabled) == (created.id, filter_pb2.MATCH_ANY, False)
    matcher = cue.filter.CreateMatcher(filter_pb2.FilterCreateMatcherRequest(
        filter=found, data=filter_pb2.Matcher(subject=filter_pb2.SHOT, type=filter_pb2.IS,
                                              input="shot001")
    )).matcher
    action = cue.filter.CreateAction(filter_pb2.FilterCreateActionRequest(
        filter=found, data=filter_pb2.Action(type=filter_pb2.SET_JOB_PRIORITY,
                                             value_type=filter_pb2.INTEGER_TYPE, integer_value=50)
    )).action
    matcher.input = "shot002"
    action.integer_value = 75
    cue.matcher.Commit(filter_pb2.MatcherCommitRequest(matcher=matcher))
    cue.action.Commit(filter_pb2.ActionCommitRequest(action=action))
    matchers = cue.filter.GetMatchers(filter_pb2.FilterGetMatchersRequest(filter=found))
    actions = cue.filter.GetActions(filter_pb2.FilterGetActionsRequest(filter=found))
    assert [m.input for m in matchers.matchers.matchers] == ["shot002"]
    assert [a.integer_value for a in actions.actions.actions] == [75]
    parent = cue.action.GetParentFilter(filter_pb2.ActionGetParentFilterRequest(action=action))
    assert parent.filter.id == created.id
    cue.matcher.Delete(filter_pb2.MatcherDeleteRequest(matcher=matcher))
    assert list(cue.filter.GetMatchers(filter_pb2.FilterGetMatchersRequest(
        filter=found)).matchers.matchers) == []
    cue.filter.Delete(filter_pb2.FilterDeleteRequest(filter=found))
    assert _filters(cue) == []
    error = rpc_error(cue.action.Commit, filter_pb2.ActionCommitRequest(action=action))
    assert error.details().endswith(f"Invalid actionId on Action commit: {action.id}")


def test_subscriptions(cue):
    """Subscriptions are created in cores, stored in core units, found by name and changed."""
    created = cue.allocation.Create(facility_pb2.AllocCreateRequest(
        name="local.render", tag="render", facility=facility_pb2.Facility(name="local")
    )).allocation
    sub = cue.show.CreateSubscription(show_pb2.ShowCreateSubscriptionRequest(
        show=SHOW, allocation_id=created.id, size=50, burst=75
    )).subscription
    assert (sub.name, sub.size, sub.burst) == ("local.render.testing", 5000, 7500)
    cue.subscription.SetSize(subscription_pb2.SubscriptionSetSizeRequest(subscription=sub,
                                                                         new_size=100))
    cue.subscription.SetBurst(subscription_pb2.SubscriptionSetBurstRequest(subscription=sub,
                                                                           burst=200))
    found = cue.subscription.Find(subscription_pb2.SubscriptionFindRequest(
        name="local.render.testing"
    )).subscription
    assert (found.id, found.size, found.burst) == (sub.id, 100, 200)
    listed = cue.show.GetSubscriptions(show_pb2.ShowGetSubscriptionRequest(show=SHOW))
    assert [s.name for s in listed.subscriptions.subscriptions] == [
        "local.general.testing", "local.render.testing"
    ]
    cue.subscription.Delete(subscription_pb2.SubscriptionDeleteRequest(subscription=sub))
    error = rpc_error(cue.subscription.Find, subscription_pb2.SubscriptionFindRequest(
        name="local.render.testing"
    ))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND, "A subscription to local.render.testing was not found."
    )


def test_busy_subscription_is_not_deleted(cue):
    """A subscription whose show runs procs on the allocation cannot be deleted."""
    sub = cue.subscription.Get(subscription_pb2.SubscriptionGetRequest(
        id=seed.SUBSCRIPTION_ID
    )).subscription
    assert sub.reserved_cores == 400
    error = rpc_error(cue.subscription.Delete,
                      subscription_pb2.SubscriptionDeleteRequest(subscription=sub))
    assert error.code() == grpc.StatusCode.INTERNAL


def test_services_and_show_overrides(cue):
    """Services are created, found, updated and deleted; a show can override one."""
    data = service_pb2.Service(name="houdini", min_cores=200, min_memory=4096, tags=["general"])
    created = cue.service.CreateService(service_pb2.ServiceCreateServiceRequest(data=data))
    service = created.service
    service.threadable = True
    cue.service.Update(service_pb2.ServiceUpdateRequest(service=service))
    got = cue.service.GetService(service_pb2.ServiceGetServiceRequest(name="houdini")).service
    assert (got.id, got.min_cores, got.threadable) == (service.id, 200, True)
    override = cue.show.CreateServiceOverride(show_pb2.ShowCreateServiceOverrideRequest(
        show=SHOW, service=service_pb2.Service(name="houdini", min_cores=400)
    )).service_override
    override.data.id = override.id
    override.data.min_cores = 800
    cue.override.Update(service_pb2.ServiceOverrideUpdateRequest(service=override.data))
    overrides = cue.show.GetServiceOverrides(show_pb2.ShowGetServiceOverridesRequest(show=SHOW))
    assert [(o.data.name, o.data.min_cores) for o in
            overrides.service_overrides.service_overrides] == [("houdini", 800)]
    cue.override.Delete(service_pb2.ServiceOverrideDeleteRequest(service=override.data))
    cue.service.Delete(service_pb2.ServiceDeleteRequest(service=service))
    error = rpc_error(cue.service.GetService, service_pb2.ServiceGetServiceRequest(
        name="houdini"
    ))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    defaults = cue.service.GetDefaultServices(service_pb2.ServiceGetDefaultServicesRequest())
    assert "houdini" not in [s.name for s in defaults.services.services]


def test_departments_and_tasks(cue):
    """A show's department takes tasks; their cores, adjustments and management read back."""
    names = cue.department.GetDepartmentNames(department_pb2.DeptGetDepartmentNamesRequest())
    assert "lighting" in names.names
    department = cue.show.GetDepartment(show_pb2.ShowGetDepartmentRequest(
        show=SHOW, department="lighting"
    )).department
    task = cue.department.AddTask(department_pb2.DeptAddTaskRequest(
        department=department, shot="shot001", min_cores=2.5
    )).task
    assert (task.shot, task.min_cores, task.point_id) == ("shot001", 250, department.id)
    cue.task.SetMinCores(task_pb2.TaskSetMinCoresRequest(task=task, new_min_cores=300))
    cue.task.ClearAdjustments(task_pb2.TaskClearAdjustmentsRequest(task=task))
    tasks = cue.department.GetTasks(department_pb2.DeptGetTasksRequest(department=department))
    assert [(t.shot, t.min_cores) for t in tasks.tasks.tasks] == [("shot001", 300)]
    cue.department.EnableTiManaged(department_pb2.DeptEnableTiManagedRequest(
        department=department, ti_task="lighting", managed_cores=40.0
    ))
    cue.department.SetManagedCores(department_pb2.DeptSetManagedCoresRequest(
        department=department, managed_cores=60.0
    ))
    got = cue.show.GetDepartment(show_pb2.ShowGetDepartmentRequest(
        show=SHOW, department="lighting"
    )).department
    assert (got.ti_managed, got.ti_task, got.min_cores) == (True, "lighting", 60.0)
    cue.task.Delete(task_pb2.TaskDeleteRequest(task=task))
    cue.department.DisableTiManaged(department_pb2.DeptDisableTiManagedRequest(
        department=department
    ))
    tasks = cue.department.GetTasks(department_pb2.DeptGetTasksRequest(department=department))
    assert list(tasks.tasks.tasks) == []


def test_comments_save_and_delete(cue):
    """A comment's subject and message can be edited, and the comment deleted."""
    new = comment_pb2.Comment(user="me", subject="s", message="m")
    cue.job.AddComment(job_pb2.JobAddCommentRequest(job=JOB, new_comment=new))
    comment = cue.job.GetComments(job_pb2.JobGetCommentsRequest(job=JOB)).comments.comments[0]
    comment.subject, comment.message, comment.user = "s2", "m2", "someone else"
    cue.comment.Save(comment_pb2.CommentSaveRequest(comment=comment))
    saved = cue.job.GetComments(job_pb2.JobGetCommentsRequest(job=JOB)).comments.comments[0]
    assert (saved.subject, saved.message, saved.user) == ("s2", "m2", "me")
    cue.comment.Delete(comment_pb2.CommentDeleteRequest(comment=comment))
    assert list(cue.job.GetComments(job_pb2.JobGetCommentsRequest(job=JOB)).comments.comments) \
        == []
    assert not cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.has_comment


def test_allocations_and_facilities(cue):
    """Allocations list with host stats and rename with their hosts; facilities rename, delete."""
    everything = cue.allocation.GetAll(facility_pb2.AllocGetAllRequest()).allocations
    general = everything.allocations[0]
    assert (general.name, general.facility, general.stats.hosts, general.stats.cores) == (
        "local.general", "local", 1, 16
    )
    assert (general.stats.idle_cores, general.stats.running_cores) == (12, 4)
    default = cue.allocation.GetDefault(facility_pb2.AllocGetDefaultRequest()).allocation
    assert default.id == seed.ALLOCATION_ID
    cue.allocation.SetName(facility_pb2.AllocSetNameRequest(allocation=general, name="farm"))
    host = cue.host.GetHost(host_pb2.HostGetHostRequest(id=seed.HOST_ID)).host
    assert host.alloc_name == "local.farm"
    renamed = cue.allocation.Find(facility_pb2.AllocFindRequest(name="local.farm")).allocation
    busy = rpc_error(cue.allocation.Delete, facility_pb2.AllocDeleteRequest(allocation=renamed))
    assert "allocation still contains hosts" in busy.details()
    facility = cue.facility.Create(facility_pb2.FacilityCreateRequest(name="remote")).facility
    created = cue.allocation.Create(facility_pb2.AllocCreateRequest(
        name="cloud", tag="cloud", facility=facility
    )).allocation
    assert (created.name, created.facility) == ("remote.cloud", "remote")
    error = rpc_error(cue.facility.Delete, facility_pb2.FacilityDeleteRequest(name="remote"))
    assert "facility still contains allocations" in error.details()
    cue.facility.Rename(facility_pb2.FacilityRenameRequest(facility=facility, new_name="far"))
    moved = cue.allocation.Get(facility_pb2.AllocGetRequest(id=created.id)).allocation
    assert (moved.name, moved.facility) == ("far.cloud", "far")
    cue.allocation.Delete(facility_pb2.AllocDeleteRequest(allocation=moved))
    cue.facility.Delete(facility_pb2.FacilityDeleteRequest(name="far"))
    gone = rpc_error(cue.facility.Get, facility_pb2.FacilityGetRequest(name="far"))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    error = rpc_error(cue.allocation.Find, facility_pb2.AllocFindRequest(name="far.cloud"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def _filter_with(cue, name, matcher, *actions):
    """A filter on the seed show with one matcher and some actions."""
    created = _filter(cue, name)
    cue.filter.CreateMatcher(filter_pb2.FilterCreateMatcherRequest(filter=created, data=matcher))
    for action in actions:
        cue.filter.CreateAction(filter_pb2.FilterCreateActionRequest(filter=created, data=action))
    return created


def test_filters_run_at_launch_and_on_demand(cue):
    """Matching filters act on launched jobs, in order, until STOP_PROCESSING; RunFilters too."""
    shot002 = filter_pb2.Matcher(subject=filter_pb2.SHOT, type=filter_pb2.IS, input="shot002")
    _filter_with(
        cue, "pause-shot002", shot002,
        filter_pb2.Action(type=filter_pb2.PAUSE_JOB, value_type=filter_pb2.BOOLEAN_TYPE,
                          boolean_value=True),
        filter_pb2.Action(type=filter_pb2.SET_ALL_RENDER_LAYER_TAGS,
                          value_type=filter_pb2.STRING_TYPE, string_value="gpu | big"),
        filter_pb2.Action(type=filter_pb2.STOP_PROCESSING, value_type=filter_pb2.NONE_TYPE),
    )
    everything = filter_pb2.Matcher(subject=filter_pb2.JOB_NAME, type=filter_pb2.CONTAINS,
                                    input="-")
    _filter_with(cue, "priority", everything, filter_pb2.Action(
        type=filter_pb2.SET_JOB_PRIORITY, value_type=filter_pb2.INTEGER_TYPE, integer_value=7
    ))
    jobs = launch(cue)
    assert [(j.is_paused, j.priority) for j in jobs] == [(True, 100), (True, 100)]
    layers = cue.job.GetLayers(job_pb2.JobGetLayersRequest(job=jobs[0])).layers.layers
    assert list(layers[0].tags) == ["gpu", "big"]
    cue.job.RunFilters(job_pb2.JobRunFiltersRequest(job=JOB))
    seed_job = cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job
    assert (seed_job.is_paused, seed_job.priority) == (False, 7)


def test_a_disabled_filter_runs_only_when_asked_by_name(cue):
    """A disabled filter is skipped by RunFilters but applies through RunFilterOnJobs."""
    shot001 = filter_pb2.Matcher(subject=filter_pb2.SHOT, type=filter_pb2.IS, input="shot001")
    created = _filter_with(cue, "prio", shot001, filter_pb2.Action(
        type=filter_pb2.SET_JOB_PRIORITY, value_type=filter_pb2.INTEGER_TYPE, integer_value=9
    ))
    cue.filter.SetEnabled(filter_pb2.FilterSetEnabledRequest(filter=created, enabled=False))
    cue.job.RunFilters(job_pb2.JobRunFiltersRequest(job=JOB))
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.priority == 100
    cue.filter.RunFilterOnJobs(filter_pb2.FilterRunFilterOnJobsRequest(
        filter=created, jobs=job_pb2.JobSeq(jobs=[JOB])
    ))
    assert cue.job.GetJob(job_pb2.JobGetJobRequest(id=seed.JOB_ID)).job.priority == 9


@pytest.mark.parametrize(("kind", "text", "matched"), [
    (filter_pb2.CONTAINS, "comp", {"comp"}),
    (filter_pb2.DOES_NOT_CONTAIN, "comp", {"seed", "lighting"}),
    (filter_pb2.IS, "testing-job-001", {"seed"}),
    (filter_pb2.IS_NOT, "testing-job-001", {"lighting", "comp"}),
    (filter_pb2.REGEX, "_(comp|light)", {"lighting", "comp"}),
    (filter_pb2.BEGINS_WITH, "testing-shot002", {"lighting", "comp"}),
    (filter_pb2.BEGINS_WITH, "shot002", set()),  # in the names, but not at their start
    (filter_pb2.ENDS_WITH, "_job", {"comp"}),
    (filter_pb2.ENDS_WITH, "ing", {"lighting"}),  # in every name, at the end of one
])
def test_each_matcher_type_picks_its_jobs(cue, kind, text, matched):
    """A job-name matcher of each type selects exactly the jobs it should of three."""
    lighting, comp = launch(cue)
    jobs = {"seed": JOB, "lighting": lighting, "comp": comp}
    matcher = filter_pb2.Matcher(subject=filter_pb2.JOB_NAME, type=kind, input=text)
    created = _filter_with(cue, "probe", matcher, filter_pb2.Action(
        type=filter_pb2.SET_JOB_PRIORITY, value_type=filter_pb2.INTEGER_TYPE, integer_value=42
    ))
    cue.filter.RunFilterOnJobs(filter_pb2.FilterRunFilterOnJobsRequest(
        filter=created, jobs=job_pb2.JobSeq(jobs=list(jobs.values()))
    ))
    priorities = {name: cue.job.GetJob(job_pb2.JobGetJobRequest(id=job.id)).job.priority
                  for name, job in jobs.items()}
    assert {name for name, priority in priorities.items() if priority == 42} == matched
