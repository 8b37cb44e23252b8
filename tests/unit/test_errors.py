"""The error renderer: grpc-gateway's status table and body shape, one per gRPC code."""

from __future__ import annotations

import json

import grpc
import pytest

from opencue_gateway.errors import (
    HTTP_STATUS,
    GatewayError,
    raw_error_response,
    reason_phrase,
    render_error,
)

EXPECTED = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_code_maps_to_the_contract_status(name):
    """Every gRPC code renders with grpc-gateway's HTTP status and its number in the body."""
    code = grpc.StatusCode[name]
    rendered = render_error(GatewayError(code, "why"))
    assert rendered.status == EXPECTED[name]
    assert json.loads(rendered.body) == {
        "code": code.value[0], "message": "why", "details": [], "error": "why",
    }


def test_table_covers_every_code():
    """No gRPC code is missing from the table."""
    assert set(HTTP_STATUS) == set(grpc.StatusCode)


def test_http_status_override_and_headers():
    """A 405 keeps code 12 in the body and carries its headers."""
    rendered = render_error(GatewayError(grpc.StatusCode.UNIMPLEMENTED, "POST only",
                                         headers={"Allow": "POST"}, http_status=405))
    assert (rendered.status, rendered.headers, rendered.grpc_code) == (405, {"Allow": "POST"}, 12)


@pytest.mark.parametrize(("status", "phrase"), [
    (429, b"Too Many Requests"), (499, b"Client Closed Request"), (404, b"Not Found"),
    (431, b"Request Header Fields Too Large"),
])
def test_status_lines_carry_the_standard_phrase(status, phrase):
    """Twisted would print "Unknown Status" for 429 and 499."""
    assert reason_phrase(status) == phrase


def test_a_raw_error_response_is_a_whole_json_http_message():
    """Written straight to the socket: status line, JSON type, exact length, close, extras."""
    error = GatewayError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too big", http_status=413,
                         headers={"Retry-After": "1"})
    rendered, raw = raw_error_response(error, [("X-Request-Id", "abc")])
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 413 " + reason_phrase(413).decode()
    assert set(lines[1:]) == {"Content-Type: application/json", f"Content-Length: {len(body)}",
                              "Connection: close", "Retry-After: 1", "X-Request-Id: abc"}
    assert body == rendered.body and json.loads(body)["code"] == 8
