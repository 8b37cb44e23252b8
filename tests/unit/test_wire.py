"""The wire contract: every message type read once into the JSON form all codecs follow."""

from __future__ import annotations

from functools import cache

import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor
from opencue_proto import job_pb2

from opencue_gateway.wire import (
    INT_RANGES,
    Kind,
    Presence,
    Shape,
    WellKnown,
    WireContract,
    WireMessage,
)

P = descriptor_pb2.FieldDescriptorProto
INT32, UINT32 = INT_RANGES[Kind.INT32], INT_RANGES[Kind.UINT32]
INT64, UINT64 = INT_RANGES[Kind.INT64], INT_RANGES[Kind.UINT64]
WELL_KNOWN_FILES = (any_pb2, duration_pb2, empty_pb2, field_mask_pb2, struct_pb2,
                    timestamp_pb2, wrappers_pb2)


def _add(message, name, kind, *, repeated=False, type_name="", oneof=None, optional=False,
         json_name=""):
    """Append a field to a DescriptorProto, numbered after the ones before it."""
    field = message.field.add(
        name=name, number=len(message.field) + 1, type=kind,
        label=P.LABEL_REPEATED if repeated else P.LABEL_OPTIONAL,
    )
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    if optional:
        field.proto3_optional = True
    if json_name:
        field.json_name = json_name


def _add_map(message, name, key, value, value_type_name=""):
    """Append a ``map<key, value>`` field and its entry type."""
    entry = message.nested_type.add(name="".join(p.title() for p in name.split("_")) + "Entry")
    entry.options.map_entry = True
    _add(entry, "key", key)
    _add(entry, "value", value, type_name=value_type_name)
    _add(message, name, P.TYPE_MESSAGE, repeated=True,
         type_name=f".wide.{message.name}.{entry.name}")


def _wide_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """A proto3 file using every construct, and a proto2 file, as a studio's fork might."""
    wide = descriptor_pb2.FileDescriptorProto(
        name="wide/all.proto", package="wide", syntax="proto3",
        dependency=[m.DESCRIPTOR.name for m in WELL_KNOWN_FILES],
    )
    color = wide.enum_type.add(name="Color")
    color.options.allow_alias = True
    for name, number in (("COLOR_UNSET", 0), ("RED", 1), ("CRIMSON", 1), ("BLUE", 2)):
        color.value.add(name=name, number=number)
    node = wide.message_type.add(name="Node")
    scalars = [("i32", P.TYPE_INT32), ("s32", P.TYPE_SINT32), ("sf32", P.TYPE_SFIXED32),
               ("u32", P.TYPE_UINT32), ("f32", P.TYPE_FIXED32), ("i64", P.TYPE_INT64),
               ("s64", P.TYPE_SINT64), ("sf64", P.TYPE_SFIXED64), ("u64", P.TYPE_UINT64),
               ("f64", P.TYPE_FIXED64), ("fl", P.TYPE_FLOAT), ("db", P.TYPE_DOUBLE),
               ("b", P.TYPE_BOOL), ("s", P.TYPE_STRING), ("by", P.TYPE_BYTES)]
    for name, kind in scalars:
        _add(node, name, kind)
    _add(node, "color", P.TYPE_ENUM, type_name=".wide.Color")
    _add(node, "parent", P.TYPE_MESSAGE, type_name=".wide.Node")
    _add(node, "children", P.TYPE_MESSAGE, repeated=True, type_name=".wide.Node")
    _add(node, "tags", P.TYPE_STRING, repeated=True)
    _add(node, "from", P.TYPE_STRING)
    _add(node, "log_dir", P.TYPE_STRING)
    _add(node, "custom_name", P.TYPE_STRING, json_name="CUSTOM")
    node.oneof_decl.add(name="pick")
    _add(node, "label", P.TYPE_STRING, oneof=0)
    _add(node, "count", P.TYPE_INT64, oneof=0)
    node.oneof_decl.add(name="_maybe")
    _add(node, "maybe", P.TYPE_INT32, oneof=1, optional=True)
    _add_map(node, "by_id", P.TYPE_INT64, P.TYPE_MESSAGE, ".wide.Node")
    _add_map(node, "flags", P.TYPE_BOOL, P.TYPE_STRING)
    known = wide.message_type.add(name="Known")
    for name in ("Timestamp", "Duration", "FieldMask", "Struct", "Value", "ListValue", "Empty",
                 "Any", "Int64Value", "BytesValue", "FloatValue"):
        _add(known, name.lower(), P.TYPE_MESSAGE, type_name=f".google.protobuf.{name}")
    legacy = descriptor_pb2.FileDescriptorProto(
        name="wide/legacy.proto", package="wide", syntax="proto2", dependency=["wide/all.proto"],
    )
    old = legacy.message_type.add(name="Old")
    _add(old, "count", P.TYPE_INT32)
    _add(old, "node", P.TYPE_MESSAGE, type_name=".wide.Node")
    return [wide, legacy]


def _pool(files: list[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool (not the default one) holding the well-known types and ``files``."""
    pool = descriptor_pool.DescriptorPool()
    for module in WELL_KNOWN_FILES:
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    for file in files:
        pool.Add(file)
    return pool


@cache
def wide_pool() -> descriptor_pool.DescriptorPool:
    return _pool(_wide_files())


def descriptor(name: str) -> Descriptor:
    return wide_pool().FindMessageTypeByName(name)


@pytest.fixture
def node() -> WireMessage:
    return WireContract().message(descriptor("wide.Node"))


# -- values ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind", "int_range", "accepts"), [
    ("i32", Kind.INT32, INT32, "a 32-bit integer"),
    ("s32", Kind.INT32, INT32, "a 32-bit integer"),
    ("sf32", Kind.INT32, INT32, "a 32-bit integer"),
    ("u32", Kind.UINT32, UINT32, "an unsigned 32-bit integer"),
    ("f32", Kind.UINT32, UINT32, "an unsigned 32-bit integer"),
    ("i64", Kind.INT64, INT64, "a 64-bit integer (number or string)"),
    ("s64", Kind.INT64, INT64, "a 64-bit integer (number or string)"),
    ("sf64", Kind.INT64, INT64, "a 64-bit integer (number or string)"),
    ("u64", Kind.UINT64, UINT64, "an unsigned 64-bit integer (number or string)"),
    ("f64", Kind.UINT64, UINT64, "an unsigned 64-bit integer (number or string)"),
    ("fl", Kind.FLOAT, None, "a number"),
    ("db", Kind.DOUBLE, None, "a number"),
    ("b", Kind.BOOL, None, "true or false"),
    ("s", Kind.STRING, None, "a string"),
    ("by", Kind.BYTES, None, "a base64 string"),
    ("color", Kind.ENUM, None, "a Color name or number"),
    ("parent", Kind.MESSAGE, None, "a Node object"),
])
def test_each_protobuf_type_has_one_json_kind(node, name, kind, int_range, accepts):
    """Every scalar type maps to its JSON kind, integer range and the decoder's words for it."""
    value = node.by_key[name].value
    assert (value.kind, value.int_range, value.accepts) == (kind, int_range, accepts)


def test_enums_print_the_first_alias_and_accept_every_name(node):
    """An enum prints one name per number (the first declared) and takes every name."""
    color = node.by_key["color"].value.enum
    assert color.full_name == "wide.Color" and color.name == "Color"
    assert dict(color.printed) == {0: "COLOR_UNSET", 1: "RED", 2: "BLUE"}
    assert set(color.names) == {"COLOR_UNSET", "RED", "CRIMSON", "BLUE"}
    assert color.numbers["CRIMSON"] == color.numbers["RED"] == 1


def test_enums_are_read_once_per_type():
    """Two fields of one enum type share one reading."""
    contract = WireContract()
    frame = contract.message(job_pb2.Frame.DESCRIPTOR).by_key["state"].value.enum
    states = contract.message(job_pb2.FrameStateSeq.DESCRIPTOR).by_key["frameStates"]
    assert frame.name == "FrameState"
    assert states.value.enum is frame


# -- names, shapes, presence -------------------------------------------------------

def test_fields_keep_declaration_order_and_both_spellings(node):
    """Fields are in declaration order; the lookup takes lowerCamelCase and proto names."""
    assert [f.name for f in node.fields][:3] == ["i32", "s32", "sf32"]
    assert node.by_key["logDir"] is node.by_key["log_dir"]
    assert node.by_key["log_dir"].json_name == "logDir"
    assert node.by_key["from"].json_name == "from"  # a Python keyword, read like any name
    assert node.by_key["CUSTOM"] is node.by_key["custom_name"]  # an explicit json_name


@pytest.mark.parametrize(("name", "shape", "presence", "oneof"), [
    ("i32", Shape.SINGLE, Presence.ZERO, None),
    ("parent", Shape.SINGLE, Presence.NULL, None),
    ("children", Shape.LIST, Presence.ZERO, None),
    ("tags", Shape.LIST, Presence.ZERO, None),
    ("label", Shape.SINGLE, Presence.OMITTED, "pick"),
    ("count", Shape.SINGLE, Presence.OMITTED, "pick"),
    ("maybe", Shape.SINGLE, Presence.OMITTED, "_maybe"),
    ("by_id", Shape.MAP, Presence.ZERO, None),
])
def test_shape_presence_and_oneof(node, name, shape, presence, oneof):
    """Lists and maps print empty, messages null; oneof members (optional too) are left out."""
    field = node.by_key[name]
    assert (field.shape, field.presence, field.oneof) == (shape, presence, oneof)


def test_proto2_optional_scalars_print_null():
    """A proto2 scalar has presence, so an unset one prints null like a message."""
    old = WireContract().message(descriptor("wide.Old"))
    assert old.by_key["count"].presence is Presence.NULL
    assert old.by_key["node"].presence is Presence.NULL


def test_only_real_oneofs_are_exclusive(node):
    """A oneof with two members is exclusive; proto3 optional's synthetic oneof is not."""
    assert [[f.name for f in group] for group in node.exclusive] == [["label", "count"]]


def test_maps_have_key_and_value_types(node):
    """A map's key and value are read like fields; a message value is the message's reading."""
    by_id, flags = node.by_key["byId"], node.by_key["flags"]
    assert (by_id.key.kind, by_id.key.int_range) == (Kind.INT64, INT64)
    assert by_id.value.message is node
    assert (flags.key.kind, flags.value.kind) == (Kind.BOOL, Kind.STRING)
    assert node.by_key["tags"].key is None


# -- message types -----------------------------------------------------------------

def test_recursive_types_refer_to_themselves(node):
    """A type holding itself is one reading, complete when returned."""
    assert node.by_key["parent"].value.message is node
    assert node.by_key["children"].value.message is node
    assert len(node.fields) == len(descriptor("wide.Node").fields)


def test_a_type_is_read_once_per_contract():
    """Asking twice gives the same reading; what a type reaches is read with it."""
    contract = WireContract()
    job = contract.message(job_pb2.JobGetJobsResponse.DESCRIPTOR)
    assert contract.message(job_pb2.JobGetJobsResponse.DESCRIPTOR) is job
    seq = job.by_key["jobs"].value.message
    assert contract.message(job_pb2.JobSeq.DESCRIPTOR) is seq
    assert seq.by_key["jobs"].value.message is contract.message(job_pb2.Job.DESCRIPTOR)


@pytest.mark.parametrize(("name", "form", "inner"), [
    ("timestamp", WellKnown.TIMESTAMP, None),
    ("duration", WellKnown.DURATION, None),
    ("fieldmask", WellKnown.FIELD_MASK, None),
    ("struct", WellKnown.STRUCT, None),
    ("value", WellKnown.VALUE, None),
    ("listvalue", WellKnown.LIST_VALUE, None),
    ("empty", WellKnown.EMPTY, None),
    ("any", WellKnown.ANY, None),
    ("int64value", WellKnown.WRAPPER, Kind.INT64),
    ("bytesvalue", WellKnown.WRAPPER, Kind.BYTES),
    ("floatvalue", WellKnown.WRAPPER, Kind.FLOAT),
])
def test_well_known_types_have_their_own_forms(name, form, inner):
    """google.protobuf types are marked with their JSON form; a wrapper is its `value` field."""
    known = WireContract().message(descriptor("wide.Known"))
    message = known.by_key[name].value.message
    assert message.well_known is form
    if inner is not None:
        assert message.by_key["value"].value.kind is inner


def test_plain_messages_are_not_well_known(node):
    """Only google.protobuf's own types get a well-known form."""
    assert node.well_known is None


def test_each_pool_gets_its_own_reading():
    """Two pools may define one type name differently; a contract per pool reads each as it is."""
    files = _wide_files()
    node = files[0].message_type[0]
    del node.field[:]
    del node.oneof_decl[:]
    _add(node, "only", P.TYPE_STRING)
    other = _pool(files).FindMessageTypeByName("wide.Node")
    mine = WireContract().message(descriptor("wide.Node"))
    theirs = WireContract().message(other)
    assert [f.name for f in theirs.fields] == ["only"]
    assert "only" not in mine.by_key and len(mine.fields) > 1
