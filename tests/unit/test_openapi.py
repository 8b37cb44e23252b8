"""The OpenAPI document describes exactly what the transcoder prints and accepts."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import re
import sys
from collections.abc import Iterator
from functools import cache
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import grpc
import orjson
import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    text_format,
    timestamp_pb2,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from opencue_proto import job_pb2, show_pb2
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from opencue_gateway import docs
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.docs import (
    PAGE_ASSETS,
    assets_dir,
    docs_page,
    read_assets,
    relative_url,
    swagger_ui_version,
)
from opencue_gateway.errors import HTTP_STATUS, GatewayError, render_error
from opencue_gateway.openapi import (
    INPUT_SUFFIX,
    build_openapi,
    integer_pattern,
    openapi_json,
)
from opencue_gateway.transcode import Transcoder
from tests.populate import populate

_C = FieldDescriptor
VERSION = "9.8.7"
ERROR_STATUSES = {400, 401, 403, 404, 405, 409, 413, 429, 499, 500, 501, 503, 504}
INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


# -- fixtures and helpers ---------------------------------------------------------

CATALOG = MethodCatalog.default()
OUTPUT_TYPES = sorted({m.output_type.DESCRIPTOR.full_name: m.output_type for m in CATALOG}.items())
INPUT_TYPES = sorted({m.input_type.DESCRIPTOR.full_name: m.input_type for m in CATALOG}.items())


class Schemas:
    """jsonschema validators for the document's components, ``$ref``s resolved in place."""

    URI = "urn:opencue-gateway:openapi"

    def __init__(self, document: dict) -> None:
        self.document = document
        resource = DRAFT202012.create_resource(document)
        self._registry = Registry().with_resource(self.URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def at(self, pointer: str) -> Draft202012Validator:
        """The validator of the schema at a JSON pointer into the document."""
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft202012Validator(
                {"$ref": f"{self.URI}#{pointer}"}, registry=self._registry
            )
            self._validators[pointer] = validator
        return validator

    def response(self, type_name: str) -> Draft202012Validator:
        """The schema of a message as the gateway prints it."""
        return self.at(f"/components/schemas/{type_name}")

    def request(self, type_name: str) -> Draft202012Validator:
        """The schema of a message as the gateway accepts it."""
        return self.at(f"/components/schemas/{type_name}{INPUT_SUFFIX}")

    def errors(self, instance: object, validator: Draft202012Validator) -> list[str]:
        """Readable validation errors, empty when the instance is valid."""
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in validator.iter_errors(instance)
        ]


@cache
def document() -> dict:
    return build_openapi(CATALOG, VERSION)


@cache
def strict_document() -> dict:
    return build_openapi(CATALOG, VERSION, strict=True)


@cache
def schemas() -> Schemas:
    return Schemas(document())


@cache
def strict_schemas() -> Schemas:
    return Schemas(strict_document())


TRANSCODER = Transcoder()
STRICT_TRANSCODER = Transcoder(strict=True)


def printed(message: Message) -> object:
    """What the gateway sends for ``message``, parsed back from the wire bytes."""
    return orjson.loads(TRANSCODER.encode(message))


def assert_valid(instance: object, validator: Draft202012Validator) -> None:
    problems = schemas().errors(instance, validator)
    assert not problems, problems[:5]


def accepted(message_type: type[Message], body: object, strict: bool = False) -> bool:
    """Whether the gateway's decoder takes this JSON body (a 400 otherwise)."""
    transcoder = STRICT_TRANSCODER if strict else TRANSCODER
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    try:
        transcoder.decode(message_type, raw)
    except GatewayError as error:
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        return False
    return True


def walk(message: Message) -> Iterator[Message]:
    """The message and every message inside it (map values and list elements too)."""
    yield message
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    yield from walk(item)
        elif field.is_repeated:
            for item in value:
                yield from walk(item)
        else:
            yield from walk(value)


def set_extremes(message: Message, variant: int) -> None:
    """Set every scalar of a populated message to a boundary value the gateway must print."""
    floats = [math.nan, math.inf, -math.inf, 3.4028234663852886e38, -1e-45, 1e21][variant::3]
    for node in walk(message):
        for index, field in enumerate(node.DESCRIPTOR.fields):
            if field.is_repeated or field.message_type is not None:
                continue
            if field.containing_oneof is not None and not node.HasField(field.name):
                continue
            cpp = field.cpp_type
            if cpp in (_C.CPPTYPE_FLOAT, _C.CPPTYPE_DOUBLE):
                value: object = floats[index % len(floats)]
            elif cpp == _C.CPPTYPE_INT64:
                value = (INT64_MIN, INT64_MAX)[variant % 2]
            elif cpp == _C.CPPTYPE_UINT64:
                value = UINT64_MAX
            elif cpp == _C.CPPTYPE_INT32:
                value = (-(2**31), 2**31 - 1)[variant % 2]
            elif cpp == _C.CPPTYPE_UINT32:
                value = 2**32 - 1
            elif cpp == _C.CPPTYPE_ENUM:
                value = 12345 + variant  # a number the protos do not know
            else:
                continue
            setattr(node, field.name, value)


# -- the document -------------------------------------------------------------------

# The document of the installed opencue-proto, pinned byte for byte (sha256): any
# change to what the schemas say shows up here first.  After a deliberate change,
# or an opencue-proto upgrade, review the diff of `opencue-gateway openapi`
# (and `--strict`) against the previous version, then store the new version and
# digests: the failing assertion prints the document's actual sha256.
# Last change: watch streams (issue 16) added, to each of the 97 read-only operations only,
# the `interval` and `Last-Event-ID` parameters, a `text/event-stream` form of the 200 and
# its Opencue-Gateway-Watch-Interval header, plus those components (EventStream,
# parameters) and a sentence in info.description; nothing else changed.
PINNED_PROTO_VERSION = "1.37.0"
PINNED_DIGESTS = {
    False: "5c5e73ac8bd24353272222f2be778fba6dd2242699a28beff3a71ad75ce2d813",
    True: "9f9c7a79e436fc84d6be364ae86d16869ae842ceb1a20c7dab587b6201fe54ab",
}


@pytest.mark.parametrize("strict", [False, True])
def test_document_bytes_are_pinned(strict):
    """The document (plain and strict) is byte-identical to the reviewed one for these protos."""
    assert importlib.metadata.version("opencue-proto") == PINNED_PROTO_VERSION, (
        "opencue-proto changed: regenerate PINNED_DIGESTS (see the note above them)")
    body = openapi_json(CATALOG, VERSION, strict=strict)
    assert hashlib.sha256(body).hexdigest() == PINNED_DIGESTS[strict]


def test_document_is_valid_openapi_3_1():
    """openapi-spec-validator accepts the whole generated document as OpenAPI 3.1."""
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_strict_request_schemas_are_valid_json_schemas():
    """The request schemas of strict mode (the rest is as above) are valid JSON Schema 2020-12."""
    for name, schema in strict_document()["components"]["schemas"].items():
        if name.endswith(INPUT_SUFFIX):
            Draft202012Validator.check_schema(schema)


def test_one_post_operation_per_catalog_method():
    """There is exactly one POST operation per catalog method, with a unique operationId."""
    paths = document()["paths"]
    assert len(paths) == len(CATALOG) == 293
    assert set(paths) == {m.path for m in CATALOG}
    assert all(list(item) == ["post"] for item in paths.values())
    ids = [item["post"]["operationId"] for item in paths.values()]
    assert len(set(ids)) == len(ids)
    assert paths["/show.ShowInterface/GetShows"]["post"]["operationId"] == (
        "show.ShowInterface.GetShows"
    )


def test_operations_are_tagged_by_service():
    """Every operation carries its service's full name as its only tag; the tags are the 25."""
    doc = document()
    assert [t["name"] for t in doc["tags"]] == CATALOG.services
    assert len(doc["tags"]) == 25
    for method in CATALOG:
        operation = doc["paths"][method.path]["post"]
        assert operation["tags"] == [method.service]
        assert operation["summary"] and "\n" not in operation["summary"]
        assert operation["x-opencue-read-only"] is method.read_only
    assert doc["paths"]["/show.ShowInterface/GetShows"]["post"]["summary"] == "Get shows"


def test_operations_name_their_request_and_response_schemas():
    """Each operation's body is the input type's request schema and its 200 the output type's."""
    doc = document()
    for method in CATALOG:
        operation = doc["paths"][method.path]["post"]
        body = operation["requestBody"]
        assert body["required"] is False  # an empty body is the empty message
        assert body["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{method.input_type.DESCRIPTOR.full_name}-Input"
        }
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{method.output_type.DESCRIPTOR.full_name}"}


def test_read_only_operations_document_their_streaming_form():
    """Read-only operations, and only they, say a watch answers text/event-stream, with the
    interval and Last-Event-ID parameters and the interval header."""
    doc = document()
    for method in CATALOG:
        operation = doc["paths"][method.path]["post"]
        ok = operation["responses"]["200"]
        if method.read_only:
            assert list(ok["content"]) == ["application/json", "text/event-stream"]
            assert ok["content"]["text/event-stream"]["schema"] == {
                "$ref": "#/components/schemas/EventStream"}
            assert [p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"]] == [
                "interval", "Last-Event-ID"]
            assert "Opencue-Gateway-Watch-Interval" in ok["headers"]
        else:
            assert list(ok["content"]) == ["application/json"]
            assert "parameters" not in operation
    interval = doc["components"]["parameters"]["interval"]
    pattern = re.compile(interval["schema"]["pattern"])
    assert all(pattern.match(v) for v in ("5s", "1500ms", "1m30s", "0"))
    assert not any(pattern.match(v) for v in ("5", "soon", "-1s"))
    assert "snapshot" in doc["components"]["schemas"]["EventStream"]["description"]


def test_every_operation_documents_every_error_status():
    """Each operation lists every status the gateway can answer with, all sharing one schema."""
    doc = document()
    for item in doc["paths"].values():
        statuses = {int(s) for s in item["post"]["responses"]} - {200}
        assert statuses == ERROR_STATUSES
    for status in ERROR_STATUSES:
        schema = doc["components"]["responses"][str(status)]["content"]["application/json"]
        assert {"$ref": "#/components/schemas/Error"} in schema["schema"]["allOf"]
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "details", "error"}


def test_challenge_and_allow_headers_are_documented():
    """401 answers document WWW-Authenticate and 405 answers document Allow."""
    doc = document()
    responses, headers = doc["components"]["responses"], doc["components"]["headers"]
    assert responses["401"]["headers"]["WWW-Authenticate"] == {
        "$ref": "#/components/headers/WWW-Authenticate"
    }
    assert responses["405"]["headers"]["Allow"] == {"$ref": "#/components/headers/Allow"}
    assert headers["WWW-Authenticate"]["required"] is True


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK],
                         ids=lambda c: c.name)
def test_rendered_errors_validate_against_their_status(code):
    """The body errors.render_error writes for any gRPC code matches its status's schema."""
    for error in (GatewayError(code, "boom"), GatewayError(code, "")):
        rendered = render_error(error)
        validator = schemas().at(
            f"/components/responses/{rendered.status}/content/application~1json/schema"
        )
        assert_valid(orjson.loads(rendered.body), validator)


def test_overridden_statuses_validate():
    """The gateway's 405 (wrong verb) and 413 (body too large) bodies match their schemas."""
    for code, status in ((grpc.StatusCode.UNIMPLEMENTED, 405),
                         (grpc.StatusCode.RESOURCE_EXHAUSTED, 413)):
        rendered = render_error(GatewayError(code, "no", http_status=status))
        validator = schemas().at(f"/components/responses/{status}/content/application~1json/schema")
        assert_valid(orjson.loads(rendered.body), validator)


def test_error_code_must_match_the_status():
    """A 401 whose body carries another gRPC code, or lacks the error key, does not validate."""
    validator = schemas().at("/components/responses/401/content/application~1json/schema")
    body = orjson.loads(render_error(GatewayError(grpc.StatusCode.UNAUTHENTICATED, "x")).body)
    assert validator.is_valid(body)
    assert not validator.is_valid({**body, "code": 3})
    assert not validator.is_valid({k: v for k, v in body.items() if k != "error"})
    assert set(HTTP_STATUS.values()) - {200} <= ERROR_STATUSES


def test_security_info_and_servers():
    """A global bearer-JWT requirement, the title and version, and a relative server."""
    doc = document()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["info"]["title"] == "opencue-gateway"
    assert doc["info"]["version"] == VERSION
    assert doc["servers"] == [{"url": "."}]


def test_openapi_json_is_deterministic():
    """Serialising twice gives the same bytes, which parse back to the built document."""
    first = openapi_json(CATALOG, VERSION)
    assert first == openapi_json(MethodCatalog.default(), VERSION)
    assert orjson.loads(first) == document()


def test_component_names_follow_proto_names():
    """Schemas are named by full proto name, request-side ones with the -Input suffix."""
    names = set(document()["components"]["schemas"])
    assert {"show.Show", "show.Show-Input", "job.FrameState", "job.FrameState-Input",
            "job.NestedGroup", "Error"} <= names
    for name in names - {"Error"}:
        assert re.fullmatch(r"[A-Za-z0-9_.]+(-Input)?", name), name


# -- responses ----------------------------------------------------------------------

def test_get_shows_reply_validates():
    """The GetShows reply of the transcoder tests (double nesting, int64 strings) validates."""
    reply = show_pb2.ShowGetShowsResponse(shows=show_pb2.ShowSeq(shows=[show_pb2.Show(
        id="00000000-0000-0000-0000-000000000000", name="testing", default_min_cores=1,
        show_stats=show_pb2.ShowStats(pending_frames=6, created_job_count=44))]))
    body = printed(reply)
    assert body["shows"]["shows"][0]["showStats"]["createdJobCount"] == "44"
    assert_valid(body, schemas().response("show.ShowGetShowsResponse"))


@pytest.mark.parametrize(("name", "message_type"), OUTPUT_TYPES, ids=[n for n, _ in OUTPUT_TYPES])
def test_every_response_type_validates(name, message_type):
    """The empty, two populated and three boundary-value replies of every output type validate."""
    validator = schemas().response(name)
    assert_valid(printed(message_type()), validator)
    for seed in (1, 2):
        assert_valid(printed(populate(message_type(), seed)), validator)
    for variant in range(3):
        message = populate(message_type(), variant + 3)
        set_extremes(message, variant)
        assert_valid(printed(message), validator)


def test_special_values_validate_where_printed():
    """NaN, infinities, int64 extremes, unknown enum numbers and null messages all validate."""
    frame = job_pb2.Frame(name="0001-render", state=99, used_memory=INT64_MAX,
                          max_rss=INT64_MIN, frame_state_display_override=None)
    layer = job_pb2.Layer(min_cores=math.nan, max_cores=math.inf, min_memory=INT64_MAX)
    layer_body = printed(layer)
    assert layer_body["minCores"] == "NaN" and layer_body["maxCores"] == "Infinity"
    assert_valid(layer_body, schemas().response("job.Layer"))
    frame_body = printed(frame)
    assert frame_body["state"] == 99
    assert frame_body["frameStateDisplayOverride"] is None
    assert_valid(frame_body, schemas().response("job.Frame"))


def test_response_schema_catches_printing_regressions():
    """Bodies printed wrongly (names, missing fields, types, enums) do not validate."""
    validator = schemas().response("show.Show")
    good = printed(populate(show_pb2.Show(), 1))
    assert validator.is_valid(good)
    wrong = [
        {**good, "extra": 1},                                    # a field the proto lacks
        {k: v for k, v in good.items() if k != "commentEmail"},  # an unpopulated scalar left out
        {**{k: v for k, v in good.items() if k != "defaultMinCores"},
         "default_min_cores": good["defaultMinCores"]},          # a proto name
        {**good, "showStats": {**good["showStats"], "createdJobCount": 44}},  # int64 as number
        {**good, "active": None},                                # null for a scalar
        {**good, "defaultMinCores": "1.5"},                      # int32 as a string
        {**good, "showStats": []},                               # a list for a message
    ]
    for body in wrong:
        assert not validator.is_valid(body), body
    frame = printed(job_pb2.Frame(state=job_pb2.RUNNING))
    frame_schema = schemas().response("job.Frame")
    assert frame["state"] == "RUNNING" and frame_schema.is_valid(frame)
    assert not frame_schema.is_valid({**frame, "state": 2})        # a known value as a number
    assert not frame_schema.is_valid({**frame, "state": "BOGUS"})  # a name the enum lacks


def test_oneof_members_are_optional_in_responses():
    """A proto3 optional field is absent when unset and present when set; both validate."""
    validator = schemas().response("job.Job")
    unset = printed(job_pb2.Job(name="a"))
    assert "uid" not in unset
    assert_valid(unset, validator)
    assert_valid(printed(job_pb2.Job(name="a", uid=7)), validator)
    assert "uid" not in document()["components"]["schemas"]["job.Job"]["required"]


def test_recursive_messages_refer_to_themselves():
    """job.NestedGroup refers to itself by $ref and a nested instance validates."""
    schema = document()["components"]["schemas"]["job.NestedGroup"]
    assert "#/components/schemas/job.NestedGroup" in orjson.dumps(schema).decode()
    group = job_pb2.NestedGroup(name="top")
    child = group.groups.nested_groups.add(name="child")
    child.groups.nested_groups.add(name="grandchild").groups.nested_groups.add(name="leaf")
    assert_valid(printed(group), schemas().response("job.NestedGroup"))


# -- requests -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "message_type"), INPUT_TYPES, ids=[n for n, _ in INPUT_TYPES])
def test_every_request_type_accepts_protobuf_json(name, message_type):
    """protobuf's own JSON of a populated request, in both name styles, validates and decodes."""
    validator = schemas().request(name)
    strict_validator = strict_schemas().request(name)
    for seed in (1, 2):
        message = populate(message_type(), seed)
        for keep_names in (False, True):
            body = orjson.loads(json_format.MessageToJson(
                message, preserving_proto_field_name=keep_names))
            assert_valid(body, validator)
            assert_valid(body, strict_validator)
            assert accepted(message_type, body, strict=True)
    assert_valid({}, validator)


def _wrong_values(field: FieldDescriptor) -> list[object]:
    """JSON values of the wrong type for a field (each one a 400 from the gateway)."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return [[1], "x", 5]
    if field.is_repeated:
        element = _wrong_element(field)
        return [{"a": 1}, "x", [element]]
    return [_wrong_element(field)]


def _wrong_element(field: FieldDescriptor) -> object:
    cpp = field.cpp_type
    if cpp == _C.CPPTYPE_MESSAGE:
        return "not-an-object"
    if cpp == _C.CPPTYPE_ENUM:
        return True
    if cpp == _C.CPPTYPE_BOOL:
        return "true"
    if cpp in (_C.CPPTYPE_FLOAT, _C.CPPTYPE_DOUBLE):
        return "fast"
    if cpp in (_C.CPPTYPE_INT32, _C.CPPTYPE_UINT32, _C.CPPTYPE_INT64, _C.CPPTYPE_UINT64):
        return 1.5
    if field.type == _C.TYPE_BYTES:
        return "no base64!"
    return 42


@pytest.mark.parametrize(("name", "message_type"), INPUT_TYPES, ids=[n for n, _ in INPUT_TYPES])
def test_wrong_types_fail_schema_and_gateway_alike(name, message_type):
    """For every field of every request, a value of the wrong type is invalid and a 400."""
    validator = schemas().request(name)
    for field in message_type.DESCRIPTOR.fields:
        for key in dict.fromkeys((field.json_name, field.name)):
            for value in _wrong_values(field):
                body = {key: value}
                assert not accepted(message_type, body), body
                assert not validator.is_valid(body), body


def test_null_leaves_any_field_unset():
    """Every field of every request may be null, in either spelling."""
    for name, message_type in INPUT_TYPES:
        for key in ("json_name", "name"):
            body = {getattr(f, key): None for f in message_type.DESCRIPTOR.fields}
            assert accepted(message_type, body)
            assert_valid(body, schemas().request(name))


def test_request_spellings_the_gateway_accepts_validate():
    """int64 as number or string, enums by number, float words and numeric strings validate."""
    validator = schemas().request("job.FrameSearchCriteria")
    bodies = [
        {"page": "3", "limit": 1000, "maxResults": 5, "offset": 1.0},
        {"page": -0, "limit": "-0", "changeDate": 2**31 - 1},
        {"states": {"frameStates": ["RUNNING", 2, "WAITING"]}},
        {"include_finished": True, "frame_range": "1-10"},
    ]
    layer = schemas().request("job.Layer")
    layer_bodies = [
        {"minCores": "NaN", "maxCores": "-Infinity", "minMemory": str(INT64_MAX)},
        {"min_cores": "1.5", "min_memory": INT64_MIN, "min_gpu_memory": "12"},
        {"minCores": 1e38, "maxCores": "-12.5e-3"},
    ]
    for body in bodies:
        assert accepted(job_pb2.FrameSearchCriteria, body), body
        assert_valid(body, validator)
    for body in layer_bodies:
        assert accepted(job_pb2.Layer, body), body
        assert_valid(body, layer)


def test_request_values_the_gateway_refuses_do_not_validate():
    """Out-of-range numbers, both spellings of a field, bad strings and null elements fail."""
    cases = [
        (job_pb2.FrameSearchCriteria, {"page": 2**31}),
        (job_pb2.FrameSearchCriteria, {"page": "2147483648"}),
        (job_pb2.FrameSearchCriteria, {"page": "12abc"}),
        (job_pb2.FrameSearchCriteria, {"page": 1.5}),
        (job_pb2.FrameSearchCriteria, {"frameRange": "1-10", "frame_range": "1-10"}),
        (job_pb2.FrameSearchCriteria, {"frameRange": "1-10", "frame_range": None}),
        (job_pb2.FrameSearchCriteria, {"ids": [None]}),
        (job_pb2.Layer, {"minMemory": str(INT64_MAX + 1)}),
        (job_pb2.Layer, {"minMemory": INT64_MAX + 1}),
        (job_pb2.Layer, {"minCores": 1e39}),
        (job_pb2.Layer, {"minCores": "NAN"}),
        (job_pb2.Layer, {"minCores": True}),
        (show_pb2.ShowFindShowRequest, {"name": {"name": "testing"}}),
    ]
    for message_type, body in cases:
        name = message_type.DESCRIPTOR.full_name
        assert not accepted(message_type, body), body
        assert not schemas().request(name).is_valid(body), body


def test_unknown_fields_and_enum_names_depend_on_the_mode():
    """Unknown keys and enum names are ignored by default and refused in strict mode."""
    for body in ({"nonsense": 1}, {"states": {"frameStates": ["NO_SUCH_STATE"]}}):
        assert accepted(job_pb2.FrameSearchCriteria, body)
        assert schemas().request("job.FrameSearchCriteria").is_valid(body)
        assert not accepted(job_pb2.FrameSearchCriteria, body, strict=True)
        assert not strict_schemas().request("job.FrameSearchCriteria").is_valid(body)


def test_proto_names_are_not_drawn_as_properties():
    """Proto names are typed through dependentSchemas, so fuzzers and Swagger UI show camelCase."""
    schema = document()["components"]["schemas"]["job.FrameSearchCriteria-Input"]
    assert "frameRange" in schema["properties"] and "frame_range" not in schema["properties"]
    assert "frame_range" in schema["dependentSchemas"]
    assert "additionalProperties" not in schema


# -- patterns -----------------------------------------------------------------------

@pytest.mark.parametrize(("low", "high"), [(0, 0), (0, 9), (-10, 10), (-1234, 5678),
                                           (0, 100), (-100, 99), (-3000, 0)])
def test_integer_pattern_matches_exactly_the_range(low, high):
    """The integer regex matches every canonical numeral in range and nothing else nearby."""
    pattern = re.compile(integer_pattern(low, high))
    loose = re.compile(integer_pattern(low, high, negative_zero=True))
    for number in range(min(low, 0) * 3 - 20, max(high, 0) * 3 + 20):
        assert bool(pattern.search(str(number))) == (low <= number <= high), number
        assert bool(loose.search(str(number))) == (low <= number <= high), number
    for text in ("", "-", "01", "+1", "1.0", "1e3", " 1", "٣"):
        assert not pattern.search(text), text
    assert not pattern.search("-0") and bool(loose.search("-0"))


def test_integer_pattern_at_64_bit_bounds():
    """The int64 and uint64 regexes stop exactly at the types' limits."""
    signed = re.compile(integer_pattern(INT64_MIN, INT64_MAX))
    unsigned = re.compile(integer_pattern(0, UINT64_MAX))
    for number in (INT64_MIN, INT64_MIN + 1, -1, 0, 1, 10**18, INT64_MAX - 1, INT64_MAX):
        assert signed.search(str(number))
    for number in (INT64_MIN - 1, INT64_MAX + 1, 10**19, -(10**19)):
        assert not signed.search(str(number))
    assert unsigned.search(str(UINT64_MAX)) and not unsigned.search(str(UINT64_MAX + 1))
    assert not unsigned.search("-1")


# -- docs ---------------------------------------------------------------------------

class _Links(HTMLParser):
    """Collects the src/href attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for key, value in attrs if key in ("src", "href") and value]


def test_docs_assets_are_packaged():
    """The Swagger UI files the page needs are in the package, found without importing it."""
    directory = assets_dir()
    for name in PAGE_ASSETS:
        assert (directory / name).stat().st_size > 0
    assert swagger_ui_version().startswith("v5.")
    assets = read_assets()
    assert set(assets) == set(PAGE_ASSETS)
    assert assets["swagger-ui-bundle.js"][0].startswith("text/javascript")
    assert b"SwaggerUIBundle" in assets["swagger-ui-bundle.js"][1]
    assert assets["favicon-32x32.png"][1].startswith(b"\x89PNG")
    assert "flask_swagger_ui" not in sys.modules  # found, never imported (nor Flask)


def test_missing_assets_package_is_a_clear_error(monkeypatch):
    """Without the Swagger UI package, assets_dir names the package to install."""
    monkeypatch.setattr(docs, "ASSETS_PACKAGE", "no_such_swagger_package")
    with pytest.raises(RuntimeError, match="no-such-swagger-package"):
        docs.assets_dir()


@pytest.mark.parametrize("prefix", ["", "/opencue", "/a/b"])
def test_docs_page_loads_only_local_assets_under_any_prefix(prefix):
    """Every URL of the page, resolved where a proxy serves it, is a packaged file under the
    same prefix; no http(s) or protocol-relative URL."""
    page = docs_page("/openapi.json", "/docs/assets/").decode("utf-8")
    assert "http://" not in page and "https://" not in page
    assert "//" not in page.replace("://", "")  # no protocol-relative URLs either
    page_url = f"http://proxy.example{prefix}/docs"
    parser = _Links()
    parser.feed(page)
    assert len(parser.links) == len(PAGE_ASSETS)
    for link in parser.links:
        path = urlsplit(urljoin(page_url, link)).path
        assert path.startswith(f"{prefix}/docs/assets/"), link
        assert (assets_dir() / path.removeprefix(f"{prefix}/docs/assets/")).is_file()
    document = json.loads(re.search(r"Object\.assign\((\{.*?\}), \{", page).group(1))
    assert urljoin(page_url, document["url"]) == f"http://proxy.example{prefix}/openapi.json"
    assert document["validatorUrl"] is None


@pytest.mark.parametrize(("target", "page_path", "relative"), [
    ("/openapi.json", "/docs", "./openapi.json"),
    ("/docs/swagger-ui.css", "/docs", "./docs/swagger-ui.css"),
    ("/openapi.json", "/api/docs", "../openapi.json"),
    ("/api/", "/api/docs", "./"),
    ("/", "/a/b", "../"),
    ("/odd:name", "/docs", "./odd:name"),
    ("https://cdn.example/openapi.json", "/docs", "https://cdn.example/openapi.json"),
])
def test_relative_url(target, page_path, relative):
    """Root paths become page-relative URLs that never start with a scheme-like segment;
    full URLs are kept."""
    assert relative_url(target, page_path) == relative


def test_docs_page_escapes_its_inputs():
    """URLs given to the page cannot break out of the attribute or the script."""
    page = docs_page('/x"</script><script>alert(1)</script>', '/a"><b').decode("utf-8")
    assert "<script>alert" not in page
    assert '"><b' not in page


# -- constructs OpenCue's protos lack, as a studio's fork may use them ----------------

FORK_FILES = (
    """
    name: "fork/thing.proto" package: "fork" syntax: "proto3"
    dependency: "google/protobuf/timestamp.proto"
    message_type {
      name: "Thing"
      field { name: "label" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0
              json_name: "label" }
      field { name: "item_count" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 oneof_index: 0
              json_name: "itemCount" }
      field { name: "child" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE
              type_name: ".fork.Thing" oneof_index: 0 json_name: "child" }
      field { name: "maybe" number: 4 label: LABEL_OPTIONAL type: TYPE_INT32 oneof_index: 1
              proto3_optional: true json_name: "maybe" }
      field { name: "by_id" number: 5 label: LABEL_REPEATED type: TYPE_MESSAGE
              type_name: ".fork.Thing.ByIdEntry" json_name: "byId" }
      field { name: "flags" number: 6 label: LABEL_REPEATED type: TYPE_MESSAGE
              type_name: ".fork.Thing.FlagsEntry" json_name: "flags" }
      field { name: "blob" number: 7 label: LABEL_OPTIONAL type: TYPE_BYTES json_name: "blob" }
      field { name: "at" number: 8 label: LABEL_OPTIONAL type: TYPE_MESSAGE
              type_name: ".google.protobuf.Timestamp" json_name: "at" }
      field { name: "kind" number: 9 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".fork.Kind"
              json_name: "kind" }
      field { name: "values" number: 10 label: LABEL_REPEATED type: TYPE_DOUBLE
              json_name: "values" }
      field { name: "big" number: 11 label: LABEL_OPTIONAL type: TYPE_UINT64 json_name: "big" }
      nested_type {
        name: "ByIdEntry" options { map_entry: true }
        field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "key" }
        field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
                type_name: ".fork.Thing" json_name: "value" }
      }
      nested_type {
        name: "FlagsEntry" options { map_entry: true }
        field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_BOOL json_name: "key" }
        field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "value" }
      }
      oneof_decl { name: "choice" }
      oneof_decl { name: "_maybe" }
    }
    enum_type {
      name: "Kind" options { allow_alias: true }
      value { name: "KIND_UNSET" number: 0 }
      value { name: "FIRST" number: 1 }
      value { name: "ALSO_FIRST" number: 1 }
    }
    service { name: "ThingInterface"
              method { name: "Echo" input_type: ".fork.Thing" output_type: ".fork.Thing" } }
    """,
    """
    name: "fork/legacy.proto" package: "legacy" syntax: "proto2"
    dependency: "fork/thing.proto"
    message_type {
      name: "Legacy"
      field { name: "count" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 json_name: "count" }
      field { name: "thing" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
              type_name: ".fork.Thing" json_name: "thing" }
    }
    service { name: "LegacyInterface"
              method { name: "Get" input_type: ".legacy.Legacy" output_type: ".legacy.Legacy" } }
    """,
)


@cache
def fork() -> tuple[MethodCatalog, type[Message], type[Message], Schemas]:
    """A catalog of a made-up fork: real oneofs, maps, bytes, a timestamp, proto2 presence."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    files = []
    for text in FORK_FILES:
        proto = text_format.Parse(text, descriptor_pb2.FileDescriptorProto())
        pool.Add(proto)
        files.append(pool.FindFileByName(proto.name))
    catalog = MethodCatalog.from_file_descriptors(files)
    thing = GetMessageClass(pool.FindMessageTypeByName("fork.Thing"))
    legacy = GetMessageClass(pool.FindMessageTypeByName("legacy.Legacy"))
    return catalog, thing, legacy, Schemas(build_openapi(catalog, VERSION))


def test_fork_document_is_valid_openapi_3_1():
    """A fork's catalog with every protobuf construct gives a valid document."""
    catalog, _, _, fork_schemas = fork()
    validate(fork_schemas.document, cls=OpenAPIV31SpecValidator)
    assert set(fork_schemas.document["paths"]) == set(catalog.methods)


def test_fork_replies_validate():
    """Oneof members, proto3 optional, maps with int64 and bool keys, bytes, aliases validate."""
    _, thing, legacy, fork_schemas = fork()
    thing_schema, legacy_schema = fork_schemas.response("fork.Thing"), fork_schemas.response(
        "legacy.Legacy")
    replies = [
        thing(),
        thing(label="x", maybe=0, blob=b"\x00\xff\x10", kind=1, values=[math.nan, 1.5],
              big=UINT64_MAX),
        thing(item_count=INT64_MIN, flags={True: "on", False: "off"}, kind=77),
        thing(child=thing(label="inner"), by_id={-5: thing(item_count=3), INT64_MAX: thing()}),
    ]
    replies[0].at.seconds = 1_700_000_000
    for reply in replies:
        assert_valid(printed(reply), thing_schema)
    assert printed(replies[1])["kind"] == "FIRST"  # the first alias, as Go prints it
    assert "maybe" not in printed(thing()) and "label" not in printed(thing())
    assert_valid(printed(legacy()), legacy_schema)        # proto2 scalars print null
    assert printed(legacy())["count"] is None
    assert_valid(printed(legacy(count=3, thing=thing(label="a"))), legacy_schema)
    two_members = {**printed(thing(label="x")), "itemCount": "1"}
    assert not thing_schema.is_valid(two_members)


def test_fork_requests_agree_with_the_gateway():
    """Oneof, map-key, bytes and timestamp request bodies validate exactly when they decode."""
    _, thing, _, fork_schemas = fork()
    validator = fork_schemas.request("fork.Thing")
    good = [
        {"label": "x", "item_count": None, "child": None},
        {"itemCount": "-12", "by_id": {"-0": {}, "42": {"label": "y"}}},
        {"flags": {"true": "a", "false": "b"}, "blob": "AP8Q", "at": "2024-01-02T03:04:05Z"},
        {"blob": "AP-_", "kind": "FIRST", "values": ["NaN", 1, "2.5"], "big": str(UINT64_MAX)},
        {"maybe": 0, "kind": 1, "child": {"child": {"label": "deep"}}},
    ]
    bad = [
        {"label": "x", "itemCount": 1},
        {"label": "x", "item_count": "1"},
        {"label": "x", "child": {}},
        {"byId": {"x": {}}},
        {"flags": {"yes": "a"}},
        {"blob": "a"},
        {"big": -1},
        {"big": str(UINT64_MAX + 1)},
        {"values": [None]},
        {"byId": {"1": None}},
    ]
    for body in good:
        assert accepted(thing, body), body
        assert_valid(body, validator)
    for body in bad:
        assert not accepted(thing, body), body
        assert not validator.is_valid(body), body
