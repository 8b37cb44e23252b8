"""Every one of the catalog's methods, over real HTTP and real gRPC, both directions.

For each method a fully populated request goes in as canonical protobuf JSON
(printed by protobuf's own json_format, an independent implementation) and
must reach Cuebot as the identical message; a fully populated reply comes
back and must equal the contract's JSON (json_format's EmitUnpopulated-style
output, compared as parsed JSON).
"""

from __future__ import annotations

import json

import pytest_twisted
from google.protobuf import json_format

from tests.populate import populate


def reference_json(message) -> object:
    """The contract's JSON, by protobuf's own printer plus protojson's nulls.

    json_format omits unset message fields where grpc-gateway prints null;
    ``populate`` leaves them unset only below its depth limit.
    """
    printed = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _add_nulls(message, printed)
    return printed


def _add_nulls(message, printed: dict) -> None:
    for field in message.DESCRIPTOR.fields:
        if field.message_type is None or field.containing_oneof is not None:
            continue
        if field.message_type.GetOptions().map_entry:
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            for item, item_json in zip(value, printed[field.json_name], strict=True):
                _add_nulls(item, item_json)
        elif message.HasField(field.name):
            _add_nulls(value, printed[field.json_name])
        else:
            printed[field.json_name] = None


@pytest_twisted.ensureDeferred
async def test_every_method_round_trips_exactly(gateway, cuebot, catalog):
    """Requests arrive byte-identical and replies print as the contract defines, all methods."""
    mismatches = []
    for index, method in enumerate(catalog):
        request = populate(method.input_type(), seed=index)
        reply = populate(method.output_type(), seed=index + 1000)
        cuebot.behave(method.path, reply=reply)
        style = index % 2 == 0  # alternate lowerCamelCase and proto field names
        body = json_format.MessageToJson(request, preserving_proto_field_name=style)
        response = await gateway.post(method.path, body)
        received = cuebot.last()
        if response.status != 200:
            mismatches.append((method.path, response.status, response.body[:200]))
            continue
        if received.path != method.path or received.request != request:
            mismatches.append((method.path, "request differs"))
        if response.json() != reference_json(reply):
            mismatches.append((method.path, "reply differs"))
        if response.header("Opencue-Gateway-Ignored-Fields") is not None:
            mismatches.append((method.path, "fields ignored"))
    assert not mismatches
    assert len(cuebot.received) == len(catalog) == 293


@pytest_twisted.ensureDeferred
async def test_unpopulated_reply_prints_nulls_and_zeros(gateway, cuebot, catalog):
    """An empty reply prints every scalar as its zero and every message as null."""
    from opencue_proto import job_pb2

    cuebot.behave("/job.JobInterface/FindJob",
                  reply=job_pb2.JobFindJobResponse(job=job_pb2.Job(name="j")))
    response = await gateway.post("/job.JobInterface/FindJob", '{"name":"j"}')
    job = response.json()["job"]
    assert job["jobStats"] is None
    assert job["isPaused"] is False and job["priority"] == 0 and job["logDir"] == ""
    assert "uid" not in job
    assert response.body.startswith(b'{"job":{"id":"","state":"PENDING","name":"j",')
    assert json.loads(response.body) == response.json()
