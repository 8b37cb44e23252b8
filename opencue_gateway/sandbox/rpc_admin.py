"""Limits, services, departments and tasks, comments and depends by id.

``limit.LimitInterface``, ``service.ServiceInterface``,
``service.ServiceOverrideInterface``, ``department.DepartmentInterface``,
``task.TaskInterface``, ``comment.CommentInterface`` and
``depend.DependInterface``.  Limits are found by name, as Cuebot's servant
does; an unknown one escapes as the lookup's exception (NOT_FOUND here).
Department and task cores are kept as given.  Methods Cuebot's servants lack
(the limit setters beyond SetMaxValue, limit bindings and reports,
DepartmentInterface.Delete) stay UNIMPLEMENTED here too.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import (
    comment_pb2,
    department_pb2,
    depend_pb2,
    limit_pb2,
    service_pb2,
    task_pb2,
)

from opencue_gateway.sandbox import errors, messages
from opencue_gateway.sandbox.admin_records import Department, Limit, Service, Task
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm, java_int
from opencue_gateway.sandbox.rpc_layer import layers_holding, running_with_limit
from opencue_gateway.sandbox.rpc_registry import rpc


def _limit_message(farm: Farm, limit: Limit) -> limit_pb2.Limit:
    """A limit with its running count."""
    return messages.limit(limit, running_with_limit(farm, limit))


def _limit(farm: Farm, name: str) -> Limit:
    """A limit by name."""
    return farm.named(Limit, name)


def _set_service(service: Service, data: service_pb2.Service) -> Service:
    """Copy a Service message's settings onto a record."""
    service.name, service.threadable = data.name, data.threadable
    service.min_cores, service.max_cores = data.min_cores, data.max_cores
    service.min_memory, service.min_gpu_memory = data.min_memory, data.min_gpu_memory
    service.tags = list(data.tags)
    service.timeout, service.timeout_llu = data.timeout, data.timeout_llu
    service.min_gpus, service.max_gpus = data.min_gpus, data.max_gpus
    service.min_memory_increase = data.min_memory_increase
    return service


def _department(farm: Farm, message: department_pb2.Department) -> Department:
    """A show's department configuration by its (point) id."""
    return farm.get(Department, message.id)


def _task(farm: Farm, message: task_pb2.Task) -> Task:
    """A task by id, or by name as Cuebot's TaskInterface looks it up."""
    try:
        return farm.get(Task, message.id)
    except errors.EmptyResultError:
        return farm.named(Task, message.name)


def _add_task(farm: Farm, department: Department, shot: str, min_cores: float) -> Task:
    """Give a shot minimum cores in a department, replacing its task if it had one."""
    for existing in list(department.tasks.values()):
        if existing.shot == shot:
            _remove_task(farm, existing)
    task = farm.register(
        Task(id=farm.new_id(), shot=shot, department=department, min_cores=min_cores)
    )
    department.tasks[task.id] = task
    return task


def _remove_task(farm: Farm, task: Task) -> None:
    """Remove a task from its department."""
    del task.department.tasks[task.id]
    farm.unregister(task)


def _task_seq(tasks: list[Task]) -> task_pb2.TaskSeq:
    """Tasks by shot."""
    ordered = sorted(tasks, key=lambda task: task.shot)
    return task_pb2.TaskSeq(tasks=[messages.task(task) for task in ordered])


# -- limit.LimitInterface -------------------------------------------------------


@rpc("/limit.LimitInterface/GetAll")
def get_all_limits(farm: Farm, _request: limit_pb2.LimitGetAllRequest) -> Message:
    """Every limit, by name."""
    limits = sorted(farm.all(Limit), key=lambda limit: limit.name)
    return limit_pb2.LimitGetAllResponse(limits=[_limit_message(farm, lim) for lim in limits])


@rpc("/limit.LimitInterface/Find")
def find_limit(farm: Farm, request: limit_pb2.LimitFindRequest) -> Message:
    """A limit by name."""
    return limit_pb2.LimitFindResponse(limit=_limit_message(farm, _limit(farm, request.name)))


@rpc("/limit.LimitInterface/Get")
def get_limit(farm: Farm, request: limit_pb2.LimitGetRequest) -> Message:
    """A limit by id."""
    return limit_pb2.LimitGetResponse(
        limit=_limit_message(farm, farm.get(Limit, request.id))
    )


@rpc("/limit.LimitInterface/Create")
def create_limit(farm: Farm, request: limit_pb2.LimitCreateRequest) -> Message:
    """Create a limit."""
    if any(limit.name == request.name for limit in farm.all(Limit)):
        raise errors.duplicate("limit", request.name)
    limit = farm.register(Limit(
        id=farm.new_id(), name=request.name, max_value=request.max_value, type=request.type,
        enforcement=request.enforcement, soft_value=request.soft_value,
        exit_status=request.exit_status, delay_minutes=request.delay_minutes,
        auto_tag=request.auto_tag,
    ))
    return limit_pb2.LimitCreateResponse(limit=_limit_message(farm, limit))


@rpc("/limit.LimitInterface/Delete")
def delete_limit(farm: Farm, request: limit_pb2.LimitDeleteRequest) -> Message:
    """Delete a limit; layers stop holding it."""
    limit = _limit(farm, request.name)
    for layer in layers_holding(farm, limit.name):
        layer.limits.remove(limit.name)
    farm.unregister(limit)
    return limit_pb2.LimitDeleteResponse()


@rpc("/limit.LimitInterface/Rename")
def rename_limit(farm: Farm, request: limit_pb2.LimitRenameRequest) -> Message:
    """Rename a limit; layers holding it follow."""
    limit = _limit(farm, request.old_name)
    for layer in layers_holding(farm, limit.name):
        layer.limits[layer.limits.index(limit.name)] = request.new_name
    limit.name = request.new_name
    return limit_pb2.LimitRenameResponse()


@rpc("/limit.LimitInterface/SetMaxValue")
def set_limit_max_value(farm: Farm, request: limit_pb2.LimitSetMaxValueRequest) -> Message:
    """Change how many frames may hold a limit at once."""
    _limit(farm, request.name).max_value = request.max_value
    return limit_pb2.LimitSetMaxValueResponse()


# -- service.ServiceInterface and service.ServiceOverrideInterface -------------------


@rpc("/service.ServiceInterface/GetDefaultServices")
def get_default_services(
    farm: Farm, _request: service_pb2.ServiceGetDefaultServicesRequest
) -> Message:
    """Every facility-wide service, by name."""
    services = sorted(
        (s for s in farm.all(Service) if s.show is None), key=lambda service: service.name
    )
    return service_pb2.ServiceGetDefaultServicesResponse(
        services=service_pb2.ServiceSeq(services=[messages.service(s) for s in services])
    )


@rpc("/service.ServiceInterface/GetService")
def get_service(farm: Farm, request: service_pb2.ServiceGetServiceRequest) -> Message:
    """A facility-wide service by name."""
    with not_found():
        service = farm.named(Service, request.name, lambda s: s.show is None)
    return service_pb2.ServiceGetServiceResponse(service=messages.service(service))


@rpc("/service.ServiceInterface/CreateService")
def create_service(farm: Farm, request: service_pb2.ServiceCreateServiceRequest) -> Message:
    """Create a facility-wide service."""
    if any(s.name == request.data.name and s.show is None for s in farm.all(Service)):
        raise errors.duplicate("service", request.data.name)
    service = farm.register(_set_service(Service(id=farm.new_id(), name=""), request.data))
    return service_pb2.ServiceCreateServiceResponse(service=messages.service(service))


@rpc("/service.ServiceInterface/Update")
def update_service(farm: Farm, request: service_pb2.ServiceUpdateRequest) -> Message:
    """Save a facility-wide service's settings, by id."""
    _set_service(farm.get(Service, request.service.id), request.service)
    return service_pb2.ServiceUpdateResponse()


@rpc("/service.ServiceInterface/Delete")
def delete_service(farm: Farm, request: service_pb2.ServiceDeleteRequest) -> Message:
    """Delete a facility-wide service, by id."""
    farm.unregister(farm.get(Service, request.service.id))
    return service_pb2.ServiceDeleteResponse()


@rpc("/service.ServiceOverrideInterface/Update")
def update_override(farm: Farm, request: service_pb2.ServiceOverrideUpdateRequest) -> Message:
    """Save a show's override of a service, by override id."""
    _set_service(farm.get(Service, request.service.id), request.service)
    return service_pb2.ServiceOverrideUpdateResponse()


@rpc("/service.ServiceOverrideInterface/Delete")
def delete_override(farm: Farm, request: service_pb2.ServiceOverrideDeleteRequest) -> Message:
    """Delete a show's override of a service, by override id."""
    farm.unregister(farm.get(Service, request.service.id))
    return service_pb2.ServiceOverrideDeleteResponse()


# -- department.DepartmentInterface and task.TaskInterface --------------------------


@rpc("/department.DepartmentInterface/GetDepartmentNames")
def get_department_names(
    farm: Farm, _request: department_pb2.DeptGetDepartmentNamesRequest
) -> Message:
    """Every department name, sorted."""
    return department_pb2.DeptGetDepartmentNamesResponse(names=sorted(farm.department_names))


@rpc("/department.DepartmentInterface/AddDepartmentName")
def add_department_name(farm: Farm, request: department_pb2.DeptAddDeptNameRequest) -> Message:
    """Add a department name."""
    farm.department_names.setdefault(request.name, farm.new_id())
    return department_pb2.DeptAddDeptNameResponse()


@rpc("/department.DepartmentInterface/RemoveDepartmentName")
def remove_department_name(
    farm: Farm, request: department_pb2.DeptRemoveDepartmentNameRequest
) -> Message:
    """Remove a department name."""
    if request.name not in farm.department_names:
        raise errors.EmptyResultError()
    del farm.department_names[request.name]
    return department_pb2.DeptRemoveDepartmentNameResponse()


@rpc("/department.DepartmentInterface/GetTasks")
def get_tasks(farm: Farm, request: department_pb2.DeptGetTasksRequest) -> Message:
    """A department's tasks."""
    tasks = list(_department(farm, request.department).tasks.values())
    return department_pb2.DeptGetTasksResponse(tasks=_task_seq(tasks))


@rpc("/department.DepartmentInterface/AddTask")
def add_task(farm: Farm, request: department_pb2.DeptAddTaskRequest) -> Message:
    """Give a shot minimum cores in a department (in core units, as Cuebot converts them)."""
    department = _department(farm, request.department)
    task = _add_task(farm, department, request.shot, java_int(request.min_cores * 100 + 0.5))
    return department_pb2.DeptAddTaskResponse(task=messages.task(task))


@rpc("/department.DepartmentInterface/AddTasks")
def add_tasks(farm: Farm, request: department_pb2.DeptAddTasksRequest) -> Message:
    """Give several shots minimum cores in a department."""
    department = _department(farm, request.department)
    tasks = [_add_task(farm, department, entry.key, entry.value) for entry in request.tmap]
    return department_pb2.DeptAddTasksResponse(tasks=_task_seq(tasks))


@rpc("/department.DepartmentInterface/ReplaceTasks")
def replace_tasks(farm: Farm, request: department_pb2.DeptReplaceTaskRequest) -> Message:
    """Replace a department's tasks."""
    department = _department(farm, request.department)
    for task in list(department.tasks.values()):
        _remove_task(farm, task)
    tasks = [_add_task(farm, department, entry.key, entry.value) for entry in request.tmap]
    return department_pb2.DeptReplaceTaskResponse(tasks=_task_seq(tasks))


@rpc("/department.DepartmentInterface/ClearTasks")
def clear_tasks(farm: Farm, request: department_pb2.DeptClearTasksRequest) -> Message:
    """Remove a department's tasks."""
    for task in list(_department(farm, request.department).tasks.values()):
        _remove_task(farm, task)
    return department_pb2.DeptClearTasksResponse()


@rpc("/department.DepartmentInterface/ClearTaskAdjustments")
def clear_task_adjustments(
    farm: Farm, request: department_pb2.DeptClearTaskAdjustmentsRequest
) -> Message:
    """Reset every task's core adjustment in a department."""
    for task in _department(farm, request.department).tasks.values():
        task.adjust_cores = 0.0
    return department_pb2.DeptClearTaskAdjustmentsResponse()


@rpc("/department.DepartmentInterface/SetManagedCores")
def set_managed_cores(farm: Farm, request: department_pb2.DeptSetManagedCoresRequest) -> Message:
    """Set the cores a managed department shares among its tasks."""
    _department(farm, request.department).managed_cores = float(java_int(request.managed_cores))
    return department_pb2.DeptSetManagedCoresResponse()


@rpc("/department.DepartmentInterface/EnableTiManaged")
def enable_ti_managed(farm: Farm, request: department_pb2.DeptEnableTiManagedRequest) -> Message:
    """Let a task tracker manage the department's tasks."""
    department = _department(farm, request.department)
    department.ti_managed, department.ti_task = True, request.ti_task
    department.managed_cores = float(java_int(request.managed_cores))
    return department_pb2.DeptEnableTiManagedResponse()


@rpc("/department.DepartmentInterface/DisableTiManaged")
def disable_ti_managed(farm: Farm, request: department_pb2.DeptDisableTiManagedRequest) -> Message:
    """Stop task-tracker management; the department's tasks are cleared."""
    department = _department(farm, request.department)
    department.ti_managed, department.ti_task, department.managed_cores = False, "", 0.0
    for task in list(department.tasks.values()):
        _remove_task(farm, task)
    return department_pb2.DeptDisableTiManagedResponse()


@rpc("/task.TaskInterface/SetMinCores")
def set_task_min_cores(farm: Farm, request: task_pb2.TaskSetMinCoresRequest) -> Message:
    """Change a task's minimum cores (whole cores)."""
    _task(farm, request.task).min_cores = float(java_int(request.new_min_cores))
    return task_pb2.TaskSetMinCoresResponse()


@rpc("/task.TaskInterface/ClearAdjustments")
def clear_adjustments(farm: Farm, request: task_pb2.TaskClearAdjustmentsRequest) -> Message:
    """Reset a task's core adjustment."""
    _task(farm, request.task).adjust_cores = 0.0
    return task_pb2.TaskClearAdjustmentsResponse()


@rpc("/task.TaskInterface/Delete")
def delete_task(farm: Farm, request: task_pb2.TaskDeleteRequest) -> Message:
    """Remove a task."""
    _remove_task(farm, _task(farm, request.task))
    return task_pb2.TaskDeleteResponse()


# -- comment.CommentInterface and depend.DependInterface -----------------------------


@rpc("/comment.CommentInterface/Save")
def save_comment(farm: Farm, request: comment_pb2.CommentSaveRequest) -> Message:
    """Save an edited comment's subject and message (user and time stay)."""
    comment = farm.comment(request.comment.id)
    comment.subject, comment.message = request.comment.subject, request.comment.message
    return comment_pb2.CommentSaveResponse()


@rpc("/comment.CommentInterface/Delete")
def delete_comment(farm: Farm, request: comment_pb2.CommentDeleteRequest) -> Message:
    """Delete a comment."""
    farm.delete_comment(request.comment.id)
    return comment_pb2.CommentDeleteResponse()


@rpc("/depend.DependInterface/GetDepend")
def get_depend(farm: Farm, request: depend_pb2.DependGetDependRequest) -> Message:
    """A depend by id."""
    with not_found():
        depend = farm.depends.get(request.id)
    return depend_pb2.DependGetDependResponse(depend=messages.depend(depend))


@rpc("/depend.DependInterface/Satisfy")
def satisfy(farm: Farm, request: depend_pb2.DependSatisfyRequest) -> Message:
    """Release what a depend holds."""
    farm.depends.satisfy(farm.depends.get(request.depend.id))
    return depend_pb2.DependSatisfyResponse()


@rpc("/depend.DependInterface/Unsatisfy")
def unsatisfy(farm: Farm, request: depend_pb2.DependUnsatisfyRequest) -> Message:
    """Make a satisfied depend hold its frames again."""
    farm.depends.unsatisfy(farm.depends.get(request.depend.id))
    return depend_pb2.DependUnsatisfyResponse()
