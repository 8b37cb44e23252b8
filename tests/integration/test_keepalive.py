"""Keepalive against a server that enforces grpc-java's default ping policy (like Cuebot).

grpc-java allows a ping at most every 5 minutes and sends GOAWAY after more
than 2 early pings without data in between.  The Cuebot double is configured
the same way; a long call with a short KEEPALIVE_TIME must still succeed,
while a client that pings freely (the control) is cut off.  grpc's client
waits at least 1 s between pings, so the call lasts long enough (8 s) for a
free-pinging client to collect three strikes.
"""

from __future__ import annotations

import grpc
import pytest
import pytest_twisted
from opencue_proto import show_pb2

from tests.cuebot_double import CuebotDouble

JAVA_DEFAULTS = [
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 300_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_permit_without_calls", 0),
]
GET_SHOWS = "/show.ShowInterface/GetShows"


@pytest.fixture
def strict_cuebot(catalog):
    double = CuebotDouble(catalog, options=JAVA_DEFAULTS).start()
    double.behave(GET_SHOWS, delay=8.0)
    yield double
    double.stop()


def test_control_client_pinging_freely_is_cut_off(strict_cuebot):
    """Without the gateway's limits, frequent pings get the call killed: the double is strict."""
    channel = grpc.insecure_channel(strict_cuebot.address, options=[
        ("grpc.keepalive_time_ms", 200), ("grpc.http2.max_pings_without_data", 0),
    ])
    call = channel.unary_unary(
        GET_SHOWS, request_serializer=show_pb2.ShowGetShowsRequest.SerializeToString,
        response_deserializer=show_pb2.ShowGetShowsResponse.FromString)
    with pytest.raises(grpc.RpcError) as caught:
        call(show_pb2.ShowGetShowsRequest(), timeout=15)
    channel.close()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest_twisted.ensureDeferred
async def test_gateway_keepalive_survives_java_ping_policy(start_gateway, strict_cuebot):
    """The gateway's keepalive settings never trip grpc-java's too_many_pings GOAWAY."""
    gateway = start_gateway(CUEBOT_ENDPOINT=strict_cuebot.address, KEEPALIVE_TIME="200ms",
                            KEEPALIVE_TIMEOUT="1s")
    response = await gateway.post(GET_SHOWS)
    assert response.status == 200, response.body
