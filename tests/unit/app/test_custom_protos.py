"""A gateway serving a studio's own protos (PROTO_DESCRIPTOR_SET), in memory.

The set is the one tests/studio_protos.py compiles with proto_gen: a service
opencue-proto does not have, and a fork of show.proto whose Show has one more
field.  Transcoding, the OpenAPI document, /docs, GET /config and the start-up
line follow it with no code of their own; a set the gateway cannot serve stops
start-up with one line naming the setting.
"""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2
from twisted.logger import formatEvent

from opencue_gateway.config import ConfigError
from opencue_gateway.service import gateway_tree, supervisor_tree
from opencue_gateway.startup import log_start
from opencue_gateway.wiring import build
from tests.conftest import make_config, make_token
from tests.memory import MemoryGateway, ThreadlessPool, ThreadlessReactor, memory_gateway
from tests.studio_protos import FIND_SHOW, GET_BUDGET, SET_BUDGET


@pytest.fixture
def gw(studio) -> MemoryGateway:
    """A gateway started with the studio's set, in front of a Cuebot that speaks it."""
    return memory_gateway(studio.catalog, PROTO_DESCRIPTOR_SET=str(studio.path))


def test_a_studio_method_is_answered_as_json(gw, studio):
    """A method opencue-proto lacks: JSON in (with the fork's field), JSON out, int64 and
    the Timestamp in the contract's forms."""
    reply = studio.catalog.methods[GET_BUDGET].output_type()
    reply.budget.show_id = "s1"
    reply.budget.core_hours = 12
    reply.budget.until.seconds = 1_700_000_000
    gw.cuebot.behave(GET_BUDGET, reply=reply)
    response = gw.post(GET_BUDGET, '{"show": {"name": "pilot", "studioCode": "PLT"}}')
    assert response.status == 200, response.body
    assert response.json() == {"budget": {"showId": "s1", "coreHours": "12",
                                          "until": "2023-11-14T22:13:20Z"}}
    [call] = gw.cuebot.calls(GET_BUDGET)
    assert (call.request.show.name, call.request.show.studio_code) == ("pilot", "PLT")


def test_a_studio_mutation_is_a_mutation(gw, studio):
    """The verb rule applies to a studio's methods too: SetBudget is audited as mutating."""
    assert studio.catalog.methods[GET_BUDGET].read_only
    assert not studio.catalog.methods[SET_BUDGET].read_only
    response = gw.post(SET_BUDGET, '{"show": {"id": "s1"}, "budget": {"coreHours": "40"}}')
    assert (response.status, response.json()) == (200, {})
    assert gw.cuebot.calls(SET_BUDGET)[0].request.budget.core_hours == 40


def test_a_forked_message_prints_its_extra_field(gw, studio):
    """show.Show of the fork carries studio_code: the reply prints it, like every field."""
    reply = studio.catalog.methods[FIND_SHOW].output_type()
    reply.show.id, reply.show.name, reply.show.studio_code = "s1", "pilot", "PLT"
    gw.cuebot.behave(FIND_SHOW, reply=reply)
    response = gw.post(FIND_SHOW, '{"name": "pilot"}')
    assert response.status == 200
    assert response.json() == {"show": {"id": "s1", "name": "pilot", "defaultMinCores": 0,
                                        "active": False, "studioCode": "PLT"}}


def test_methods_the_set_lacks_are_not_served(gw):
    """Only the set's services are served: opencue-proto's GetJobs is unknown here."""
    response = gw.post("/job.JobInterface/GetJobs")
    assert response.status == 404
    assert "unknown service 'job.JobInterface'" in response.json()["message"]


def test_openapi_and_docs_describe_the_set(gw):
    """/openapi.json lists the set's methods and the fork's field; /docs serves it."""
    document = gw.request("GET", "/openapi.json", None).json()
    assert sorted(document["paths"]) == [FIND_SHOW, "/show.ShowInterface/GetShows",
                                         GET_BUDGET, SET_BUDGET]
    assert "studioCode" in document["components"]["schemas"]["show.Show"]["properties"]
    assert "studio.Budget" in document["components"]["schemas"]
    docs = gw.request("GET", "/docs", None)
    assert docs.status == 200 and b"openapi.json" in docs.body


def test_config_names_the_set(gw, studio):
    """GET /config shows the setting and what the set holds."""
    config = gw.request("GET", "/config", None, token=make_token()).json()
    assert config["PROTO_DESCRIPTOR_SET"] == str(studio.path)
    assert config["PROTOS"] == {"source": str(studio.path), "services": 2, "methods": 4}


def test_config_names_the_installed_protos_by_default(catalog):
    """Without the setting, /config names the installed opencue-proto and its counts."""
    config = memory_gateway(catalog).request("GET", "/config", None, token=make_token()).json()
    assert config["PROTO_DESCRIPTOR_SET"] is None
    assert config["PROTOS"] == catalog.describe()
    assert config["PROTOS"]["source"].startswith("opencue-proto ")


def test_the_start_up_line_names_the_set(gw, studio, captured_logs):
    """The listening line says how many methods and services, and from which set."""
    log_start(gw.gateway, ["http://127.0.0.1:8448"], None)
    lines = [formatEvent(event) for event in captured_logs]
    assert (f"opencue-gateway listening on http://127.0.0.1:8448, Cuebot at cuebot.memory:8443 "
            f"(4 methods in 2 services from {studio.path})") in lines


def test_build_reads_the_setting(studio):
    """Without a catalog given, the gateway's catalog is PROTO_DESCRIPTOR_SET's."""
    reactor = ThreadlessReactor()
    gateway = build(make_config(PROTO_DESCRIPTOR_SET=str(studio.path)), reactor,
                    ThreadlessPool(reactor), open_channel=lambda endpoint: None)
    assert gateway.catalog.source == str(studio.path)
    assert sorted(gateway.catalog.methods) == sorted(studio.catalog.methods)


def _not_a_set(tmp_path) -> str:
    path = tmp_path / "random.pb"
    path.write_bytes(b"\xff" * 16)
    return str(path)


def _only_messages(tmp_path) -> str:
    proto = descriptor_pb2.FileDescriptorProto(name="types.proto", package="types")
    proto.message_type.add(name="Only")
    path = tmp_path / "types.pb"
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[proto]).SerializeToString())
    return str(path)


@pytest.mark.parametrize(("make", "said"), [
    (lambda tmp_path: str(tmp_path / "absent.pb"),
     "PROTO_DESCRIPTOR_SET: cannot read '{path}': No such file or directory"),
    (_not_a_set, "PROTO_DESCRIPTOR_SET: '{path}' is not a FileDescriptorSet (build one with: "
                 "python -m proto_gen PROTO_DIR -o FILE)"),
    (_only_messages, "PROTO_DESCRIPTOR_SET: no Cuebot-facing service in {path} (no unary "
                     "method outside RQD's services)"),
])
def test_a_bad_set_stops_start_up_with_one_line(tmp_path, make, said):
    """Unreadable, not a set, nothing to serve: one line naming the setting, before anything
    starts; a WORKERS supervisor checks it too, instead of starting N failing workers."""
    path = make(tmp_path)
    starts = (lambda: gateway_tree(make_config(PROTO_DESCRIPTOR_SET=path), ThreadlessReactor()),
              lambda: supervisor_tree(make_config(PROTO_DESCRIPTOR_SET=path, WORKERS="2"),
                                      ThreadlessReactor(), {}))
    for start in starts:
        with pytest.raises(ConfigError) as stopped:
            start()
        assert str(stopped.value) == said.format(path=path)
