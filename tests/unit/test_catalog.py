"""The catalog: every Cuebot-facing RPC from the descriptors, and path resolution."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.errors import GatewayError


def test_opencue_proto_exposes_25_services_and_293_methods(catalog):
    """With opencue-proto 1.37.0 the gateway serves 25 services and 293 methods."""
    assert len(catalog.services) == 25
    assert len(catalog) == 293


def test_rqd_and_host_reports_are_not_exposed(catalog):
    """RQD's services and the RQD report channel are not Cuebot-facing."""
    assert not [s for s in catalog.services if s.startswith("rqd.")]
    assert "report.RqdReportInterface" not in catalog.services
    for path in ("/rqd.RqdInterface/Launch", "/report.RqdReportInterface/ReportStatus"):
        with pytest.raises(GatewayError):
            catalog.resolve(path)


def test_canonical_path_resolves(catalog):
    """The fully qualified path resolves to its method and message types."""
    method = catalog.resolve("/show.ShowInterface/GetShows")
    assert (method.service, method.name) == ("show.ShowInterface", "GetShows")
    assert method.input_type.DESCRIPTOR.full_name == "show.ShowGetShowsRequest"


@pytest.mark.parametrize(("written", "real"), [
    ("/frame.FrameInterface/Retry", "/job.FrameInterface/Retry"),
    ("/layer.LayerInterface/GetLayer", "/job.LayerInterface/GetLayer"),
    ("/group.GroupInterface/FindGroup", "/job.GroupInterface/FindGroup"),
    ("/owner.OwnerInterface/GetOwner", "/host.OwnerInterface/GetOwner"),
    ("/proc.ProcInterface/Kill", "/host.ProcInterface/Kill"),
    ("/deed.DeedInterface/GetHost", "/host.DeedInterface/GetHost"),
])
def test_readme_package_spellings_resolve_by_service_name(catalog, written, real):
    """The README's non-existent packages resolve by the unique simple service name."""
    assert catalog.resolve(written).path == real


@pytest.mark.parametrize(("path", "suggestion"), [
    ("/layer.LayerInterface/Kill", "/job.LayerInterface/KillFrames"),
    ("/owner.OwnerInterface/SetMaxCores", "/job.GroupInterface/SetMaxCores"),
    ("/proc.ProcInterface/GetProc", "/host.ProcInterface/GetProcs"),
    ("/show.ShowInterface/GetShow", "/show.ShowInterface/GetShows"),
])
def test_unknown_method_names_the_nearest_real_ones(catalog, path, suggestion):
    """A method the protos lack is a 404 that suggests the nearest real methods."""
    with pytest.raises(GatewayError) as caught:
        catalog.resolve(path)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "did you mean" in caught.value.message
    assert suggestion in caught.value.message


@pytest.mark.parametrize("path", ["/", "/nothing", "/a/b/c", "/show.ShowInterface/"])
def test_malformed_paths_are_404(catalog, path):
    """Paths that are not /<package>.<Service>/<Method> are a 404 explaining the form."""
    with pytest.raises(GatewayError) as caught:
        catalog.resolve(path)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_unknown_service_suggests_close_services(catalog):
    """A misspelt service gets a suggestion."""
    with pytest.raises(GatewayError) as caught:
        catalog.resolve("/show.ShowInterfac/GetShows")
    assert "show.ShowInterface" in caught.value.message


def _file(name: str, package: str, services: dict[str, list[tuple[str, bool]]]):
    """A small FileDescriptor built in its own pool, for catalogs of synthetic protos."""
    proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    proto.message_type.add(name="Msg")
    for service_name, methods in services.items():
        service = proto.service.add(name=service_name)
        for method_name, streaming in methods:
            service.method.add(name=method_name, input_type=f".{package}.Msg",
                               output_type=f".{package}.Msg", server_streaming=streaming)
    pool = descriptor_pool.DescriptorPool()
    return pool.Add(proto) and pool.FindFileByName(name)


def test_ambiguous_simple_names_do_not_resolve():
    """When two packages share a service name, only the full path resolves."""
    catalog = MethodCatalog.from_file_descriptors([
        _file("a.proto", "a", {"Thing": [("Get", False)]}),
        _file("b.proto", "b", {"Thing": [("Get", False)]}),
    ])
    assert catalog.resolve("/a.Thing/Get").path == "/a.Thing/Get"
    with pytest.raises(GatewayError):
        catalog.resolve("/c.Thing/Get")


def test_streaming_methods_are_skipped():
    """A streaming RPC cannot be one POST; it is left out of the catalog."""
    catalog = MethodCatalog.from_file_descriptors(
        [_file("s.proto", "s", {"Svc": [("Unary", False), ("Stream", True)]})]
    )
    assert [m.path for m in catalog] == ["/s.Svc/Unary"]


@pytest.mark.parametrize("path", [
    "/show.ShowInterface/" + "A" * 10_000,
    "/" + "B" * 10_000 + "/GetShows",
    "/" + "C" * 10_000,
])
def test_a_huge_unknown_path_is_quoted_short(catalog, path):
    """A 16 KiB URL gets a short 404 message, not its whole text back (twice, in the body)."""
    with pytest.raises(GatewayError) as raised:
        catalog.resolve(path)
    assert raised.value.code is grpc.StatusCode.NOT_FOUND
    assert len(raised.value.message) < 400 and "..." in raised.value.message
