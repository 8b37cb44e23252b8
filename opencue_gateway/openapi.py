"""The gateway's OpenAPI 3.1 document, generated from the catalog's protobuf descriptors.

Nothing here is typed by hand: every path, operation and schema comes from the
:class:`~opencue_gateway.catalog.MethodCatalog`, so a studio's own Cuebot fork
gets a document for its extra RPCs too.  The schemas describe the wire contract
of COMPATIBILITY.md as :mod:`opencue_gateway.wire` reads it from the
descriptors, the same reading the encoder and decoder are compiled from, and
the two sides differ, so each message has two schemas:

* ``show.Show`` is what the gateway *prints* (section 3): lowerCamelCase names,
  every field present except oneof members, ``null`` for unset messages,
  64-bit integers as strings, enums by name (unknown numbers as numbers),
  ``"NaN"``/``"Infinity"``/``"-Infinity"`` for non-finite floats, and nothing
  else (``additionalProperties: false``, which is exact because the encoder and
  this module follow the same reading).
* ``show.Show-Input`` is what the gateway *accepts* (section 2): lowerCamelCase
  names, the original proto names as aliases, ``null`` for "unset", integers as
  numbers or strings, enums by name or number.  Unknown fields are ignored, so
  the objects stay open (unless the gateway runs in strict mode).  ``-`` cannot
  occur in a proto name, so the suffix never collides with a real message.

The request schemas are shaped for fuzzers as much as for validators (checked
with schemathesis 4.32: every body it generates from them decodes, and its
negative bodies are refused).  Proto-name aliases live in ``dependentSchemas``,
so Swagger UI's examples and most generated bodies use lowerCamelCase, and one
top-level ``not`` lists the key combinations the decoder refuses (a field in
both spellings, two members of one oneof).  The accepted numeric strings are
the in-range ones: the decoder also takes spellings such as ``"1e3"`` for an
integer or ``"1E+5"`` for a float, which the patterns leave out.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

import grpc
import orjson

from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.errors import HTTP_STATUS
from opencue_gateway.wire import (
    FLOAT32_ROUNDS_TO_MAX,
    FLOAT64_MAX,
    INT_RANGES,
    QUOTED_INTEGERS,
    Kind,
    Presence,
    Shape,
    WellKnown,
    WireContract,
    WireEnum,
    WireField,
    WireMessage,
    WireValue,
)

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
TITLE = "opencue-gateway"
INPUT_SUFFIX = "-Input"
ERROR_SCHEMA = "Error"
SECURITY_SCHEME = "bearerAuth"
IGNORED_FIELDS_HEADER = "Opencue-Gateway-Ignored-Fields"
WATCH_INTERVAL_HEADER = "Opencue-Gateway-Watch-Interval"
EVENT_STREAM = "text/event-stream"
EVENT_STREAM_SCHEMA = "EventStream"

_REF = "#/components/schemas/"
_NULL: Schema = {"type": "null"}

# The two answers whose HTTP status is not the one of grpc-gateway's table
# (errors.HTTP_STATUS): a verb other than POST (app.py) and a body over the
# size limit (site.py).  Every other error status comes from the table.
_STATUS_OVERRIDES = {
    405: (grpc.StatusCode.UNIMPLEMENTED,),
    413: (grpc.StatusCode.RESOURCE_EXHAUSTED,),
}
_STATUS_TEXT = {
    400: "The request body is malformed or a field has a value of the wrong type "
         "(INVALID_ARGUMENT); or Cuebot refused the call (FAILED_PRECONDITION, OUT_OF_RANGE).",
    401: "No bearer token, or one that is not valid (UNAUTHENTICATED).",
    403: "The token's role may not call this method (PERMISSION_DENIED).",
    404: "No such RPC, or Cuebot found no such object (NOT_FOUND).",
    405: "The path exists but only answers POST (UNIMPLEMENTED).",
    409: "Cuebot reports a conflict (ALREADY_EXISTS, ABORTED).",
    413: "The request body is larger than the configured limit (RESOURCE_EXHAUSTED).",
    429: "Rate limited, or Cuebot is out of a resource (RESOURCE_EXHAUSTED).",
    499: "The call was cancelled (CANCELLED).",
    500: "Cuebot or the gateway failed (UNKNOWN, INTERNAL, DATA_LOSS).",
    501: "Cuebot does not implement this method (UNIMPLEMENTED).",
    503: "Cuebot could not be reached (UNAVAILABLE).",
    504: "Cuebot did not answer in time (DEADLINE_EXCEEDED).",
}

_FLOAT_WORDS = "NaN|-?Infinity"
# Numeric strings: the decoder takes any JSON number spelling in range; the
# schema names the ones that are in range whatever their digits (at most 38
# integer digits for a float, 308 for a double, and only negative exponents),
# so a fuzzer never draws "1e999".
_FLOAT_TEXT = {
    Kind.FLOAT: r"-?(?:0|[1-9][0-9]{0,37})(?:\.[0-9]+)?(?:[eE]-[0-9]+)?",
    Kind.DOUBLE: r"-?(?:0|[1-9][0-9]{0,307})(?:\.[0-9]+)?(?:[eE]-[0-9]+)?",
}
# Standard base64 with padding, as the encoder prints it: the unused low bits
# of the last character are zero, which narrows its alphabet.
_B64 = "[A-Za-z0-9+/]"
_BASE64_PRINTED = (
    f"^(?:{_B64}{{4}})*(?:{_B64}[AQgw]==|{_B64}{{2}}[AEIMQUYcgkosw048]=)?$"
)
# The decoder also takes the URL-safe alphabet and missing padding.
_B64_ANY = "[A-Za-z0-9+/_-]"
_BASE64_ACCEPTED = f"^(?:{_B64_ANY}{{4}})*(?:{_B64_ANY}{{2}}(?:==?)?|{_B64_ANY}{{3}}=?)?$"


# --------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------

def _digit_class(low: int, high: int) -> str:
    """A regex matching one digit from ``low`` to ``high``."""
    return str(low) if low == high else f"[{low}-{high}]"


def _numerals_up_to(limit: int) -> str:
    """Regex alternatives matching the decimal numerals 1..limit, without leading zeros."""
    digits = str(limit)
    size = len(digits)
    alternatives = []
    if size > 2:
        alternatives.append(f"[1-9][0-9]{{0,{size - 2}}}")
    elif size == 2:
        alternatives.append("[1-9]")
    for index, digit in enumerate(digits):
        low = 1 if index == 0 else 0
        if int(digit) - 1 >= low:
            rest = size - index - 1
            tail = f"[0-9]{{{rest}}}" if rest > 1 else "[0-9]" if rest == 1 else ""
            alternatives.append(digits[:index] + _digit_class(low, int(digit) - 1) + tail)
    alternatives.append(digits)
    return "|".join(alternatives)


def integer_pattern(low: int, high: int, negative_zero: bool = False) -> str:
    """An anchored regex matching exactly the decimal integers from ``low`` to ``high``.

    The numerals are canonical (no sign on positives, no leading zeros), as
    ``str(int)`` prints them; ``negative_zero`` also admits ``-0``, which the
    decoder reads as 0.
    """
    alternatives = ["-?0" if negative_zero else "0"]
    if high > 0:
        alternatives.append(_numerals_up_to(high))
    if low < 0:
        alternatives.append(f"-(?:{_numerals_up_to(-low)})")
    return "^(?:" + "|".join(alternatives) + ")$"


# --------------------------------------------------------------------------
# Schema helpers
# --------------------------------------------------------------------------

def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _nullable(schema: Schema) -> Schema:
    """The same schema, also admitting ``null``."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], _NULL]}
    if "$ref" in schema:
        return {"anyOf": [schema, _NULL]}
    return schema


def _humanize(name: str) -> str:
    """``GetJobWhiteboard`` -> ``Get job whiteboard``; acronyms keep their capitals."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$)|[A-Z]?[a-z]+|[0-9]+|[A-Z]+", name)
    if not words:
        return name
    rest = [w if w.isupper() and len(w) > 1 else w.lower() for w in words[1:]]
    return " ".join([words[0], *rest])


# --------------------------------------------------------------------------
# Well-known types (OpenCue uses none; a fork's protos may)
# --------------------------------------------------------------------------

_WELL_KNOWN_SCHEMAS: dict[WellKnown, Schema] = {
    WellKnown.TIMESTAMP: {"type": "string", "format": "date-time"},
    WellKnown.DURATION: {"type": "string", "pattern": r"^-?[0-9]+(?:\.[0-9]{1,9})?s$"},
    WellKnown.FIELD_MASK: {"type": "string"},
    WellKnown.STRUCT: {"type": "object"},
    WellKnown.LIST_VALUE: {"type": "array"},
    WellKnown.VALUE: {},
    WellKnown.EMPTY: {"type": "object", "maxProperties": 0},
    WellKnown.ANY: {
        "type": "object", "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
    },
}


def _well_known_schema(message: WireMessage) -> Schema:
    """The JSON form protobuf gives a well-known type, on both sides of the gateway."""
    if message.well_known is WellKnown.WRAPPER:
        # The wrappers (Int64Value, ...) print as their bare value.
        schema = _accepted_scalar(message.by_key["value"].value)
    else:
        # A copy: documents are the caller's to change, the table is not.
        schema = copy.deepcopy(_WELL_KNOWN_SCHEMAS[message.well_known])
    return {**schema, "description": f"`{message.full_name}`, in protobuf's JSON form for it."}


# --------------------------------------------------------------------------
# Scalars, printed (responses) and accepted (requests)
# --------------------------------------------------------------------------

def _printed_scalar(value: WireValue) -> Schema:
    """A non-message, non-enum value as the encoder prints it."""
    kind = value.kind
    if value.int_range is not None:
        low, high = value.int_range
        if kind in QUOTED_INTEGERS:
            return {
                "type": "string", "format": kind.value,
                "pattern": integer_pattern(low, high), "examples": ["0"],
            }
        return {
            "type": "integer", "format": kind.value, "minimum": low, "maximum": high,
            "examples": [0],
        }
    if kind in _FLOAT_TEXT:
        return {
            **_float_number(kind),
            "pattern": f"^(?:{_FLOAT_WORDS})$",
            "examples": [0],
        }
    if kind is Kind.BOOL:
        return {"type": "boolean"}
    if kind is Kind.BYTES:
        return {"type": "string", "contentEncoding": "base64", "pattern": _BASE64_PRINTED}
    return {"type": "string"}


def _float_number(kind: Kind) -> Schema:
    """A float or double as a JSON number (or string), within the type's range.

    Float32 values print in their shortest form, e.g. 3.4028235e+38 for the
    largest, which reads back as a double slightly above the float32 maximum;
    a double at or past FLOAT32_ROUNDS_TO_MAX rounds to infinity, which the
    decoder refuses.
    """
    if kind is Kind.FLOAT:
        return {"type": ["number", "string"], "exclusiveMinimum": -FLOAT32_ROUNDS_TO_MAX,
                "exclusiveMaximum": FLOAT32_ROUNDS_TO_MAX}
    return {"type": ["number", "string"], "minimum": -FLOAT64_MAX, "maximum": FLOAT64_MAX}


def _accepted_scalar(value: WireValue) -> Schema:
    """A non-message, non-enum value as the decoder accepts it."""
    kind = value.kind
    if value.int_range is not None:
        low, high = value.int_range
        return {
            "type": ["integer", "string"], "minimum": low, "maximum": high,
            "pattern": integer_pattern(low, high, negative_zero=True),
            "examples": [0],
        }
    if kind in _FLOAT_TEXT:
        number = _float_number(kind)
        number["pattern"] = f"^(?:{_FLOAT_WORDS}|{_FLOAT_TEXT[kind]})$"
        number["examples"] = [0]
        return number
    if kind is Kind.BOOL:
        return {"type": "boolean"}
    if kind is Kind.BYTES:
        return {"type": "string", "contentEncoding": "base64", "pattern": _BASE64_ACCEPTED}
    return {"type": "string"}


def _printed_map_key(key: WireValue) -> Schema | None:
    """``propertyNames`` for a map's keys as printed; None for string keys."""
    if key.kind is Kind.STRING:
        return None
    if key.kind is Kind.BOOL:
        return {"enum": ["true", "false"]}
    low, high = key.int_range
    return {"pattern": integer_pattern(low, high)}


def _accepted_map_key(key: WireValue) -> Schema | None:
    """``propertyNames`` for a map's keys as accepted; None for string keys."""
    if key.int_range is not None:
        low, high = key.int_range
        return {"pattern": integer_pattern(low, high, negative_zero=True)}
    return _printed_map_key(key)


# --------------------------------------------------------------------------
# Messages and enums
# --------------------------------------------------------------------------

class _SchemaBuilder:
    """Collects ``components.schemas``: one entry per message or enum per side, built once."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.contract = WireContract()
        self.schemas: dict[str, Schema] = {}

    # -- responses ---------------------------------------------------------

    def printed_message(self, message: WireMessage) -> Schema:
        """A ``$ref`` to the schema of a message as the gateway prints it."""
        if message.well_known is not None:
            return self._well_known(message)
        name = message.full_name
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursive types refer to themselves
            self.schemas[name] = self._build_printed(message)
        return _ref(name)

    def _build_printed(self, message: WireMessage) -> Schema:
        properties: Schema = {}
        required = []
        for field in message.fields:
            properties[field.json_name] = self._printed_field(field)
            if field.presence is not Presence.OMITTED:
                required.append(field.json_name)
        schema: Schema = {
            "type": "object",
            "description": f"`{message.full_name}` as the gateway prints it.",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        pairs = [
            {"required": [a.json_name, b.json_name]}
            for group in message.exclusive
            for i, a in enumerate(group) for b in group[i + 1:]
        ]
        if pairs:
            schema["not"] = {"anyOf": pairs}
        return schema

    def _printed_field(self, field: WireField) -> Schema:
        if field.shape is Shape.MAP:
            schema: Schema = {
                "type": "object",
                "additionalProperties": self._printed_value(field.value),
            }
            keys = _printed_map_key(field.key)
            if keys is not None:
                schema["propertyNames"] = keys
            return schema
        if field.shape is Shape.LIST:
            return {"type": "array", "items": self._printed_value(field.value)}
        value = self._printed_value(field.value)
        if field.presence is Presence.NULL:
            # Unset singular messages (and proto2 optional scalars) print as null.
            return _nullable(value)
        return value

    def _printed_value(self, value: WireValue) -> Schema:
        if value.kind is Kind.MESSAGE:
            return self.printed_message(value.message)
        if value.kind is Kind.ENUM:
            return self._printed_enum(value.enum)
        return _printed_scalar(value)

    def _printed_enum(self, enum: WireEnum) -> Schema:
        name = enum.full_name
        if name not in self.schemas:
            # The encoder maps each number to one name (the first alias, as Go
            # does); a number the descriptor does not know prints as the number.
            names = list(dict.fromkeys(enum.printed.values()))
            low, high = INT_RANGES[Kind.INT32]
            self.schemas[name] = {
                "description": f"`{name}` as the gateway prints it: the value's name, "
                               "or its number when the gateway's protos do not know it.",
                "anyOf": [
                    {"type": "string", "enum": names},
                    {"type": "integer", "minimum": low, "maximum": high,
                     "not": {"enum": sorted(enum.printed)}},
                ],
                # Swagger UI would otherwise show "string" as the example.
                "examples": names[:1],
            }
        return _ref(name)

    # -- requests ----------------------------------------------------------

    def accepted_message(self, message: WireMessage) -> Schema:
        """A ``$ref`` to the schema of a message as the gateway accepts it."""
        if message.well_known is not None:
            return self._well_known(message)
        name = message.full_name + INPUT_SUFFIX
        if name not in self.schemas:
            self.schemas[name] = {}
            self.schemas[name] = self._build_accepted(message)
        return _ref(name)

    def _build_accepted(self, message: WireMessage) -> Schema:
        properties: Schema = {}
        aliases: Schema = {}
        # Bodies the decoder refuses although each key is fine on its own.
        conflicts: list[Schema] = []
        for field in message.fields:
            schema = self._accepted_field(field)
            properties[field.json_name] = schema
            if field.name != field.json_name:
                aliases[field.name] = {"properties": {field.name: schema}}
                # The same field under both names, even as null.
                conflicts.append({"required": [field.json_name, field.name]})
        conflicts.extend(self._accepted_oneof_pairs(message))
        text = f"`{message.full_name}` as the gateway accepts it. `null` leaves a field unset."
        if aliases:
            listed = ", ".join(f"`{name}`" for name in aliases)
            text += f" The proto field names are accepted too ({listed}), but not both spellings."
        text += (
            " Unknown fields are rejected (strict mode)." if self.strict else
            " Unknown fields are ignored and listed in the "
            f"`{IGNORED_FIELDS_HEADER}` response header."
        )
        schema: Schema = {"type": "object", "description": text, "properties": properties}
        if aliases:
            schema["dependentSchemas"] = aliases
        if conflicts:
            # One `not` at the top: schemathesis models it, whereas a `not` inside
            # each `dependentSchemas` entry makes its canonicalizer give up.
            schema["not"] = {"anyOf": conflicts}
        if self.strict:
            # Not `additionalProperties: false`, which would refuse the proto names,
            # nor `unevaluatedProperties`, which schemathesis cannot generate from.
            known = [*properties, *aliases]
            if known:
                schema["propertyNames"] = {"enum": known}
            else:
                schema["maxProperties"] = 0
        return schema

    @staticmethod
    def _accepted_oneof_pairs(message: WireMessage) -> list[Schema]:
        """Bodies setting two members of one oneof (in any spelling, not null) are a 400."""
        set_value: Schema = {"not": _NULL}
        pairs = []
        for group in message.exclusive:
            for i, first in enumerate(group):
                for second in group[i + 1:]:
                    for a in dict.fromkeys((first.json_name, first.name)):
                        for b in dict.fromkeys((second.json_name, second.name)):
                            pairs.append({
                                "required": [a, b],
                                "properties": {a: set_value, b: set_value},
                            })
        return pairs

    def _accepted_field(self, field: WireField) -> Schema:
        if field.shape is Shape.MAP:
            schema: Schema = {
                "type": ["object", "null"],
                "additionalProperties": self._accepted_value(field.value),
            }
            keys = _accepted_map_key(field.key)
            if keys is not None:
                schema["propertyNames"] = keys
            return schema
        if field.shape is Shape.LIST:
            # null leaves the field unset; a null element is a 400.
            return {"type": ["array", "null"], "items": self._accepted_value(field.value)}
        return _nullable(self._accepted_value(field.value))

    def _accepted_value(self, value: WireValue) -> Schema:
        if value.kind is Kind.MESSAGE:
            return self.accepted_message(value.message)
        if value.kind is Kind.ENUM:
            return self._accepted_enum(value.enum)
        return _accepted_scalar(value)

    def _accepted_enum(self, enum: WireEnum) -> Schema:
        name = enum.full_name + INPUT_SUFFIX
        if name not in self.schemas:
            low, high = INT_RANGES[Kind.INT32]
            choices: list[Schema] = [
                {"type": "string", "enum": list(enum.names)},
                {"type": "integer", "minimum": low, "maximum": high},
            ]
            text = f"`{enum.full_name}` by name or by number."
            if self.strict:
                text += " Unknown names are rejected (strict mode)."
            else:
                text += (
                    " An unknown name leaves the field unset and is listed in the "
                    f"`{IGNORED_FIELDS_HEADER}` response header."
                )
                choices.append({"type": "string"})
            self.schemas[name] = {
                "description": text, "anyOf": choices, "examples": list(enum.names[:1]),
            }
        return _ref(name)

    # -- both ----------------------------------------------------------------

    def _well_known(self, message: WireMessage) -> Schema:
        name = message.full_name
        if name not in self.schemas:
            self.schemas[name] = _well_known_schema(message)
        return _ref(name)


# --------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------

def _error_statuses() -> dict[int, list[int]]:
    """Every HTTP error status the gateway answers with, and the gRPC codes behind each."""
    statuses: dict[int, list[int]] = {}
    for code, status in HTTP_STATUS.items():
        if status != 200:
            statuses.setdefault(status, []).append(code.value[0])
    for status, codes in _STATUS_OVERRIDES.items():
        statuses.setdefault(status, []).extend(code.value[0] for code in codes)
    return {status: sorted(set(codes)) for status, codes in sorted(statuses.items())}


def _error_schema() -> Schema:
    return {
        "type": "object",
        "description": "grpc-gateway's error body, plus `error` (the same text as `message`).",
        "properties": {
            "code": {"type": "integer", "minimum": 0, "maximum": 16,
                     "description": "The gRPC status code number."},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}},
            "error": {"type": "string", "description": "The same text as `message`."},
        },
        "required": ["code", "message", "details", "error"],
        "additionalProperties": False,
    }


def _error_responses() -> tuple[Schema, Schema]:
    """``components.responses`` (one per status) and ``components.headers`` they use."""
    headers: Schema = {
        "WWW-Authenticate": {
            "description": 'RFC 6750 challenge: `Bearer realm="opencue-gateway"`, with '
                           '`error="invalid_token"` and `error_description` when a token '
                           "was sent.",
            "required": True,
            "schema": {"type": "string"},
        },
        "Allow": {
            "description": "The methods the path answers: `POST`.",
            "required": True,
            "schema": {"type": "string"},
        },
        IGNORED_FIELDS_HEADER: {
            "description": "The dotted paths of request fields (and enum names) the gateway "
                           "did not know and ignored.",
            "schema": {"type": "string"},
        },
        WATCH_INTERVAL_HEADER: {
            "description": "On a watch (`text/event-stream`): how often Cuebot is asked, as "
                           "a duration (`5s`).",
            "schema": {"type": "string"},
        },
    }
    responses: Schema = {}
    for status, codes in _error_statuses().items():
        response: Schema = {
            "description": _STATUS_TEXT.get(status, "An error.")
            + " Cuebot's response metadata, if any, comes as `Grpc-Metadata-*` headers.",
            "content": {"application/json": {"schema": {"allOf": [
                _ref(ERROR_SCHEMA),
                {"properties": {"code": {"enum": codes}}},
            ]}}},
        }
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"$ref": "#/components/headers/"
                                                                "WWW-Authenticate"}}
        elif status == 405:
            response["headers"] = {"Allow": {"$ref": "#/components/headers/Allow"}}
        responses[str(status)] = response
    return responses, headers


# The streaming form of read-only methods (watch.py), described once and referred to.
_WATCH_PARAMETERS: Schema = {
    "interval": {
        "name": "interval", "in": "query", "required": False,
        "description": "With `Accept: text/event-stream` only: how often Cuebot is asked "
                       "again, a duration like `5s` or `1500ms` (default WATCH_INTERVAL; "
                       "shorter than WATCH_MIN_INTERVAL is raised to it).",
        "schema": {"type": "string", "pattern": r"^(?:0|(?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+)$",
                   "examples": ["5s"]},
    },
    "Last-Event-ID": {
        "name": "Last-Event-ID", "in": "header", "required": False,
        "description": "With `Accept: text/event-stream` only: the id of the last event "
                       "received; the new stream starts with a snapshot whose id follows it.",
        "schema": {"type": "string"},
    },
}
_EVENT_STREAM_DESCRIPTION = (
    "A watch: the answer to `Accept: text/event-stream`, Server-Sent Events (WHATWG HTML "
    "section 9.2). `event: snapshot` first, then `event: change` each time the reply "
    "differs, each with `data:` the whole reply as `application/json` shows it; "
    "`event: error` with the error body when a poll fails (the stream goes on, unless "
    "polling again cannot help); `event: end` with `{\"reason\", \"message\"}` before the "
    "gateway closes the stream (`token_expired`, `revoked`, `draining`, `time_limit`, "
    "`error`); a comment line every WATCH_HEARTBEAT. Every event has an `id`. Every watcher "
    "of the same question shares one Cuebot poll.")


def _watch_form(operation: Schema) -> None:
    """Add the streaming form (the watch) to a read-only operation."""
    operation["parameters"] = [{"$ref": f"#/components/parameters/{name}"}
                               for name in _WATCH_PARAMETERS]
    ok = operation["responses"]["200"]
    ok["headers"][WATCH_INTERVAL_HEADER] = {
        "$ref": f"#/components/headers/{WATCH_INTERVAL_HEADER}"}
    ok["content"][EVENT_STREAM] = {"schema": _ref(EVENT_STREAM_SCHEMA)}


def _operation(method: RpcMethod, builder: _SchemaBuilder, statuses: Iterable[int]) -> Schema:
    request = builder.contract.message(method.input_type.DESCRIPTOR)
    reply = builder.contract.message(method.output_type.DESCRIPTOR)
    kind = "Read-only" if method.read_only else "Changes farm state"
    responses: Schema = {
        "200": {
            "description": f"The `{reply.full_name}` Cuebot answered. Cuebot's response "
                           "metadata comes as `Grpc-Metadata-*` headers.",
            "headers": {IGNORED_FIELDS_HEADER: {
                "$ref": f"#/components/headers/{IGNORED_FIELDS_HEADER}"}},
            "content": {"application/json": {"schema": builder.printed_message(reply)}},
        },
    }
    for status in statuses:
        responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
    operation = {
        "operationId": f"{method.service}.{method.name}",
        "tags": [method.service],
        "summary": _humanize(method.name),
        "description": (
            f"Calls `{method.service}/{method.name}` on Cuebot. {kind}.\n\n"
            f"Request: `{request.full_name}`; response: `{reply.full_name}`. "
            "An empty body is the empty request message."
        ),
        "x-opencue-read-only": method.read_only,
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": builder.accepted_message(request)}},
        },
        "responses": responses,
    }
    if method.read_only:
        _watch_form(operation)
    return operation


def build_openapi(catalog: MethodCatalog, version: str, *, strict: bool = False) -> dict:
    """The OpenAPI 3.1 document of every RPC in ``catalog``, as a JSON-ready dict.

    ``version`` is the gateway's version (``info.version``); ``strict`` says
    whether the gateway rejects unknown fields and enum names (the strict JSON
    mode of COMPATIBILITY.md section 2) instead of ignoring them.
    """
    builder = _SchemaBuilder(strict)
    responses, headers = _error_responses()
    statuses = [int(status) for status in responses]
    paths: Schema = {}
    for method in sorted(catalog, key=lambda m: m.path):
        paths[method.path] = {"post": _operation(method, builder, statuses)}
    for own in (ERROR_SCHEMA, EVENT_STREAM_SCHEMA):
        if own in builder.schemas:
            raise ValueError(f"a message is named {own!r}, which the gateway's own schema uses")
    schemas = {ERROR_SCHEMA: _error_schema(),
               EVENT_STREAM_SCHEMA: {"type": "string", "description": _EVENT_STREAM_DESCRIPTION}}
    schemas.update(sorted(builder.schemas.items()))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": TITLE,
            "version": version,
            "description": (
                "HTTP/JSON gateway in front of OpenCue's Cuebot gRPC API. Every unary RPC is "
                "`POST /<package>.<Service>/<Method>` with the request message as JSON "
                "(protobuf's JSON mapping) and answers with the response message as JSON, "
                "the way grpc-gateway v2 prints it. Send `Authorization: Bearer <JWT>`. "
                "Read-only methods can also be watched: the same request with "
                "`Accept: text/event-stream` answers a stream of Server-Sent Events, a "
                "snapshot and then each change."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        # Relative to the document's own URL, so a gateway behind a proxy under a path prefix
        # ("/opencue/openapi.json") is called under that prefix too (OpenAPI 3.1 section 4.8.5).
        "servers": [{"url": "."}],
        "security": [{SECURITY_SCHEME: []}],
        "tags": [{"name": service} for service in catalog.services],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "parameters": _WATCH_PARAMETERS,
            "headers": headers,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An HMAC-signed JWT (HS256/384/512) with an `exp` claim.",
                },
            },
        },
    }


def openapi_json(catalog: MethodCatalog, version: str, *, strict: bool = False) -> bytes:
    """The document as JSON bytes; the same catalog and version always give the same bytes."""
    return orjson.dumps(build_openapi(catalog, version, strict=strict))
