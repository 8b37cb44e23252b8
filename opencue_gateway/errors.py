"""Every failure the gateway reports, as a value, and the one function that renders it.

A request can fail at the HTTP edge, in authentication, in routing, in JSON
decoding or at Cuebot.  Each failure becomes a :class:`GatewayError` carrying a
gRPC status code, and :func:`render_error` turns it into the HTTP status,
headers and JSON body of COMPATIBILITY.md section 4, so no route writes an error
body by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import grpc
import orjson

# grpc-gateway v2's HTTPStatusFromCode table (runtime/errors.go), which clients
# of the Go gateway already rely on.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

# What a client sees when something unexpected broke inside the gateway: fixed
# text, because the exception's own text may hold anything (COMPATIBILITY.md
# section 2: never a stack trace in a body).  The log carries the details
# under the same incident id.
INTERNAL_MESSAGE = (
    "internal gateway error (incident {incident}); the gateway log has the details"
)


class GatewayError(Exception):
    """A failure to report to the client with a gRPC code and a safe message.

    ``message`` is sent to the client verbatim, so it must never contain a
    token, a secret or a raw exception string from a library.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        headers: dict[str, str] | None = None,
        http_status: int | None = None,
        kind: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        # Only for the few answers where HTTP has a better word than the
        # gRPC table: 405 for a wrong method, 413 for a body too large.
        self.http_status = http_status
        # A short fixed word for metrics labels (why a login failed, say).
        self.kind = kind

    def __repr__(self) -> str:
        return f"GatewayError({self.code.name}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class RenderedError:
    """An error ready to be written: HTTP status, extra headers and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes
    grpc_code: int


def render_error(error: GatewayError) -> RenderedError:
    """Turn an error into grpc-gateway's body shape plus the README's ``error`` key."""
    number = error.code.value[0]
    body = orjson.dumps(
        {"code": number, "message": error.message, "details": [], "error": error.message}
    )
    return RenderedError(
        status=error.http_status or HTTP_STATUS.get(error.code, 500),
        headers=error.headers,
        body=body,
        grpc_code=number,
    )



def reason_phrase(status: int) -> bytes:
    """The status line's reason phrase; Twisted's own table lacks 429 and 499."""
    return _PHRASES.get(status, b"Error")


_PHRASES = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_PHRASES[499] = b"Client Closed Request"


def write_error(request: Any, error: GatewayError) -> bytes:
    """Set a twisted.web request's status and headers for ``error``; return the body to write."""
    rendered = render_error(error)
    request.setResponseCode(rendered.status, reason_phrase(rendered.status))
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", str(len(rendered.body)).encode("ascii"))
    for name, value in rendered.headers.items():
        request.setHeader(name, value)
    return rendered.body


def raw_error_response(
    error: GatewayError, headers: Iterable[tuple[str, str]] = ()
) -> tuple[RenderedError, bytes]:
    """A whole HTTP/1.1 response for ``error`` that closes the connection, as bytes.

    For answers written straight to the transport, where Twisted's response
    machinery cannot be used: a request refused while it arrives (too large,
    too slow) or one Twisted could not parse at all.
    """
    rendered = render_error(error)
    lines = [
        f"HTTP/1.1 {rendered.status} {reason_phrase(rendered.status).decode('ascii')}",
        "Content-Type: application/json",
        f"Content-Length: {len(rendered.body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (*rendered.headers.items(), *headers)),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return rendered, head + rendered.body
