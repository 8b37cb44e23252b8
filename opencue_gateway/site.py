"""The HTTP layer under the Klein app: limits that must act before a body is read.

A body larger than MAX_REQUEST_BYTES is refused with 413 as soon as its
Content-Length (or, for chunked uploads, its running total) passes the limit,
before it is buffered, so a huge upload costs neither memory nor disk.
Bodies are kept in memory (never Twisted's temporary files): the limit
bounds them, and the reactor thread must not do disk I/O.
"""

from __future__ import annotations

import io

import grpc
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from opencue_gateway.errors import GatewayError, render_error, write_error


class GatewayRequest(Request):
    """A request that enforces the site's body-size limit while the body arrives."""

    _received = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        """Refuse a declared body over the limit before any of it is read."""
        self.content = io.BytesIO()
        if length is not None and length > self._limit():
            # No "100 Continue" for a body we will not take (HTTPChannel sends
            # it right after this method when the client asked for it).
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()

    def handleContentChunk(self, data: bytes) -> None:
        """Count chunked bodies as they come and stop at the limit."""
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Skip processing of a refused request; its answer is already on the wire."""
        if self._refused:
            return
        self.channel.site.request_started(self)
        super().requestReceived(command, path, version)

    def _limit(self) -> int:
        """The limit configured on the site this request arrived at."""
        return self.channel.site.max_request_bytes

    def _refuse(self) -> None:
        """Write a 413 in the gateway's JSON error shape and close the connection.

        The response is written raw because the request has not been parsed
        far enough for Twisted's response machinery, and the connection must
        close: the rest of the body is still on its way.
        """
        self._refused = True
        error = render_error(
            GatewayError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request body is larger than the {self._limit()}-byte limit "
                "(MAX_REQUEST_BYTES)",
                http_status=413,
            )
        )
        head = (
            f"HTTP/1.1 {error.status} Payload Too Large\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(error.body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.channel.transport.write(head.encode("ascii") + error.body)
        self.channel.loseConnection()


class ErrorResource(Resource):
    """A leaf that answers every request with one error, rendered the gateway's way."""

    isLeaf = True

    def __init__(self, error: GatewayError) -> None:
        super().__init__()
        self._error = error

    def render(self, request: Request) -> bytes:
        """Write the status, headers and JSON body of the error."""
        return write_error(request, self._error)


class GatewayChannel(HTTPChannel):
    """An HTTP connection that its site can find again to close it during a drain."""

    def connectionMade(self) -> None:
        """Register with the site."""
        super().connectionMade()
        self.site.channels.add(self)

    def connectionLost(self, reason: Failure) -> None:
        """Unregister from the site."""
        self.site.channels.discard(self)
        super().connectionLost(reason)


class GatewaySite(Site):
    """A Site carrying the gateway's HTTP limits, and what a graceful stop needs to know.

    ``active_requests`` counts requests being processed (received, not yet
    finished) and ``channels`` holds open connections, so a drain can wait
    for answers to go out and then close idle keep-alive connections.
    """

    requestFactory = GatewayRequest
    protocol = GatewayChannel

    def __init__(self, resource: IResource, max_request_bytes: int) -> None:
        super().__init__(resource)
        self.max_request_bytes = max_request_bytes
        self.active_requests = 0
        self.channels: set[GatewayChannel] = set()

    def getResourceFor(self, request: Request) -> IResource:
        """Answer URLs Klein cannot decode with the gateway's JSON 400, not Klein's text one."""
        try:
            b"/".join(request.postpath).decode("utf-8")
            request.getRequestHostname().decode("utf-8")
        except UnicodeDecodeError:
            return ErrorResource(
                GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "the URL is not valid UTF-8")
            )
        return super().getResourceFor(request)

    def request_started(self, request: Request) -> None:
        """Count a request until it finishes or its connection is lost."""
        self.active_requests += 1
        request.notifyFinish().addBoth(self._request_done)

    def _request_done(self, result: object) -> None:
        """One fewer request in progress (the result, even a lost connection, is not ours)."""
        self.active_requests -= 1

    def close_idle_connections(self) -> None:
        """Close every connection once its pending writes are flushed."""
        for channel in list(self.channels):
            channel.loseConnection()
