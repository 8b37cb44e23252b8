"""Upstream helpers: Grpc-Timeout, request metadata, response headers, channel options."""

from __future__ import annotations

from urllib.parse import unquote

import grpc
import pytest

from opencue_gateway.errors import GatewayError
from opencue_gateway.grpc_channel import channel_options
from opencue_gateway.metadata import (
    PRINCIPAL_KEY,
    metadata_from_headers,
    parse_grpc_timeout,
    percent_encode,
    response_headers,
)
from tests.conftest import make_config


@pytest.mark.parametrize(("value", "seconds"), [
    (b"10S", 10), (b"500m", 0.5), (b"2M", 120), (b"1H", 3600), (b"250000u", 0.25),
    (b"99999999n", 0.099999999),
])
def test_grpc_timeout_wire_format(value, seconds):
    """Grpc-Timeout is digits and one unit letter, as on the gRPC wire."""
    assert parse_grpc_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"10", b"10s", b"S", b"123456789S", b"-1S"])
def test_bad_grpc_timeout_is_400(value):
    """Anything else is a 400 explaining the format."""
    with pytest.raises(GatewayError) as caught:
        parse_grpc_timeout(value)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def headers(**pairs: str) -> list[tuple[bytes, list[bytes]]]:
    return [(k.replace("_", "-").encode(), [v.encode()]) for k, v in pairs.items()]


def test_metadata_headers_are_forwarded_and_credentials_are_not():
    """Grpc-Metadata-* pass through; Authorization, Cookie and grpc-* keys never do."""
    metadata = dict(metadata_from_headers(
        headers(Grpc_Metadata_Shot="s1", Authorization="Bearer t", Cookie="c=1",
                Grpc_Metadata_Authorization="Bearer t", Grpc_Metadata_Cookie="c",
                Grpc_Metadata_Grpc_Timeout="1S", Host="gw:8448"),
        "10.0.0.5", "ann"))
    assert metadata == {"shot": "s1", "x-forwarded-for": "10.0.0.5",
                        "x-forwarded-host": "gw:8448", PRINCIPAL_KEY: "ann"}


def test_forwarded_for_is_appended():
    """The client address is appended to an existing X-Forwarded-For chain."""
    metadata = dict(metadata_from_headers(headers(X_Forwarded_For="1.1.1.1"), "2.2.2.2", ""))
    assert metadata["x-forwarded-for"] == "1.1.1.1, 2.2.2.2"
    assert PRINCIPAL_KEY not in metadata


def test_binary_metadata_is_base64_decoded():
    """-bin keys carry base64 over HTTP and bytes over gRPC."""
    metadata = dict(metadata_from_headers(headers(Grpc_Metadata_Trace_Bin="AAE="), None, ""))
    assert metadata["trace-bin"] == b"\x00\x01"


@pytest.mark.parametrize("pairs", [{"Grpc_Metadata_Trace_Bin": "***"},
                                   {"Grpc_Metadata_Note": "caf\xe9"}])
def test_unusable_metadata_is_400(pairs):
    """Values gRPC metadata cannot carry are a 400 naming the header."""
    with pytest.raises(GatewayError) as caught:
        metadata_from_headers(headers(**pairs), None, "")
    assert "Grpc-Metadata-" in caught.value.message


@pytest.mark.parametrize(("sub", "sent"), [
    ("ann", "ann"), ("svc-account@studio.example", "svc-account@studio.example"),
    ("José", "Jos%C3%A9"), ("田中", "%E7%94%B0%E4%B8%AD"), ("100%", "100%25"),
    ("a\nb\x7f\x85", "a%0Ab%7F%C2%85"), ("~ !", "~ !"),
])
def test_the_sub_is_percent_encoded_as_grpc_encodes_grpc_message(sub, sent):
    """Any sub reaches Cuebot as printable ASCII; percent-decoding gives it back exactly."""
    metadata = dict(metadata_from_headers([], None, sub))
    assert metadata[PRINCIPAL_KEY] == sent == percent_encode(sub)
    assert unquote(sent) == sub


@pytest.mark.parametrize(("name", "value", "named"), [
    (b"X-Forwarded-For", b"1.2.3.4\x01", "the X-Forwarded-For header"),
    (b"X-Forwarded-For", b"caf\xc3\xa9", "the X-Forwarded-For header"),
    (b"X-Forwarded-For", b"a\tb", "the X-Forwarded-For header"),
    (b"Host", b"h\xc3\xa9:8448", "the Host header"),
    (b"Host", b"h\x7f", "the Host header"),
    (b"Grpc-Metadata-Note", b"a\x1bb", "Grpc-Metadata-note"),
])
def test_headers_metadata_cannot_carry_are_400(name, value, named):
    """Client headers with characters outside printable ASCII are a 400 naming the header."""
    with pytest.raises(GatewayError) as caught:
        metadata_from_headers([(name, [value])], None, "")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == (
        f"{named} holds characters gRPC metadata cannot carry (only printable ASCII)")


def test_a_tracestate_metadata_cannot_carry_is_dropped():
    """A non-ASCII tracestate is dropped, as a malformed traceparent is; the call goes on."""
    parent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    metadata = dict(metadata_from_headers(
        [(b"traceparent", [parent]), (b"tracestate", ["v=caf\u00e9".encode()])], None, ""))
    assert metadata["traceparent"] == parent.decode() and "tracestate" not in metadata


def test_response_metadata_becomes_headers():
    """Cuebot's metadata comes back as Grpc-Metadata-* and Grpc-Trailer-* headers."""
    assert response_headers([("x-a", "1"), ("x-b-bin", b"\x00")], [("x-t", "2")]) == [
        ("Grpc-Metadata-x-a", "1"), ("Grpc-Metadata-x-b-bin", "AA=="), ("Grpc-Trailer-x-t", "2"),
    ]


def test_channel_options_respect_java_keepalive_policy():
    """Never ping idle connections, at most two pings between data frames, limits applied."""
    options = dict(channel_options(make_config(KEEPALIVE_TIME="45s", GRPC_MAX_RECV_MSG_MB="8")))
    assert options["grpc.keepalive_time_ms"] == 45000
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.http2.max_pings_without_data"] == 2
    assert options["grpc.max_receive_message_length"] == 8 * 1024 * 1024
