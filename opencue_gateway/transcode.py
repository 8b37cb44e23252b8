"""JSON <-> protobuf exactly as grpc-gateway v2 does it (COMPATIBILITY.md sections 2-3).

Responses print like Go's ``protojson`` with ``EmitUnpopulated``: lowerCamelCase
names in declaration order, every scalar present, ``null`` for unset message
fields, unset oneof members omitted, 64-bit integers as strings, enums by name,
floats in Go's shortest form.  Requests parse like ``protojson`` with
``DiscardUnknown``: both name styles, enums by name or number, 64-bit integers
as strings or numbers; unknown fields and enum names are dropped and reported
(or rejected in strict mode); every type error names the field.

Both directions are compiled once per message type from its descriptor, so a
request does no descriptor lookups and no reflection.  Nothing here imports
Twisted: this module runs in the worker threads.
"""

from __future__ import annotations

import base64
import json
import keyword
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from opencue_gateway.errors import GatewayError

JsonValue = Any
Encoder = Callable[[Message], JsonValue]

# Well-known types have their own JSON forms (RFC 3339 timestamps, "1.5s"
# durations, ...).  OpenCue's protos use none of them, but a studio's fork may;
# protobuf's own json_format prints them the way protojson does.
WELL_KNOWN_TYPES = frozenset({
    "google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.Timestamp",
    "google.protobuf.FieldMask", "google.protobuf.Struct", "google.protobuf.Value",
    "google.protobuf.ListValue", "google.protobuf.Empty",
    "google.protobuf.BoolValue", "google.protobuf.BytesValue", "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue", "google.protobuf.Int32Value", "google.protobuf.Int64Value",
    "google.protobuf.StringValue", "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
})

_C = FieldDescriptor
INT_RANGES = {
    _C.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    _C.CPPTYPE_UINT32: (0, 2**32 - 1),
    _C.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    _C.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_JSON_INTEGER = re.compile(r"-?[0-9]+\Z")
# orjson reads integers past 64 bits as (rounded) floats; bodies that may hold
# one are parsed by the standard library, which keeps them exact.
_LONG_INTEGER = re.compile(rb"[0-9]{19}")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Cuebot's Java protobuf refuses messages nested deeper than 100 levels; so do we,
# before Python's own recursion limit turns a hostile body into a 500.
MAX_NESTING = 100


# --------------------------------------------------------------------------
# Floats, printed the way Go's protojson prints them
# --------------------------------------------------------------------------

_F32 = struct.Struct("<f")
_float_cache: dict[tuple[float, int], JsonValue] = {}
_FLOAT_CACHE_LIMIT = 65536


_FLOAT32_MAX = 3.4028234663852886e38
# Doubles below FLT_MAX + half an ulp still round to FLT_MAX under IEEE rules.
FLOAT32_ROUNDS_TO_MAX = 2.0**128 - 2.0**103


def _to_float32(value: float) -> float:
    """Round a Python float to the nearest float32 (infinity past the largest), as C does."""
    try:
        return _F32.unpack(_F32.pack(value))[0]
    except OverflowError:
        if abs(value) < FLOAT32_ROUNDS_TO_MAX:
            return math.copysign(_FLOAT32_MAX, value)
        return math.copysign(math.inf, value)


def _shortest_float32(value: float) -> str:
    """The shortest decimal string that reads back as the same float32."""
    for precision in range(1, 10):
        text = f"{value:.{precision}g}"
        if _to_float32(float(text)) == value:
            return text
    return repr(value)


# protojson prints plain decimals from 1e-6 up to 1e21, compared at the
# field's own precision (a float32 1e-6 is slightly below the double 1e-6).
_PLAIN_RANGE = {32: (_to_float32(1e-6), _to_float32(1e21)), 64: (1e-6, 1e21)}


def _go_float_text(value: float, bits: int) -> str:
    """Format a finite float like Go's strconv with protojson's choice of 'f' or 'e'."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    shortest = repr(value) if bits == 64 else _shortest_float32(value)
    sign, digit_tuple, exponent = Decimal(shortest).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent += len(digit_tuple) - len(digits)
    prefix = "-" if sign else ""
    low, high = _PLAIN_RANGE[bits]
    if low <= abs(value) < high:
        if exponent >= 0:
            return prefix + digits + "0" * exponent
        point = len(digits) + exponent
        if point > 0:
            return prefix + digits[:point] + "." + digits[point:]
        return prefix + "0." + "0" * -point + digits
    scientific = len(digits) - 1 + exponent
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    # Go prints at least two exponent digits ("e-07"); protojson then drops the
    # zero of a negative single-digit exponent, giving "1e-7" but "1e+21".
    exp_sign = "-" if scientific < 0 else "+"
    exp_digits = str(abs(scientific))
    if exp_sign == "+" and len(exp_digits) < 2:
        exp_digits = "0" + exp_digits
    return f"{prefix}{mantissa}e{exp_sign}{exp_digits}"


def _float_json(value: float, bits: int) -> JsonValue:
    """A value orjson prints byte-for-byte as protojson prints this float or double.

    Integral values become ints and plain decimals stay floats (orjson prints
    both the way Go does); everything else is pre-rendered as a JSON fragment.
    """
    if value == 0:
        # Checked before the cache: 0.0 and -0.0 are equal keys, but Go prints "-0".
        return 0 if math.copysign(1.0, value) > 0 else orjson.Fragment(b"-0")
    if math.isnan(value):
        return "NaN"
    key = (value, bits)
    cached = _float_cache.get(key)
    if cached is not None:
        return cached
    if math.isinf(value):
        result: JsonValue = "Infinity" if value > 0 else "-Infinity"
    elif value.is_integer() and 0 < abs(value) < (2**24 if bits == 32 else 2**53):
        result = int(value)
    elif 1e-5 <= abs(value) < 1e15 and not value.is_integer():
        result = value if bits == 64 else float(_shortest_float32(value))
    else:
        result = orjson.Fragment(_go_float_text(value, bits).encode("ascii"))
    if len(_float_cache) >= _FLOAT_CACHE_LIMIT:
        _float_cache.clear()
    _float_cache[key] = result
    return result


def float32_json(value: float) -> JsonValue:
    """JSON form of a ``float`` field's value."""
    return _float_json(value, 32)


def float64_json(value: float) -> JsonValue:
    """JSON form of a ``double`` field's value."""
    return _float_json(value, 64)


def bytes_json(value: bytes) -> str:
    """JSON form of a ``bytes`` field: standard base64 with padding, as protojson prints it."""
    return base64.b64encode(value).decode("ascii")


# --------------------------------------------------------------------------
# Encoding: message -> JSON, compiled per message type
# --------------------------------------------------------------------------

def _attr(field: FieldDescriptor) -> str:
    """Source text reading a field from ``m``; keywords need getattr."""
    if keyword.iskeyword(field.name):
        return f"getattr(m, {field.name!r})"
    return f"m.{field.name}"


def enum_names_by_number(enum: EnumDescriptor) -> dict[int, str]:
    """The name printed for each number of an enum: of aliases, the first, as Go prints."""
    names: dict[int, str] = {}
    for value in enum.values:
        names.setdefault(value.number, value.name)
    return names


def is_map_field(field: FieldDescriptor) -> bool:
    """True for ``map<K, V>`` fields, which protobuf models as repeated entries."""
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


class _EncoderCompiler:
    """Generates one Python function per message type and keeps them in one namespace.

    Functions refer to each other by global name, so recursive message types
    (a group holding groups) need no special care.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "F32": float32_json,
            "F64": float64_json,
            "B64": bytes_json,
            "WKT": _well_known_to_json,
            "KEY_BOOL": lambda k: "true" if k else "false",
        }
        self._names: dict[str, str] = {}

    def encoder_for(self, descriptor: Descriptor) -> Encoder:
        """The compiled encoder of a message type, compiling what it reaches."""
        name = self._function_name(descriptor)
        return self.namespace[name]

    def _function_name(self, descriptor: Descriptor) -> str:
        """Name of the function for ``descriptor``; compiles it on first use."""
        existing = self._names.get(descriptor.full_name)
        if existing is not None:
            return existing
        name = f"enc_{len(self._names)}"
        self._names[descriptor.full_name] = name
        if descriptor.full_name in WELL_KNOWN_TYPES:
            self.namespace[name] = _well_known_to_json
        else:
            exec(self._source(name, descriptor), self.namespace)
        return name

    def _enum_table(self, field: FieldDescriptor) -> str:
        """Namespace name of a number->name dict for an enum type."""
        table = "E_" + field.enum_type.full_name.replace(".", "_")
        if table not in self.namespace:
            self.namespace[table] = enum_names_by_number(field.enum_type)
        return table

    def _scalar(self, field: FieldDescriptor, expr: str) -> str:
        """Source converting one value of a non-message field to its JSON form."""
        cpp = field.cpp_type
        if cpp in (_C.CPPTYPE_INT64, _C.CPPTYPE_UINT64):
            return f"str({expr})"
        if cpp == _C.CPPTYPE_FLOAT:
            return f"F32({expr})"
        if cpp == _C.CPPTYPE_DOUBLE:
            return f"F64({expr})"
        if cpp == _C.CPPTYPE_ENUM:
            table = self._enum_table(field)
            return f"{table}.get({expr}, {expr})"
        if field.type == _C.TYPE_BYTES:
            return f"B64({expr})"
        return expr

    def _value(self, field: FieldDescriptor, expr: str) -> str:
        """Source converting one value (scalar or message) of a field."""
        if field.cpp_type == _C.CPPTYPE_MESSAGE:
            return f"{self._function_name(field.message_type)}({expr})"
        return self._scalar(field, expr)

    def _field_expr(self, field: FieldDescriptor) -> str:
        """Source for a field's whole JSON value, presence rules aside."""
        attr = _attr(field)
        if is_map_field(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            if key_field.cpp_type == _C.CPPTYPE_BOOL:
                key = "KEY_BOOL(k)"
            elif key_field.cpp_type == _C.CPPTYPE_STRING:
                key = "k"
            else:
                key = "str(k)"
            value = self._value(value_field, "v")
            return f"{{{key}: {value} for k, v in sorted({attr}.items())}}"
        if field.is_repeated:
            element = self._value(field, "v")
            if element == "v":
                return f"list({attr})"
            return f"[{element} for v in {attr}]"
        return self._value(field, attr)

    def _source(self, name: str, descriptor: Descriptor) -> str:
        """Python source of the encoder function for one message type."""
        lines = [f"def {name}(m):", "    d = {}"]
        for field in descriptor.fields:
            key = repr(field.json_name)
            expr = self._field_expr(field)
            if field.is_repeated:
                lines.append(f"    d[{key}] = {expr}")
            elif field.containing_oneof is not None:
                # Go skips unset oneof members, including proto3 `optional`.
                lines.append(f"    if m.HasField({field.name!r}): d[{key}] = {expr}")
            elif field.cpp_type == _C.CPPTYPE_MESSAGE or field.has_presence:
                lines.append(
                    f"    d[{key}] = {expr} if m.HasField({field.name!r}) else None"
                )
            else:
                lines.append(f"    d[{key}] = {expr}")
        lines.append("    return d")
        return "\n".join(lines) + "\n"


def _well_known_to_json(message: Message) -> JsonValue:
    """Well-known types keep their special JSON forms."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


# --------------------------------------------------------------------------
# Decoding: JSON -> message, with field-naming errors and dropped-field reports
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _FieldSpec:
    """What the decoder needs to know about one field, looked up by JSON key."""

    field: FieldDescriptor
    map_key: FieldDescriptor | None
    map_value: FieldDescriptor | None


def _json_kind(value: JsonValue) -> str:
    """Describe a JSON value's type in words for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


_EXPECTED = {
    _C.CPPTYPE_INT32: "a 32-bit integer",
    _C.CPPTYPE_UINT32: "an unsigned 32-bit integer",
    _C.CPPTYPE_INT64: "a 64-bit integer (number or string)",
    _C.CPPTYPE_UINT64: "an unsigned 64-bit integer (number or string)",
    _C.CPPTYPE_FLOAT: "a number",
    _C.CPPTYPE_DOUBLE: "a number",
    _C.CPPTYPE_BOOL: "true or false",
    _C.CPPTYPE_STRING: "a string",
    _C.CPPTYPE_ENUM: "an enum name or number",
    _C.CPPTYPE_MESSAGE: "an object",
}


def _expected(field: FieldDescriptor) -> str:
    """Words for what a field accepts."""
    if field.type == _C.TYPE_BYTES:
        return "a base64 string"
    if field.cpp_type == _C.CPPTYPE_ENUM:
        return f"a {field.enum_type.name} name or number"
    if field.cpp_type == _C.CPPTYPE_MESSAGE:
        return f"a {field.message_type.name} object"
    return _EXPECTED[field.cpp_type]


class _InvalidValueError(Exception):
    """A value that does not fit its field; the caller adds the field path."""


def _parse_integer(value: JsonValue, cpp_type: int) -> int:
    """Accept what protojson accepts for integers: integral numbers, as numbers or strings."""
    if isinstance(value, bool):
        raise _InvalidValueError
    if isinstance(value, str):
        if not _JSON_NUMBER.match(value):
            raise _InvalidValueError
        number: int | float = int(value) if _JSON_INTEGER.match(value) else float(value)
    elif isinstance(value, (int, float)):
        number = value
    else:
        raise _InvalidValueError
    if isinstance(number, float):
        if not number.is_integer():
            raise _InvalidValueError
        number = int(number)
    low, high = INT_RANGES[cpp_type]
    if not low <= number <= high:
        raise _InvalidValueError("out of range")
    return number


def _parse_float(value: JsonValue, cpp_type: int) -> float:
    """Accept numbers, numeric strings and "NaN"/"Infinity"/"-Infinity"."""
    if isinstance(value, bool):
        raise _InvalidValueError
    if isinstance(value, str):
        if value in _FLOAT_WORDS:
            return _FLOAT_WORDS[value]
        if not _JSON_NUMBER.match(value):
            raise _InvalidValueError
        value = float(value)
    if not isinstance(value, (int, float)):
        raise _InvalidValueError
    number = float(value)
    if cpp_type == _C.CPPTYPE_FLOAT:
        number = _to_float32(number)
    if math.isinf(number):
        raise _InvalidValueError("out of range")
    return number


def _is_utf8(value: str) -> bool:
    """False for strings holding lone surrogates ("\\ud800"), which protobuf cannot store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not, as protojson (and grpc-gateway) accept it.

    Raises ValueError (binascii.Error is one) for anything else.
    """
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _parse_bytes(value: JsonValue) -> bytes:
    """A bytes field's JSON value: a base64 string."""
    if not isinstance(value, str):
        raise _InvalidValueError
    try:
        return decode_base64(value)
    except ValueError:
        raise _InvalidValueError from None


class _Decoder:
    """Fills one request message from parsed JSON, remembering what it dropped."""

    def __init__(self, specs: _SpecTable, strict: bool) -> None:
        self._specs = specs
        self._strict = strict
        self.ignored: list[str] = []

    def _drop(self, path: str, what: str) -> None:
        """Ignore an unknown field or enum name, or reject it in strict mode."""
        if self._strict:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{what} {path!r} in the request body (strict JSON mode rejects it)",
            )
        self.ignored.append(path)

    def fill(self, message: Message, obj: JsonValue, path: str, depth: int = 0) -> None:
        """Set ``message``'s fields from a JSON object."""
        if depth > MAX_NESTING:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request nests messages deeper than {MAX_NESTING} levels at {path!r}",
            )
        descriptor = message.DESCRIPTOR
        if descriptor.full_name in WELL_KNOWN_TYPES:
            self._fill_well_known(message, obj, path)
            return
        if not isinstance(obj, dict):
            where = f"field {path!r}" if path else "the request body"
            raise _type_error(where, f"a {descriptor.name} object", obj)
        specs = self._specs.for_message(descriptor)
        seen: dict[str, str] = {}
        oneofs: dict[str, str] = {}
        for key, value in obj.items():
            child = f"{path}.{key}" if path else key
            spec = specs.get(key)
            if spec is None:
                self._drop(child, "unknown field")
                continue
            field = spec.field
            if field.name in seen:
                raise GatewayError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"field {child!r} is given twice (also as {seen[field.name]!r})",
                )
            seen[field.name] = key
            if value is None:
                continue
            oneof = field.containing_oneof
            if oneof is not None:
                if oneof.name in oneofs:
                    raise GatewayError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"fields {oneofs[oneof.name]!r} and {child!r} belong to the same "
                        f"oneof {oneof.name!r}; set only one",
                    )
                oneofs[oneof.name] = child
            self._set(message, spec, value, child, depth)

    def _fill_well_known(self, message: Message, obj: JsonValue, path: str) -> None:
        """Well-known types parse with protobuf's own JSON rules."""
        try:
            json_format.ParseDict(obj, message)
        except json_format.ParseError as exc:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid value for field {path!r}: {exc}",
            ) from None

    def _set(
        self, message: Message, spec: _FieldSpec, value: JsonValue, path: str, depth: int
    ) -> None:
        """Set one field (singular, repeated or map) from its JSON value."""
        field = spec.field
        if spec.map_key is not None:
            self._set_map(getattr(message, field.name), spec, value, path, depth)
        elif field.is_repeated:
            if not isinstance(value, list):
                raise _type_error(f"field {path!r}", f"an array of {_expected(field)}", value)
            container = getattr(message, field.name)
            if field.cpp_type == _C.CPPTYPE_MESSAGE:
                for index, item in enumerate(value):
                    self._fill_child(container.add(), item, f"{path}[{index}]", depth)
            else:
                items = []
                for index, item in enumerate(value):
                    converted = self._scalar(field, item, f"{path}[{index}]")
                    if converted is not _DROPPED:
                        items.append(converted)
                container.extend(items)
        elif field.cpp_type == _C.CPPTYPE_MESSAGE:
            child = getattr(message, field.name)
            child.SetInParent()
            self.fill(child, value, path, depth + 1)
        else:
            converted = self._scalar(field, value, path)
            if converted is not _DROPPED:
                setattr(message, field.name, converted)

    def _fill_child(self, message: Message, value: JsonValue, path: str, depth: int) -> None:
        """Fill an element of a repeated or map message field; null is not an element."""
        if value is None:
            raise _type_error(f"field {path!r}", f"a {message.DESCRIPTOR.name} object", value)
        self.fill(message, value, path, depth + 1)

    def _set_map(
        self, container: Any, spec: _FieldSpec, value: JsonValue, path: str, depth: int
    ) -> None:
        """Fill a map field from a JSON object whose keys are strings."""
        if not isinstance(value, dict):
            raise _type_error(f"field {path!r}", "an object (map)", value)
        key_field, value_field = spec.map_key, spec.map_value
        for raw_key, item in value.items():
            child = f"{path}[{raw_key!r}]"
            key = self._map_key(key_field, raw_key, child)
            if value_field.cpp_type == _C.CPPTYPE_MESSAGE:
                self._fill_child(container[key], item, child, depth)
                continue
            if item is None:
                raise _type_error(f"field {child!r}", _expected(value_field), item)
            converted = self._scalar(value_field, item, child)
            if converted is not _DROPPED:
                container[key] = converted

    @staticmethod
    def _map_key(field: FieldDescriptor, raw: str, path: str) -> Any:
        """Convert a JSON object key to the map's key type."""
        if field.cpp_type == _C.CPPTYPE_STRING:
            return raw
        if field.cpp_type == _C.CPPTYPE_BOOL:
            if raw in ("true", "false"):
                return raw == "true"
        else:
            try:
                return _parse_integer(raw, field.cpp_type)
            except _InvalidValueError:
                pass
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid map key at {path!r}: expected {_expected(field)}",
        )

    def _scalar(self, field: FieldDescriptor, value: JsonValue, path: str) -> Any:
        """Convert one JSON value to a non-message field's Python value."""
        cpp = field.cpp_type
        try:
            if cpp in INT_RANGES:
                return _parse_integer(value, cpp)
            if cpp in (_C.CPPTYPE_FLOAT, _C.CPPTYPE_DOUBLE):
                return _parse_float(value, cpp)
            if cpp == _C.CPPTYPE_BOOL:
                if isinstance(value, bool):
                    return value
                raise _InvalidValueError
            if cpp == _C.CPPTYPE_ENUM:
                return self._enum(field, value, path)
            if field.type == _C.TYPE_BYTES:
                return _parse_bytes(value)
            if isinstance(value, str):
                if _is_utf8(value):
                    return value
                raise _InvalidValueError("not valid Unicode")
            raise _InvalidValueError
        except _InvalidValueError as exc:
            reason = f" ({exc})" if str(exc) else ""
            raise _type_error(f"field {path!r}", _expected(field), value, reason) from None

    def _enum(self, field: FieldDescriptor, value: JsonValue, path: str) -> Any:
        """Enums by name, or by number for forward compatibility with open enums."""
        if isinstance(value, str):
            known = field.enum_type.values_by_name.get(value)
            if known is not None:
                return known.number
            self._drop(path, f"unknown {field.enum_type.name} value {value!r} at")
            return _DROPPED
        return _parse_integer(value, _C.CPPTYPE_INT32)


_DROPPED = object()


def _type_error(where: str, expected: str, value: JsonValue, reason: str = "") -> GatewayError:
    """The 400 for a value of the wrong type, naming the field and both types."""
    return GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"invalid value for {where}: expected {expected}, got {_json_kind(value)}{reason}",
    )


class _SpecTable:
    """JSON key -> field lookups per message type, built on first use and then shared."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, _FieldSpec]] = {}

    def for_message(self, descriptor: Descriptor) -> dict[str, _FieldSpec]:
        """The lookup table of one message type; both name styles map to the field."""
        table = self._tables.get(descriptor.full_name)
        if table is None:
            table = {}
            for field in descriptor.fields:
                spec = _FieldSpec(field, None, None)
                if is_map_field(field):
                    entry = field.message_type.fields_by_name
                    spec = _FieldSpec(field, entry["key"], entry["value"])
                table[field.name] = spec
                table[field.json_name] = spec
            self._tables[descriptor.full_name] = table
        return table


# --------------------------------------------------------------------------
# The public face
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """A request message and the dotted paths of what the decoder dropped."""

    message: Message
    ignored_fields: tuple[str, ...]


class Transcoder:
    """JSON codecs for message types; compile everything up front with :meth:`prepare`.

    Compilation happens at start-up (or on first use); afterwards the codecs
    are read-only and safe to use from any number of worker threads.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._compiler = _EncoderCompiler()
        self._specs = _SpecTable()

    def prepare(self, message_types: list[type[Message]]) -> None:
        """Compile codecs for these types and every type they contain."""
        for message_type in message_types:
            self._compiler.encoder_for(message_type.DESCRIPTOR)
            _walk_specs(self._specs, message_type.DESCRIPTOR, set())

    def to_json(self, message: Message) -> JsonValue:
        """The message as Python JSON values, ready for a serializer."""
        return self._compiler.encoder_for(message.DESCRIPTOR)(message)

    def encode(self, message: Message) -> bytes:
        """The message as the JSON bytes the contract defines."""
        body = orjson.dumps(self.to_json(message))
        if b"\x7f" in body:
            # protojson escapes DEL; orjson leaves it raw.  A raw 0x7f byte can
            # only occur inside a JSON string, so the replacement is safe.
            body = body.replace(b"\x7f", b"\\u007f")
        return body

    def decode(self, message_type: type[Message], body: bytes) -> DecodedRequest:
        """Parse a request body into ``message_type``.

        An empty (or all-whitespace) body is the empty message, as in
        grpc-gateway.  Anything that is not one JSON object is a 400.
        """
        message = message_type()
        if not body.strip():
            return DecodedRequest(message, ())
        obj = _parse_json(body)
        if not isinstance(obj, dict):
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request body must be a JSON object, got {_json_kind(obj)}",
            )
        decoder = _Decoder(self._specs, self.strict)
        decoder.fill(message, obj, "")
        return DecodedRequest(message, tuple(decoder.ignored))


def _walk_specs(specs: _SpecTable, descriptor: Descriptor, seen: set[str]) -> None:
    """Build decoder tables for a type and everything it contains, once each."""
    if descriptor.full_name in seen:
        return
    seen.add(descriptor.full_name)
    specs.for_message(descriptor)
    for field in descriptor.fields:
        if field.message_type is not None:
            _walk_specs(specs, field.message_type, seen)


def _reject_constant(name: str) -> None:
    """JSON has no NaN or Infinity literals; Python's json module would accept them."""
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(body: bytes) -> JsonValue:
    """Parse JSON strictly, with an error that says where it broke.

    orjson is fast, but it reads an integer wider than 64 bits as a rounded
    float, and it refuses lone surrogate escapes; such bodies go to the
    standard library, which keeps big integers exact (so the decoder can say
    which field is out of range) and leaves surrogates for the decoder to
    name.
    """
    fast_error: orjson.JSONDecodeError | None = None
    if _LONG_INTEGER.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            fast_error = error
    try:
        # JSON on the wire is UTF-8 (RFC 8259); given bytes, json.loads would also
        # guess UTF-16 and UTF-32, which neither Cuebot's clients nor protojson send.
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        where = f"it is not UTF-8 text (invalid byte at offset {error.start})"
    except json.JSONDecodeError as error:
        shown: orjson.JSONDecodeError | json.JSONDecodeError = fast_error or error
        where = f"{shown.msg} at line {shown.lineno} column {shown.colno}"
    except RecursionError:
        where = "it is nested too deeply"
    except ValueError as error:
        where = str(error)
    raise GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT, f"the request body is not valid JSON: {where}"
    )
