"""One HTTP connection: its header deadline, its framing checks, and its part in a drain.

- Header deadline: HTTP_TIMEOUT counts from the first byte of a request, the
  request line included, as nginx's ``client_header_timeout``, Envoy's
  ``request_headers_timeout`` and Go's ``ReadHeaderTimeout`` do.  A client
  sending its request line a byte at a time is cut off with 408; the idle
  timer alone, reset by every byte, would never end it.
- Framing: requests Twisted cannot parse get the gateway's JSON 400 (Twisted
  writes a bare status line), over-long lines 414/431 (Twisted answers
  nothing), header lines ending in a bare LF 400 at once (Twisted would wait
  for a CRLF that never comes), and a chunk size past MAX_REQUEST_BYTES 413 at
  once (Twisted would wait for the chunk).
- Drain: the site tracks every connection, and once it is draining no
  connection is kept alive after its current answer.
"""

from __future__ import annotations

from typing import Any

import grpc
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from opencue_gateway.errors import GatewayError, raw_error_response
from opencue_gateway.twisted_private import (
    BadRequestHook,
    pending_chunk_bytes,
    reading_request_line,
)

# Bytes kept from the previous read, so a CRLF split across two reads is seen whole.
_TAIL = 4
_HEADER_END = b"\r\n\r\n"


class GatewayChannel(BadRequestHook):
    """An HTTP connection of the gateway's site."""

    _began: float | None = None
    _header_timer: IDelayedCall | None = None
    _tail = b""

    def connectionMade(self) -> None:
        """Register with the site."""
        super().connectionMade()
        self.site.channels.add(self)

    def connectionLost(self, reason: Failure) -> None:
        """Unregister from the site; no header deadline outlives its connection."""
        self._stop_header_timer()
        self.site.channels.discard(self)
        super().connectionLost(reason)

    def dataReceived(self, data: bytes) -> None:
        """Start a new request's deadline at its first byte; check its framing as it comes."""
        if self.line_mode and data:
            if self._began is None:
                self._start_header_timer()
            if self._bare_lf(data):
                self._refuse(GatewayError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "malformed HTTP request: header lines must end with CRLF (RFC 9112 "
                    "section 2.2)"))
                return
        super().dataReceived(data)
        pending = pending_chunk_bytes(self)
        if pending is not None and self.requests:
            self.requests[-1].expect_chunk(pending)

    def request_began(self) -> float:
        """A request object now exists (its request line arrived): it takes over the deadline.

        Returns when its first byte arrived, from which HTTP_TIMEOUT counts.
        """
        began = self._began if self._began is not None else self.site.reactor.seconds()
        self._stop_header_timer()
        return began

    def requestDone(self, request: Any) -> None:
        """An answer went out: the next byte starts the next request's deadline."""
        self._began = None
        self._tail = b""
        super().requestDone(request)

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        """Keep the connection alive after this answer, unless the gateway is draining."""
        if self.site.draining:
            request.responseHeaders.setRawHeaders(b"Connection", [b"close"])
            return False
        return super().checkPersistence(request, version)

    def bad_request(self) -> None:
        """Every request Twisted cannot parse: 400 in JSON, then close."""
        self._refuse(GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "malformed HTTP request: invalid request line, header or body framing "
            f"(Content-Length, Transfer-Encoding), or headers over {self.totalHeadersSize} "
            f"bytes or {self.maxHeaders} lines",
        ))

    def lineLengthExceeded(self, line: bytes) -> None:
        """A request line (414) or header line (431) longer than Twisted's limit."""
        if reading_request_line(self):
            what, status = "the request line (method and URL)", 414
        else:
            what, status = "a header line", 431
        self._refuse(GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{what} is longer than {self.MAX_LENGTH} bytes", http_status=status,
        ))

    def _start_header_timer(self) -> None:
        reactor = self.site.reactor
        self._began = reactor.seconds()
        self._header_timer = reactor.callLater(self.site.limits.request_timeout,
                                               self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None and self._header_timer.active():
            self._header_timer.cancel()
        self._header_timer = None

    def _headers_too_slow(self) -> None:
        """HTTP_TIMEOUT passed and the request line is still not complete: 408, close."""
        self._header_timer = None
        self._refuse(GatewayError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "the request was not received within HTTP_TIMEOUT", http_status=408))

    def _bare_lf(self, data: bytes) -> bool:
        """Does the header section so far hold a line ending in LF without CR?"""
        seen = self._tail + data
        end = seen.find(_HEADER_END)
        region = seen[:end] if end >= 0 else seen
        self._tail = seen[-_TAIL:]
        # Every LF that follows a CR is one CRLF; counting both stays in C on every read.
        leading = 1 if region[:1] == b"\n" else 0
        return region.count(b"\n") - leading > region.count(b"\r\n")

    def _refuse(self, error: GatewayError) -> None:
        """Answer ``error`` and close: the connection's state is past recovery."""
        self._stop_header_timer()
        _, response = raw_error_response(error)
        self.transport.write(response)
        self.loseConnection()
