"""``facility.FacilityInterface``, ``facility.AllocationInterface`` and
``subscription.SubscriptionInterface``: where hosts live and which shows may use them.

Allocation names are ``facility.alloc`` and a host belongs to the allocation
its ``alloc_name`` names; a subscription's name is ``facility.alloc.show``.
Sizes and bursts are in core units (cores x 100), as Cuebot stores them.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opencue_proto import facility_pb2, subscription_pb2

from opencue_gateway.sandbox import errors, messages, search
from opencue_gateway.sandbox.admin_records import Allocation, Facility, Subscription
from opencue_gateway.sandbox.errors import not_found
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.records import Host
from opencue_gateway.sandbox.rpc_registry import host_seq, rpc


def hosts_in(farm: Farm, allocation: Allocation) -> list[Host]:
    """The hosts of an allocation, by name."""
    return sorted(
        (host for host in farm.hosts() if host.alloc_name == allocation.name),
        key=lambda host: host.name,
    )


def allocation_message(farm: Farm, allocation: Allocation) -> facility_pb2.Allocation:
    """An allocation with its host stats."""
    return messages.allocation(allocation, hosts_in(farm, allocation))


def allocation_seq(farm: Farm, allocations: list[Allocation]) -> facility_pb2.AllocationSeq:
    """Allocations by name, with stats."""
    ordered = sorted(allocations, key=lambda alloc: alloc.name)
    return facility_pb2.AllocationSeq(
        allocations=[allocation_message(farm, alloc) for alloc in ordered]
    )


def subscription_message(farm: Farm, sub: Subscription) -> subscription_pb2.Subscription:
    """A subscription, reserving what its show's procs hold on the allocation's hosts."""
    procs = (
        proc for host in hosts_in(farm, sub.allocation) for proc in host.procs.values()
        if proc.job.show is sub.show
    )
    return messages.subscription(sub, procs)


def subscription_seq(farm: Farm, subs: list[Subscription]) -> subscription_pb2.SubscriptionSeq:
    """Subscriptions by name."""
    ordered = sorted(subs, key=lambda sub: sub.name)
    return subscription_pb2.SubscriptionSeq(
        subscriptions=[subscription_message(farm, sub) for sub in ordered]
    )


def find_allocation(farm: Farm, name: str) -> Allocation:
    """An allocation by full ``facility.alloc`` name."""
    return farm.named(Allocation, name)


def _allocation_named(farm: Farm, message: facility_pb2.Allocation) -> Allocation:
    """The allocation a message names, by facility and name, as Cuebot's setters find it."""
    name = message.name
    if "." not in name:
        name = f"{message.facility}.{name}"
    return find_allocation(farm, name)


def _short_name(name: str) -> str:
    """An allocation name without its facility part, as Cuebot takes either form of it."""
    return name.split(".", 1)[1] if "." in name else name


def _rename_allocation(farm: Farm, allocation: Allocation, new_name: str) -> None:
    """Rename an allocation; its hosts follow, since a host names its allocation by name."""
    for host in hosts_in(farm, allocation):
        host.alloc_name = new_name
    allocation.name = new_name


def _subscription(farm: Farm, message: subscription_pb2.Subscription) -> Subscription:
    """The subscription a message names by id."""
    return farm.get(Subscription, message.id)


# -- facility.FacilityInterface -----------------------------------------------------


@rpc("/facility.FacilityInterface/Get")
def get_facility(farm: Farm, request: facility_pb2.FacilityGetRequest) -> Message:
    """A facility by name."""
    with not_found():
        facility = farm.named(Facility, request.name)
    return facility_pb2.FacilityGetResponse(facility=messages.facility(facility))


@rpc("/facility.FacilityInterface/Create")
def create_facility(farm: Farm, request: facility_pb2.FacilityCreateRequest) -> Message:
    """Create a facility."""
    if any(f.name == request.name for f in farm.all(Facility)):
        raise errors.duplicate("facility", request.name)
    facility = farm.register(Facility(id=farm.new_id(), name=request.name))
    return facility_pb2.FacilityCreateResponse(facility=messages.facility(facility))


@rpc("/facility.FacilityInterface/Rename")
def rename_facility(farm: Farm, request: facility_pb2.FacilityRenameRequest) -> Message:
    """Rename a facility; its allocations' names, and their hosts, follow."""
    facility = farm.named(Facility, request.facility.name)
    for allocation in [a for a in farm.all(Allocation) if a.facility is facility]:
        _rename_allocation(farm, allocation, f"{request.new_name}.{_short_name(allocation.name)}")
    facility.name = request.new_name
    return facility_pb2.FacilityRenameResponse()


@rpc("/facility.FacilityInterface/Delete")
def delete_facility(farm: Farm, request: facility_pb2.FacilityDeleteRequest) -> Message:
    """Delete a facility that has no allocation left."""
    facility = farm.named(Facility, request.name)
    if any(a.facility is facility for a in farm.all(Allocation)):
        raise errors.facility_has_allocations()
    farm.unregister(facility)
    return facility_pb2.FacilityDeleteResponse()


# -- facility.AllocationInterface ---------------------------------------------------


@rpc("/facility.AllocationInterface/GetAll")
def get_all_allocations(farm: Farm, _request: facility_pb2.AllocGetAllRequest) -> Message:
    """Every allocation."""
    return facility_pb2.AllocGetAllResponse(allocations=allocation_seq(farm, farm.all(Allocation)))


@rpc("/facility.AllocationInterface/Get")
def get_allocation(farm: Farm, request: facility_pb2.AllocGetRequest) -> Message:
    """An allocation by id."""
    with not_found():
        allocation = farm.get(Allocation, request.id)
    return facility_pb2.AllocGetResponse(allocation=allocation_message(farm, allocation))


@rpc("/facility.AllocationInterface/Find")
def find_allocation_by_name(farm: Farm, request: facility_pb2.AllocFindRequest) -> Message:
    """An allocation by ``facility.alloc`` name."""
    with not_found():
        allocation = find_allocation(farm, request.name)
    return facility_pb2.AllocFindResponse(allocation=allocation_message(farm, allocation))


@rpc("/facility.AllocationInterface/GetDefault")
def get_default_allocation(farm: Farm, _request: facility_pb2.AllocGetDefaultRequest) -> Message:
    """The allocation new hosts join."""
    allocation = farm.get(Allocation, farm.default_allocation_id)
    return facility_pb2.AllocGetDefaultResponse(allocation=allocation_message(farm, allocation))


@rpc("/facility.AllocationInterface/SetDefault")
def set_default_allocation(farm: Farm, request: facility_pb2.AllocSetDefaultRequest) -> Message:
    """Make an allocation the default."""
    farm.default_allocation_id = _allocation_named(farm, request.allocation).id
    return facility_pb2.AllocSetDefaultResponse()


@rpc("/facility.AllocationInterface/GetHosts")
def get_allocation_hosts(farm: Farm, request: facility_pb2.AllocGetHostsRequest) -> Message:
    """The hosts of an allocation."""
    allocation = farm.get(Allocation, request.allocation.id)
    return facility_pb2.AllocGetHostsResponse(hosts=host_seq(hosts_in(farm, allocation)))


@rpc("/facility.AllocationInterface/FindHosts")
def find_allocation_hosts(farm: Farm, request: facility_pb2.AllocFindHostsRequest) -> Message:
    """The hosts of an allocation matching a HostSearchCriteria."""
    allocation = farm.get(Allocation, request.allocation.id)
    hosts = search.match_hosts(hosts_in(farm, allocation), request.r)
    return facility_pb2.AllocFindHostsResponse(hosts=host_seq(hosts))


@rpc("/facility.AllocationInterface/GetSubscriptions")
def get_allocation_subscriptions(
    farm: Farm, request: facility_pb2.AllocGetSubscriptionsRequest
) -> Message:
    """The subscriptions shows hold on an allocation."""
    allocation = farm.get(Allocation, request.allocation.id)
    subs = [s for s in farm.all(Subscription) if s.allocation is allocation]
    return facility_pb2.AllocGetSubscriptionsResponse(subscriptions=subscription_seq(farm, subs))


@rpc("/facility.AllocationInterface/Create")
def create_allocation(farm: Farm, request: facility_pb2.AllocCreateRequest) -> Message:
    """Create an allocation in a facility; a full ``facility.alloc`` name is accepted."""
    facility = farm.named(Facility, request.facility.name)
    name = f"{facility.name}.{_short_name(request.name)}"
    if any(a.name == name for a in farm.all(Allocation)):
        raise errors.duplicate("allocation", name)
    allocation = farm.register(
        Allocation(id=farm.new_id(), name=name, tag=request.tag, facility=facility)
    )
    return facility_pb2.AllocCreateResponse(allocation=allocation_message(farm, allocation))


@rpc("/facility.AllocationInterface/Delete")
def delete_allocation(farm: Farm, request: facility_pb2.AllocDeleteRequest) -> Message:
    """Delete an allocation that holds no host and is not the default."""
    allocation = _allocation_named(farm, request.allocation)
    if hosts_in(farm, allocation):
        raise errors.alloc_has_hosts()
    if allocation.id == farm.default_allocation_id:
        raise errors.alloc_is_default()
    for sub in farm.all(Subscription):
        if sub.allocation is allocation:
            farm.unregister(sub)
    farm.unregister(allocation)
    return facility_pb2.AllocDeleteResponse()


@rpc("/facility.AllocationInterface/SetName")
def set_allocation_name(farm: Farm, request: facility_pb2.AllocSetNameRequest) -> Message:
    """Rename an allocation; its hosts follow."""
    allocation = _allocation_named(farm, request.allocation)
    _rename_allocation(farm, allocation, f"{allocation.facility.name}.{_short_name(request.name)}")
    return facility_pb2.AllocSetNameResponse()


@rpc("/facility.AllocationInterface/SetTag")
def set_allocation_tag(farm: Farm, request: facility_pb2.AllocSetTagRequest) -> Message:
    """Change an allocation's tag."""
    _allocation_named(farm, request.allocation).tag = request.tag
    return facility_pb2.AllocSetTagResponse()


@rpc("/facility.AllocationInterface/SetBillable")
def set_allocation_billable(farm: Farm, request: facility_pb2.AllocSetBillableRequest) -> Message:
    """Mark an allocation billable or not."""
    _allocation_named(farm, request.allocation).billable = request.value
    return facility_pb2.AllocSetBillableResponse()


@rpc("/facility.AllocationInterface/ReparentHosts")
def reparent_hosts(farm: Farm, request: facility_pb2.AllocReparentHostsRequest) -> Message:
    """Move hosts, by id, into an allocation."""
    allocation = farm.get(Allocation, request.allocation.id)
    for message in request.hosts.hosts:
        move_host(farm.host(message.id), allocation)
    return facility_pb2.AllocReparentHostsResponse()


def move_host(host: Host, allocation: Allocation) -> None:
    """Put a host in an allocation; Cuebot refuses while the host runs procs."""
    if host.procs:
        raise errors.host_has_procs()
    host.alloc_name = allocation.name


# -- subscription.SubscriptionInterface ---------------------------------------------


@rpc("/subscription.SubscriptionInterface/Get")
def get_subscription(farm: Farm, request: subscription_pb2.SubscriptionGetRequest) -> Message:
    """A subscription by id."""
    with not_found():
        sub = farm.get(Subscription, request.id)
    return subscription_pb2.SubscriptionGetResponse(subscription=subscription_message(farm, sub))


@rpc("/subscription.SubscriptionInterface/Find")
def find_subscription(farm: Farm, request: subscription_pb2.SubscriptionFindRequest) -> Message:
    """A subscription by ``facility.alloc.show`` name."""
    if len(request.name.split(".", 2)) != 3:
        raise errors.bad_subscription_name()
    try:
        sub = farm.named(Subscription, request.name)
    except errors.EmptyResultError:
        raise errors.subscription_not_found(request.name) from None
    return subscription_pb2.SubscriptionFindResponse(subscription=subscription_message(farm, sub))


@rpc("/subscription.SubscriptionInterface/SetSize")
def set_subscription_size(
    farm: Farm, request: subscription_pb2.SubscriptionSetSizeRequest
) -> Message:
    """Change a subscription's size."""
    _subscription(farm, request.subscription).size = request.new_size
    return subscription_pb2.SubscriptionSetSizeResponse()


@rpc("/subscription.SubscriptionInterface/SetBurst")
def set_subscription_burst(
    farm: Farm, request: subscription_pb2.SubscriptionSetBurstRequest
) -> Message:
    """Change a subscription's burst."""
    _subscription(farm, request.subscription).burst = request.burst
    return subscription_pb2.SubscriptionSetBurstResponse()


@rpc("/subscription.SubscriptionInterface/Delete")
def delete_subscription(farm: Farm, request: subscription_pb2.SubscriptionDeleteRequest) -> Message:
    """Delete a subscription its show has no proc running on."""
    sub = _subscription(farm, request.subscription)
    if subscription_message(farm, sub).reserved_cores:
        raise errors.subscription_has_procs()
    farm.unregister(sub)
    return subscription_pb2.SubscriptionDeleteResponse()
