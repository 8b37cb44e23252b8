"""The RPCs the sandbox Cuebot implements, gathered from the ``rpc_*`` modules.

``HANDLERS`` maps each implemented method path (``/package.Service/Method``)
to its handler, a ``(farm, request) -> response`` function; every other
catalog method answers UNIMPLEMENTED.  Handlers live in one module per Cuebot
service family and register themselves with :func:`.rpc_registry.rpc` when
imported, which this module does:

* :mod:`.rpc_show` (ShowInterface), :mod:`.rpc_group` (GroupInterface),
  :mod:`.rpc_job` (JobInterface), :mod:`.rpc_layer` (LayerInterface),
  :mod:`.rpc_frame` (FrameInterface);
* :mod:`.rpc_host` (HostInterface, OwnerInterface, DeedInterface),
  :mod:`.rpc_proc` (ProcInterface), :mod:`.rpc_local` (render partitions);
* :mod:`.rpc_facility` (FacilityInterface, AllocationInterface,
  SubscriptionInterface), :mod:`.rpc_filters` (FilterInterface,
  ActionInterface, MatcherInterface, JobInterface.RunFilters);
* :mod:`.rpc_admin` (LimitInterface, ServiceInterface,
  ServiceOverrideInterface, DepartmentInterface, TaskInterface,
  CommentInterface, DependInterface).
"""

from opencue_gateway.sandbox import (
    rpc_admin,
    rpc_facility,
    rpc_filters,
    rpc_frame,
    rpc_group,
    rpc_host,
    rpc_job,
    rpc_layer,
    rpc_local,
    rpc_proc,
    rpc_show,
)
from opencue_gateway.sandbox.rpc_registry import HANDLERS, Handler

SERVICE_MODULES = (
    rpc_admin, rpc_facility, rpc_filters, rpc_frame, rpc_group, rpc_host, rpc_job, rpc_layer,
    rpc_local, rpc_proc, rpc_show,
)

__all__ = ["HANDLERS", "SERVICE_MODULES", "Handler"]
