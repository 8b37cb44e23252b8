"""The wire contract, read once per message type: what each field looks like in JSON.

COMPATIBILITY.md sections 2-3 give every protobuf type one JSON form, and three
parts of the gateway follow it: the encoder and the decoder
(:mod:`opencue_gateway.transcode`) and the OpenAPI schemas
(:mod:`opencue_gateway.openapi`).  This module is the only one that reads a
message descriptor's fields to decide that form, so the three cannot drift
apart: for each field its two JSON names, its shape (single, list or map), how
it prints when unset, its oneof, and the JSON type of its values (integer range
and whether it prints as a string, float width, base64 bytes, enum names and
numbers, nested message, well-known type).

Message types are known by full name, which is unique within one descriptor
pool; a contract serves the types of one catalog, whether they come from the
generated ``*_pb2`` modules or from a pool a studio filled from its own
FileDescriptorSet.  Reading is done once per type and then shared read-only by
the worker threads; nothing here imports Twisted.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

_C = FieldDescriptor


class Kind(enum.StrEnum):
    """The JSON type of one protobuf value; the integer and float names are OpenAPI formats."""

    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT = "float"
    DOUBLE = "double"
    BOOL = "bool"
    STRING = "string"
    BYTES = "bytes"
    ENUM = "enum"
    MESSAGE = "message"


INT_RANGES: dict[Kind, tuple[int, int]] = {
    Kind.INT32: (-(2**31), 2**31 - 1),
    Kind.UINT32: (0, 2**32 - 1),
    Kind.INT64: (-(2**63), 2**63 - 1),
    Kind.UINT64: (0, 2**64 - 1),
}
# 64-bit integers print as JSON strings: a JavaScript number cannot hold them.
QUOTED_INTEGERS = frozenset({Kind.INT64, Kind.UINT64})
FLOAT32_MAX = 3.4028234663852886e38
# Doubles below FLT_MAX + half an ulp still round to FLT_MAX under IEEE rules.
FLOAT32_ROUNDS_TO_MAX = 2.0**128 - 2.0**103
FLOAT64_MAX = 1.7976931348623157e308

_KIND_OF_CPP_TYPE = {
    _C.CPPTYPE_INT32: Kind.INT32, _C.CPPTYPE_UINT32: Kind.UINT32,
    _C.CPPTYPE_INT64: Kind.INT64, _C.CPPTYPE_UINT64: Kind.UINT64,
    _C.CPPTYPE_FLOAT: Kind.FLOAT, _C.CPPTYPE_DOUBLE: Kind.DOUBLE,
    _C.CPPTYPE_BOOL: Kind.BOOL, _C.CPPTYPE_STRING: Kind.STRING,
    _C.CPPTYPE_ENUM: Kind.ENUM, _C.CPPTYPE_MESSAGE: Kind.MESSAGE,
}
# What the decoder accepts, in the words its 400s use.
_ACCEPTS = {
    Kind.INT32: "a 32-bit integer",
    Kind.UINT32: "an unsigned 32-bit integer",
    Kind.INT64: "a 64-bit integer (number or string)",
    Kind.UINT64: "an unsigned 64-bit integer (number or string)",
    Kind.FLOAT: "a number",
    Kind.DOUBLE: "a number",
    Kind.BOOL: "true or false",
    Kind.STRING: "a string",
    Kind.BYTES: "a base64 string",
}


class Shape(enum.Enum):
    """How many values a field holds: one, a JSON array of them, or a JSON object of them."""

    SINGLE = "single"
    LIST = "list"
    MAP = "map"


class Presence(enum.Enum):
    """What an unset field prints as (COMPATIBILITY.md section 3, Go's EmitUnpopulated)."""

    ZERO = "zero"  # scalars without presence, lists and maps: their zero value
    NULL = "null"  # singular messages and proto2 optional scalars: null
    OMITTED = "omitted"  # oneof members, proto3 `optional` too: left out


class WellKnown(enum.Enum):
    """The JSON forms protobuf's JSON mapping gives google.protobuf's well-known types."""

    TIMESTAMP = "timestamp"  # an RFC 3339 string
    DURATION = "duration"  # "1.5s"
    FIELD_MASK = "field-mask"  # "a.b,c"
    STRUCT = "struct"  # any JSON object
    LIST_VALUE = "list-value"  # any JSON array
    VALUE = "value"  # any JSON value
    EMPTY = "empty"  # {}
    ANY = "any"  # an object with "@type"
    WRAPPER = "wrapper"  # the bare JSON form of its one field, `value`


_WRAPPERS = ("Bool", "Bytes", "Double", "Float", "Int32", "Int64", "String", "UInt32", "UInt64")
WELL_KNOWN_TYPES: dict[str, WellKnown] = {
    "google.protobuf.Timestamp": WellKnown.TIMESTAMP,
    "google.protobuf.Duration": WellKnown.DURATION,
    "google.protobuf.FieldMask": WellKnown.FIELD_MASK,
    "google.protobuf.Struct": WellKnown.STRUCT,
    "google.protobuf.ListValue": WellKnown.LIST_VALUE,
    "google.protobuf.Value": WellKnown.VALUE,
    "google.protobuf.Empty": WellKnown.EMPTY,
    "google.protobuf.Any": WellKnown.ANY,
    **{f"google.protobuf.{name}Value": WellKnown.WRAPPER for name in _WRAPPERS},
}


@dataclass(frozen=True, slots=True, eq=False)
class WireEnum:
    """An enum's names and numbers, both ways."""

    full_name: str
    name: str
    names: tuple[str, ...]
    """Every name the decoder takes, aliases included, in the descriptor's name order."""
    numbers: Mapping[str, int]
    """Name -> number, for every name in ``names``."""
    printed: Mapping[int, str]
    """Number -> the one name printed for it: of aliases the first declared, as Go prints."""


@dataclass(frozen=True, slots=True, eq=False)
class WireValue:
    """The JSON type of a field's values (a list's elements, a map's keys or values)."""

    kind: Kind
    accepts: str
    """What the decoder takes here, in words: "a 32-bit integer", "a Job object", ..."""
    int_range: tuple[int, int] | None = None
    enum: WireEnum | None = None
    message: WireMessage | None = None


@dataclass(frozen=True, slots=True, eq=False)
class WireField:
    """One field of a message as JSON sees it."""

    name: str
    """The proto name: the Python attribute, and the decoder's second spelling."""
    json_name: str
    """The lowerCamelCase name the encoder prints."""
    shape: Shape
    presence: Presence
    oneof: str | None
    """The oneof the field belongs to (proto3 `optional` has a synthetic one), if any."""
    value: WireValue
    key: WireValue | None = None
    """A map's key type; None unless the shape is MAP."""


@dataclass(slots=True, eq=False)
class WireMessage:
    """A message type as JSON sees it; complete once :meth:`WireContract.message` returns it.

    ``fields`` is filled after the message is registered, so that a recursive
    type (a group holding groups) can refer to itself.
    """

    full_name: str
    name: str
    well_known: WellKnown | None
    """Set for google.protobuf's well-known types, whose JSON form is their own."""
    fields: tuple[WireField, ...] = ()
    """In declaration order, which is the order the encoder prints."""
    by_key: Mapping[str, WireField] = dataclasses.field(default_factory=dict)
    """Both spellings (lowerCamelCase and proto name) -> field, as the decoder looks them up."""
    exclusive: tuple[tuple[WireField, ...], ...] = ()
    """The oneofs with two or more members: at most one member of each may be set."""


class WireContract:
    """The wire form of every message type reached so far: each read once, then shared.

    Reading a type reads every type it reaches.  A finished type is never
    changed again, so readers in other threads need no lock; a type is only
    published once it and everything it reaches are complete.
    """

    def __init__(self) -> None:
        self._messages: dict[str, WireMessage] = {}
        self._enums: dict[str, WireEnum] = {}
        self._lock = threading.Lock()

    def message(self, descriptor: Descriptor) -> WireMessage:
        """The wire form of a message type, read on first use."""
        found = self._messages.get(descriptor.full_name)
        if found is not None:
            return found
        with self._lock:
            pending: dict[str, WireMessage] = {}
            found = self._read_message(descriptor, pending)
            self._messages.update(pending)
        return found

    def _read_message(self, descriptor: Descriptor, pending: dict[str, WireMessage]) -> WireMessage:
        """Read one message type (and what it reaches) into ``pending``."""
        name = descriptor.full_name
        found = self._messages.get(name) or pending.get(name)
        if found is not None:
            return found
        wire = WireMessage(name, descriptor.name, WELL_KNOWN_TYPES.get(name))
        pending[name] = wire
        fields = tuple(self._read_field(field, pending) for field in descriptor.fields)
        by_name = {field.name: field for field in fields}
        by_key: dict[str, WireField] = {}
        for field in fields:
            by_key[field.name] = field
            by_key[field.json_name] = field
        wire.fields = fields
        wire.by_key = by_key
        wire.exclusive = tuple(
            tuple(by_name[member.name] for member in oneof.fields)
            for oneof in descriptor.oneofs if len(oneof.fields) > 1
        )
        return wire

    def _read_field(self, field: FieldDescriptor, pending: dict[str, WireMessage]) -> WireField:
        """Read one field: names, shape, presence, oneof and value type."""
        oneof = field.containing_oneof
        if _is_map(field):
            entry = field.message_type.fields_by_name
            return WireField(
                field.name, field.json_name, Shape.MAP, Presence.ZERO, None,
                self._read_value(entry["value"], pending), self._read_value(entry["key"], pending),
            )
        value = self._read_value(field, pending)
        if field.is_repeated:
            shape, presence = Shape.LIST, Presence.ZERO
        elif oneof is not None:
            shape, presence = Shape.SINGLE, Presence.OMITTED
        elif value.kind is Kind.MESSAGE or field.has_presence:
            shape, presence = Shape.SINGLE, Presence.NULL
        else:
            shape, presence = Shape.SINGLE, Presence.ZERO
        return WireField(
            field.name, field.json_name, shape, presence,
            None if oneof is None else oneof.name, value,
        )

    def _read_value(self, field: FieldDescriptor, pending: dict[str, WireMessage]) -> WireValue:
        """The JSON type of one field's values."""
        if field.type == _C.TYPE_BYTES:
            return WireValue(Kind.BYTES, _ACCEPTS[Kind.BYTES])
        kind = _KIND_OF_CPP_TYPE[field.cpp_type]
        if kind is Kind.ENUM:
            enum_type = self._read_enum(field.enum_type)
            return WireValue(kind, f"a {enum_type.name} name or number", enum=enum_type)
        if kind is Kind.MESSAGE:
            message = self._read_message(field.message_type, pending)
            return WireValue(kind, f"a {message.name} object", message=message)
        return WireValue(kind, _ACCEPTS[kind], INT_RANGES.get(kind))

    def _read_enum(self, descriptor: EnumDescriptor) -> WireEnum:
        """An enum's names and numbers, read once per enum type."""
        found = self._enums.get(descriptor.full_name)
        if found is None:
            printed: dict[int, str] = {}
            for value in descriptor.values:
                printed.setdefault(value.number, value.name)
            by_name = descriptor.values_by_name
            found = WireEnum(
                descriptor.full_name, descriptor.name, tuple(by_name),
                {name: by_name[name].number for name in by_name}, printed,
            )
            self._enums[descriptor.full_name] = found
        return found


def _is_map(field: FieldDescriptor) -> bool:
    """True for ``map<K, V>`` fields, which protobuf models as repeated entry messages."""
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )
