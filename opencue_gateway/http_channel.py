"""One HTTP connection: tracked for the drain, and refusing unparseable requests in JSON.

Twisted answers a request it cannot parse with a bare status line, and an
over-long line with no answer at all; the gateway answers both in its JSON
error shape (COMPATIBILITY.md section 4) and closes the connection, whose
state is then past recovery.
"""

from __future__ import annotations

import grpc
from twisted.python.failure import Failure

from opencue_gateway.errors import GatewayError, raw_error_response
from opencue_gateway.twisted_private import BadRequestHook, reading_request_line


class GatewayChannel(BadRequestHook):
    """An HTTP connection that its site can find again to close it during a drain."""

    def connectionMade(self) -> None:
        """Register with the site."""
        super().connectionMade()
        self.site.channels.add(self)

    def connectionLost(self, reason: Failure) -> None:
        """Unregister from the site."""
        self.site.channels.discard(self)
        super().connectionLost(reason)

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

    def _refuse(self, error: GatewayError) -> None:
        """Answer ``error`` and close: the connection's state is past recovery."""
        _, response = raw_error_response(error)
        self.transport.write(response)
        self.loseConnection()
