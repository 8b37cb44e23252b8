"""The catalog's one origin: a FileDescriptorSet loaded into a descriptor pool.

The default path (the installed opencue-proto's set, into the default pool) must keep
opencue-proto's own message classes; a studio's set goes into a fresh pool, beside
opencue-proto's files even where it redefines them; a set the gateway cannot serve
is refused in one line that says why.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import version

import opencue_proto
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from opencue_proto import show_pb2

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.descriptor_sets import (
    DescriptorSetError,
    file_set,
    installed_set,
    load_set,
    read_set,
)
from tests.studio_protos import FIND_SHOW, GET_BUDGET


def studio_files(studio) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(studio.path.read_bytes())


def test_the_default_catalog_keeps_opencue_protos_classes(catalog):
    """The installed set goes into the default pool, so replies are opencue-proto's classes."""
    method = catalog.methods["/show.ShowInterface/GetShows"]
    assert method.output_type is show_pb2.ShowGetShowsResponse
    assert method.input_type is show_pb2.ShowGetShowsRequest
    assert catalog.describe() == {"source": f"opencue-proto {version('opencue_proto')}",
                                  "services": 25, "methods": 293}


def test_the_installed_set_holds_every_generated_module():
    """Every *_pb2 module of opencue-proto is in the set, each file once, imports first."""
    modules = [importlib.import_module(f"opencue_proto.{m.name}")
               for m in pkgutil.iter_modules(opencue_proto.__path__) if m.name.endswith("_pb2")]
    assert {m.DESCRIPTOR.name for m in modules} <= {f.name for f in installed_set().file}
    assert imports_first(installed_set())


def test_a_studio_set_lives_beside_opencue_proto(studio):
    """The fork's show.Show has its extra field; opencue-proto's, in the default pool, does not."""
    forked = studio.catalog.methods[FIND_SHOW].output_type
    assert "studio_code" in forked.DESCRIPTOR.fields_by_name["show"].message_type.fields_by_name
    assert "studio_code" not in show_pb2.Show.DESCRIPTOR.fields_by_name
    assert descriptor_pool.Default().FindFileByName("show.proto") is show_pb2.DESCRIPTOR
    assert studio.catalog.describe() == {"source": str(studio.path), "services": 2,
                                         "methods": 4}
    assert GET_BUDGET in studio.catalog.methods


def test_files_out_of_order_still_load(studio):
    """A set whose importers come first (another tool's order) loads all the same."""
    files = studio_files(studio)
    backwards = descriptor_pb2.FileDescriptorSet(file=list(reversed(files.file)))
    loaded = load_set(backwards, descriptor_pool.DescriptorPool())
    assert [f.name for f in loaded] == [f.name for f in backwards.file]


def test_a_set_without_its_imports_is_refused(studio):
    """protoc without --include_imports leaves imports out: the line names both files."""
    files = studio_files(studio)
    without = descriptor_pb2.FileDescriptorSet(
        file=[f for f in files.file if f.name != "google/protobuf/timestamp.proto"])
    with pytest.raises(DescriptorSetError) as refused:
        load_set(without, descriptor_pool.DescriptorPool())
    assert str(refused.value) == (
        "studio/budget.proto imports google/protobuf/timestamp.proto, which the set does not "
        "hold (build it with protoc's --include_imports, as python -m proto_gen does)")


def test_a_file_twice_is_refused(studio):
    """Two files of one name cannot both be loaded; the set is refused naming it."""
    files = studio_files(studio)
    files.file.append(next(f for f in files.file if f.name == "show.proto"))
    with pytest.raises(DescriptorSetError, match=r"^show.proto is in the set twice$"):
        load_set(files, descriptor_pool.DescriptorPool())


def test_an_import_cycle_is_refused():
    """A hand-made set whose files import each other is refused rather than recursed into."""
    one = descriptor_pb2.FileDescriptorProto(name="a.proto", dependency=["b.proto"])
    two = descriptor_pb2.FileDescriptorProto(name="b.proto", dependency=["a.proto"])
    with pytest.raises(DescriptorSetError, match=r"^a\.proto imports itself"):
        load_set(descriptor_pb2.FileDescriptorSet(file=[one, two]),
                 descriptor_pool.DescriptorPool())


def test_what_the_pool_refuses_is_one_line():
    """A hand-made set naming a type it does not define: the pool's reason, in one line."""
    proto = descriptor_pb2.FileDescriptorProto(name="bad.proto", package="bad", syntax="proto3")
    proto.message_type.add(name="M").field.add(
        name="x", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".nope.Missing")
    with pytest.raises(DescriptorSetError) as refused:
        load_set(descriptor_pb2.FileDescriptorSet(file=[proto]), descriptor_pool.DescriptorPool())
    message = str(refused.value)
    assert message.startswith("bad.proto: ") and ".nope.Missing" in message
    assert "\n" not in message and "Couldn't build" not in message


@pytest.mark.parametrize(("content", "said"), [
    (None, "cannot read '{path}': No such file or directory"),
    (b"\xff\xff\xff\xff", "'{path}' is not a FileDescriptorSet"),
    (b"", "'{path}' is not a FileDescriptorSet"),
    (b"CUEBOT_ENDPOINT=cuebot:8443\n", "'{path}' is not a FileDescriptorSet"),
])
def test_what_is_no_set_is_refused_naming_the_file(tmp_path, content, said):
    """Unreadable, undecodable, empty, or text that happens to decode: one line, the path."""
    path = tmp_path / "set.pb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DescriptorSetError) as refused:
        read_set(str(path))
    assert str(refused.value).startswith(said.format(path=path))
    assert "\n" not in str(refused.value)


def test_a_directory_is_not_a_set(tmp_path):
    """PROTO_DESCRIPTOR_SET pointing at the proto directory itself says it cannot be read."""
    with pytest.raises(DescriptorSetError, match=r"^cannot read .*: Is a directory$"):
        read_set(str(tmp_path))


def test_file_set_orders_a_catalogs_files_imports_first(studio, catalog):
    """Any catalog's files become a set with imports first that serves the same methods."""
    for source in (catalog, studio.catalog):
        files = file_set(source.files)
        assert imports_first(files)
        copy = MethodCatalog.from_descriptor_set(files, descriptor_pool.DescriptorPool(), "copy")
        assert copy.methods.keys() == source.methods.keys()


def imports_first(files: descriptor_pb2.FileDescriptorSet) -> bool:
    """Does every file come after the files it imports (each file once)?"""
    names = [f.name for f in files.file]
    return len(names) == len(set(names)) and all(
        names.index(d) < names.index(f.name) for f in files.file for d in f.dependency)
