"""JSON <-> protobuf exactly as grpc-gateway v2 does it (COMPATIBILITY.md sections 2-3).

Responses print like Go's ``protojson`` with ``EmitUnpopulated``: lowerCamelCase
names in declaration order, every scalar present, ``null`` for unset message
fields, unset oneof members omitted, 64-bit integers as strings, enums by name,
floats in Go's shortest form.  Requests parse like ``protojson`` with
``DiscardUnknown``: both name styles, enums by name or number, 64-bit integers
as strings or numbers; unknown fields and enum names are dropped and reported
(or rejected in strict mode); every type error names the field.

What each field looks like in JSON comes from :mod:`opencue_gateway.wire`,
which the OpenAPI schemas are built from too; this module only turns that
reading into code.  The encoder of a message type is one generated Python
function, and the decoder walks the contract's tables, so a request does no
descriptor lookups and no reflection.  Nothing here imports Twisted: this
module runs in the worker threads.
"""

from __future__ import annotations

import base64
import json
import keyword
import math
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from opencue_gateway.errors import GatewayError
from opencue_gateway.wire import (
    FLOAT32_MAX,
    FLOAT32_ROUNDS_TO_MAX,
    INT_RANGES,
    QUOTED_INTEGERS,
    Kind,
    Presence,
    Shape,
    WireContract,
    WireEnum,
    WireField,
    WireMessage,
    WireValue,
)

JsonValue = Any
Encoder = Callable[[Message], JsonValue]

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_JSON_INTEGER = re.compile(r"-?[0-9]+\Z")
# orjson reads integers past 64 bits as (rounded) floats; bodies that may hold
# one are parsed by the standard library, which keeps them exact.
_LONG_INTEGER = re.compile(rb"[0-9]{19}")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Cuebot's Java protobuf refuses messages nested deeper than 100 levels; so do we,
# before Python's own recursion limit turns a hostile body into a 500.
MAX_NESTING = 100
# orjson's words when a body nests arrays and objects past its limit (1,024 levels).
_TOO_DEEP = "depth limit exceeded"


# --------------------------------------------------------------------------
# Floats, printed the way Go's protojson prints them
# --------------------------------------------------------------------------

_F32 = struct.Struct("<f")
_float_cache: dict[tuple[float, int], JsonValue] = {}
_FLOAT_CACHE_LIMIT = 65536


def _to_float32(value: float) -> float:
    """Round a Python float to the nearest float32 (infinity past the largest), as C does."""
    try:
        return _F32.unpack(_F32.pack(value))[0]
    except OverflowError:
        if abs(value) < FLOAT32_ROUNDS_TO_MAX:
            return math.copysign(FLOAT32_MAX, value)
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


def json_bytes(value: JsonValue) -> bytes:
    """Serialize what an encoder returned as the JSON bytes the contract defines.

    The bytes of a list are its elements' bytes joined by commas inside
    brackets, so a list reply can be sent element by element.
    """
    body = orjson.dumps(value)
    if b"\x7f" in body:
        # protojson escapes DEL; orjson leaves it raw.  A raw 0x7f byte can
        # only occur inside a JSON string, so the replacement is safe.
        body = body.replace(b"\x7f", b"\\u007f")
    return body


# --------------------------------------------------------------------------
# Encoding: message -> JSON, one generated function per message type
# --------------------------------------------------------------------------

def _attr(name: str) -> str:
    """Source text reading a field from ``m``; keywords need getattr."""
    if keyword.iskeyword(name):
        return f"getattr(m, {name!r})"
    return f"m.{name}"


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
            "KEY_BOOL": lambda k: "true" if k else "false",
        }
        self._names: dict[str, str] = {}
        self._enum_tables: dict[str, str] = {}
        self._lock = threading.Lock()

    def compile(self, message: WireMessage) -> Encoder:
        """The encoder of a message type, compiling it and what it reaches on first use."""
        with self._lock:
            return self.namespace[self._function_name(message)]

    def _function_name(self, message: WireMessage) -> str:
        """Name of the function for ``message``; compiles it on first use."""
        existing = self._names.get(message.full_name)
        if existing is not None:
            return existing
        name = f"enc_{len(self._names)}"
        self._names[message.full_name] = name
        if message.well_known is not None:
            self.namespace[name] = _well_known_to_json
        else:
            exec(self._source(name, message), self.namespace)
        return name

    def _enum_table(self, enum: WireEnum) -> str:
        """Namespace name of an enum's number->name dict."""
        table = self._enum_tables.get(enum.full_name)
        if table is None:
            table = f"E_{len(self._enum_tables)}"
            self._enum_tables[enum.full_name] = table
            self.namespace[table] = enum.printed
        return table

    def _value(self, value: WireValue, expr: str) -> str:
        """Source converting one value held in ``expr`` to its JSON form."""
        kind = value.kind
        if kind is Kind.MESSAGE:
            return f"{self._function_name(value.message)}({expr})"
        if kind in QUOTED_INTEGERS:
            return f"str({expr})"
        if kind is Kind.FLOAT:
            return f"F32({expr})"
        if kind is Kind.DOUBLE:
            return f"F64({expr})"
        if kind is Kind.ENUM:
            return f"{self._enum_table(value.enum)}.get({expr}, {expr})"
        if kind is Kind.BYTES:
            return f"B64({expr})"
        return expr

    def _field_expr(self, field: WireField) -> str:
        """Source for a field's whole JSON value, presence rules aside."""
        attr = _attr(field.name)
        if field.shape is Shape.MAP:
            key_kind = field.key.kind
            if key_kind is Kind.BOOL:
                key = "KEY_BOOL(k)"
            elif key_kind is Kind.STRING:
                key = "k"
            else:
                key = "str(k)"
            value = self._value(field.value, "v")
            return f"{{{key}: {value} for k, v in sorted({attr}.items())}}"
        if field.shape is Shape.LIST:
            element = self._value(field.value, "v")
            if element == "v":
                return f"list({attr})"
            return f"[{element} for v in {attr}]"
        return self._value(field.value, attr)

    def _source(self, name: str, message: WireMessage) -> str:
        """Python source of the encoder function for one message type."""
        lines = [f"def {name}(m):", "    d = {}"]
        for field in message.fields:
            key = repr(field.json_name)
            expr = self._field_expr(field)
            if field.presence is Presence.OMITTED:
                lines.append(f"    if m.HasField({field.name!r}): d[{key}] = {expr}")
            elif field.presence is Presence.NULL:
                lines.append(f"    d[{key}] = {expr} if m.HasField({field.name!r}) else None")
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


class _InvalidValueError(Exception):
    """A value that does not fit its field; the caller adds the field path."""


_INT32_RANGE = INT_RANGES[Kind.INT32]
# The members the decoder tests for every value, bound once: reading a member
# off its Enum class costs a descriptor call each time.
_MAP, _LIST = Shape.MAP, Shape.LIST
_MESSAGE, _FLOAT, _DOUBLE, _BOOL, _ENUM, _BYTES, _STRING = (
    Kind.MESSAGE, Kind.FLOAT, Kind.DOUBLE, Kind.BOOL, Kind.ENUM, Kind.BYTES, Kind.STRING
)


def _parse_integer(value: JsonValue, int_range: tuple[int, int]) -> int:
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
    low, high = int_range
    if not low <= number <= high:
        raise _InvalidValueError("out of range")
    return number


def _parse_float(value: JsonValue, float32: bool) -> float:
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
    if float32:
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
    """Standard or URL-safe base64, padded or not, exactly as protojson (grpc-gateway) reads it.

    protojson picks the URL-safe alphabet when the text holds ``-`` or ``_``,
    and the unpadded form when its length is not a multiple of four; so a
    mixed alphabet, or padding on a text that needs none ("AP9h=="), is
    refused.  Raises ValueError (binascii.Error is one) for anything else.
    """
    url_safe = "-" in text or "_" in text
    if url_safe and ("+" in text or "/" in text):
        raise ValueError("base64 mixing the standard and URL-safe alphabets")
    if len(text) % 4:
        if "=" in text:
            raise ValueError("padding in base64 whose length needs none")
        text += "=" * (-len(text) % 4)
    if url_safe:
        text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text, validate=True)


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

    def __init__(self, strict: bool) -> None:
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

    def fill(
        self, message: Message, wire: WireMessage, obj: JsonValue, path: str, depth: int = 0
    ) -> None:
        """Set ``message``'s fields (``wire`` is its type's contract) from a JSON object."""
        if depth > MAX_NESTING:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request nests messages deeper than {MAX_NESTING} levels at {path!r}",
            )
        if wire.well_known is not None:
            self._fill_well_known(message, wire, obj, path)
            return
        if not isinstance(obj, dict):
            where = f"field {path!r}" if path else "the request body"
            raise _type_error(where, f"a {wire.name} object", obj)
        by_key = wire.by_key
        seen: dict[str, str] = {}
        oneofs: dict[str, str] = {}
        for key, value in obj.items():
            child = f"{path}.{key}" if path else key
            field = by_key.get(key)
            if field is None:
                self._drop(child, "unknown field")
                continue
            if field.name in seen:
                raise GatewayError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"field {child!r} is given twice (also as {seen[field.name]!r})",
                )
            seen[field.name] = key
            if value is None:
                continue
            oneof = field.oneof
            if oneof is not None:
                if oneof in oneofs:
                    raise GatewayError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"fields {oneofs[oneof]!r} and {child!r} belong to the same "
                        f"oneof {oneof!r}; set only one",
                    )
                oneofs[oneof] = child
            self._set(message, field, value, child, depth)

    def _fill_well_known(
        self, message: Message, wire: WireMessage, obj: JsonValue, path: str
    ) -> None:
        """Well-known types parse with protobuf's own JSON rules."""
        try:
            json_format.ParseDict(obj, message)
        except json_format.ParseError as exc:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid value for field {path!r}: {exc}",
            ) from None
        except (TypeError, ValueError):
            # json_format trusts the JSON type of some forms: a wrapper given an
            # object, a Timestamp given a number, ... fail inside Python itself.
            where = f"field {path!r}" if path else "the request body"
            raise _type_error(where, f"{wire.full_name} in its JSON form", obj) from None

    def _set(
        self, message: Message, field: WireField, value: JsonValue, path: str, depth: int
    ) -> None:
        """Set one field (singular, repeated or map) from its JSON value."""
        shape = field.shape
        element = field.value
        if shape is _MAP:
            self._set_map(getattr(message, field.name), field, value, path, depth)
        elif shape is _LIST:
            if not isinstance(value, list):
                raise _type_error(f"field {path!r}", f"an array of {element.accepts}", value)
            container = getattr(message, field.name)
            if element.kind is _MESSAGE:
                for index, item in enumerate(value):
                    self._fill_child(
                        container.add(), element.message, item, f"{path}[{index}]", depth
                    )
            else:
                items = []
                for index, item in enumerate(value):
                    converted = self._scalar(element, item, f"{path}[{index}]")
                    if converted is not _DROPPED:
                        items.append(converted)
                container.extend(items)
        elif element.kind is _MESSAGE:
            child = getattr(message, field.name)
            child.SetInParent()
            self.fill(child, element.message, value, path, depth + 1)
        else:
            converted = self._scalar(element, value, path)
            if converted is not _DROPPED:
                setattr(message, field.name, converted)

    def _fill_child(
        self, message: Message, wire: WireMessage, value: JsonValue, path: str, depth: int
    ) -> None:
        """Fill an element of a repeated or map message field; null is not an element."""
        if value is None:
            raise _type_error(f"field {path!r}", f"a {wire.name} object", value)
        self.fill(message, wire, value, path, depth + 1)

    def _set_map(
        self, container: Any, field: WireField, value: JsonValue, path: str, depth: int
    ) -> None:
        """Fill a map field from a JSON object whose keys are strings."""
        if not isinstance(value, dict):
            raise _type_error(f"field {path!r}", "an object (map)", value)
        key_type, value_type = field.key, field.value
        for raw_key, item in value.items():
            child = f"{path}[{raw_key!r}]"
            key = self._map_key(key_type, raw_key, child)
            if value_type.kind is _MESSAGE:
                self._fill_child(container[key], value_type.message, item, child, depth)
                continue
            if item is None:
                raise _type_error(f"field {child!r}", value_type.accepts, item)
            converted = self._scalar(value_type, item, child)
            if converted is not _DROPPED:
                container[key] = converted

    @staticmethod
    def _map_key(key_type: WireValue, raw: str, path: str) -> Any:
        """Convert a JSON object key to the map's key type."""
        if key_type.kind is _STRING:
            return raw
        if key_type.kind is _BOOL:
            if raw in ("true", "false"):
                return raw == "true"
        else:
            try:
                return _parse_integer(raw, key_type.int_range)
            except _InvalidValueError:
                pass
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid map key at {path!r}: expected {key_type.accepts}",
        )

    def _scalar(self, value_type: WireValue, value: JsonValue, path: str) -> Any:
        """Convert one JSON value to a non-message field's Python value."""
        kind = value_type.kind
        try:
            if value_type.int_range is not None:
                return _parse_integer(value, value_type.int_range)
            if kind is _FLOAT or kind is _DOUBLE:
                return _parse_float(value, kind is _FLOAT)
            if kind is _BOOL:
                if isinstance(value, bool):
                    return value
                raise _InvalidValueError
            if kind is _ENUM:
                return self._enum(value_type.enum, value, path)
            if kind is _BYTES:
                return _parse_bytes(value)
            if isinstance(value, str):
                if _is_utf8(value):
                    return value
                raise _InvalidValueError("not valid Unicode")
            raise _InvalidValueError
        except _InvalidValueError as exc:
            reason = f" ({exc})" if str(exc) else ""
            raise _type_error(f"field {path!r}", value_type.accepts, value, reason) from None

    def _enum(self, enum: WireEnum, value: JsonValue, path: str) -> Any:
        """Enums by name, or by number for forward compatibility with open enums."""
        if isinstance(value, str):
            number = enum.numbers.get(value)
            if number is not None:
                return number
            self._drop(path, f"unknown {enum.name} value {value!r} at")
            return _DROPPED
        return _parse_integer(value, _INT32_RANGE)


_DROPPED = object()


def _type_error(where: str, expected: str, value: JsonValue, reason: str = "") -> GatewayError:
    """The 400 for a value of the wrong type, naming the field and both types."""
    return GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"invalid value for {where}: expected {expected}, got {_json_kind(value)}{reason}",
    )


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
        self.contract = WireContract()
        self._compiler = _EncoderCompiler()
        self._encoders: dict[str, Encoder] = {}

    def prepare(self, message_types: list[type[Message]]) -> None:
        """Read the contract of these types and every type they contain; compile encoders."""
        for message_type in message_types:
            self.encoder_for(message_type.DESCRIPTOR)

    def encoder_for(self, descriptor: Descriptor) -> Encoder:
        """The compiled encoder of one message type: a message in, JSON values out.

        ``json_bytes(encoder(element))`` for each element of a list, joined by
        commas, gives exactly the bytes the whole list encodes to, so a large
        reply can be sent element by element.
        """
        encoder = self._encoders.get(descriptor.full_name)
        if encoder is None:
            encoder = self._compiler.compile(self.contract.message(descriptor))
            self._encoders[descriptor.full_name] = encoder
        return encoder

    def to_json(self, message: Message) -> JsonValue:
        """The message as Python JSON values, ready for a serializer."""
        return self.encoder_for(message.DESCRIPTOR)(message)

    def encode(self, message: Message) -> bytes:
        """The message as the JSON bytes the contract defines."""
        return json_bytes(self.to_json(message))

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
        decoder = _Decoder(self.strict)
        decoder.fill(message, self.contract.message(message.DESCRIPTOR), obj, "")
        return DecodedRequest(message, tuple(decoder.ignored))


def _reject_constant(name: str) -> None:
    """JSON has no NaN or Infinity literals; Python's json module would accept them."""
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(body: bytes) -> JsonValue:
    """Parse JSON strictly, with an error that says where it broke.

    orjson is fast, but it reads an integer wider than 64 bits as a rounded
    float, and it refuses lone surrogate escapes; such bodies go to the
    standard library, which keeps big integers exact (so the decoder can say
    which field is out of range) and leaves surrogates for the decoder to
    name.  Every body passes orjson first, whose depth limit applies to all.
    """
    fast_error: orjson.JSONDecodeError | None = None
    try:
        parsed = orjson.loads(body)
        if _LONG_INTEGER.search(body) is None:
            return parsed
    except orjson.JSONDecodeError as error:
        # orjson's depth limit is the gateway's for any body, whatever Python's own
        # recursion limit (3.13's json module parses far deeper than 3.11's).
        if error.msg == _TOO_DEEP:
            raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                               "the request body is not valid JSON: it is nested too deeply",
                               ) from None
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
