"""One access-log line per request, in text or JSON (LOG_FORMAT).

The line carries the time, the client address, the principal's ``sub``, the
HTTP method and path, the RPC, the HTTP status and gRPC code, the duration,
the bytes in and out, the request id and the W3C ``traceparent``; for a watch
stream, logged when it ends, also the number of events it sent.  Never a
header value beyond those: no token, no cookie.  Every text in the line is
escaped (:func:`opencue_gateway.logs.escape`): a ``sub`` or a path holding a
newline or a terminal escape cannot forge a line; the JSON ``access`` record
keeps the exact values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from twisted.logger import LogLevel

from opencue_gateway.logs import escape, is_enabled, logger

NAMESPACE = "opencue_gateway.access"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What is known about a request once it is over."""

    client: str | None
    principal: str
    http_method: str
    path: str
    rpc: str
    status: int
    grpc_code: int | None
    duration_ms: float
    bytes_in: int
    bytes_out: int
    request_id: str
    traceparent: str | None
    failure: str  # why a 401/403 happened, in one fixed word; "" otherwise
    events: int | None = None  # events a watch stream sent; None for other requests


class AccessLog:
    """Emits access records on their own logger, so they can be routed or silenced."""

    def __init__(self) -> None:
        self._log = logger(NAMESPACE)

    def record(self, record: RequestRecord) -> None:
        """Log one request; the JSON observer serialises the ``access`` field as is.

        Nothing is built when LOG_LEVEL hides access lines: this runs for
        every request.
        """
        if not is_enabled(NAMESPACE, LogLevel.info):
            return
        self._log.info(
            _LINE if record.events is None else _LINE + " events={events}",
            access={name: getattr(record, name) for name in _FIELDS},
            client=escape(record.client or "-"),
            principal=escape(record.principal or "-"),
            http_method=escape(record.http_method),
            path=escape(record.path),
            status=record.status,
            grpc_code="-" if record.grpc_code is None else record.grpc_code,
            duration_ms=record.duration_ms,
            bytes_in=record.bytes_in,
            bytes_out=record.bytes_out,
            request_id=escape(record.request_id or "-"),
            traceparent=escape(record.traceparent or "-"),
            events=record.events,
        )


_LINE = ('{client} {principal} "{http_method} {path}" {status} grpc={grpc_code} '
         "{duration_ms}ms in={bytes_in} out={bytes_out} id={request_id} trace={traceparent}")
_FIELDS = tuple(f.name for f in fields(RequestRecord))
