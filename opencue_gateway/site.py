"""The HTTP edge under the Klein app: the site every connection and request belongs to.

It carries the limits (MAX_REQUEST_BYTES, HTTP_TIMEOUT, HTTP_IDLE_TIMEOUT),
the CORS policy and the trusted proxies its requests apply (http_request.py)
and its connections (http_channel.py); it counts requests in progress and
open connections, so a drain can wait for answers and then close idle
connections; it answers URLs and Host headers Klein cannot decode in the
gateway's JSON; and it hands each finished request's record to the access
log and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from opencue_gateway.accesslog import RequestRecord
from opencue_gateway.cors import CorsPolicy
from opencue_gateway.errors import GatewayError, write_error
from opencue_gateway.http_channel import GatewayChannel
from opencue_gateway.http_request import GatewayRequest
from opencue_gateway.proxies import TrustedProxies


class RequestObserver(Protocol):
    """Who hears about requests: the access log and the metrics."""

    def started(self) -> None:
        """A request is being processed."""

    def finished(self, record: RequestRecord, was_processing: bool) -> None:
        """A request is over."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The HTTP-level limits of a site."""

    max_request_bytes: int
    request_timeout: float
    idle_timeout: float


class ErrorResource(Resource):
    """A leaf that answers every request with one error, rendered the gateway's way."""

    isLeaf = True

    def __init__(self, error: GatewayError) -> None:
        super().__init__()
        self._error = error

    def render(self, request: Request) -> bytes:
        """Write the status, headers and JSON body of the error."""
        return write_error(request, self._error)


class GatewaySite(Site):
    """A Site carrying the gateway's HTTP limits and CORS policy, and what a drain needs.

    ``active_requests`` counts requests being processed (received, not yet
    finished) and ``channels`` holds open connections, so a drain can wait
    for answers to go out and then close idle keep-alive connections.
    """

    requestFactory = GatewayRequest
    protocol = GatewayChannel

    def __init__(
        self, resource: IResource, limits: HttpLimits, cors: CorsPolicy | None, reactor: Any,
        observer: RequestObserver | None = None, proxies: TrustedProxies | None = None,
    ) -> None:
        # No form parsing: Twisted would parse every POST body with a form
        # content type as a form (curl's default: JSON read as a query
        # string), and the content type with the email package, on the
        # reactor thread; the gateway reads bodies as JSON only.
        super().__init__(resource, timeout=limits.idle_timeout, reactor=reactor,
                         parsePOSTFormSubmission=False)
        self.limits = limits
        self.cors = cors
        self.observer = observer
        self.proxies = proxies or TrustedProxies(())
        # Set when a drain begins: from then on every answer closes its connection.
        self.draining = False
        self.channels: set[GatewayChannel] = set()
        self._processing: set[GatewayRequest] = set()

    @property
    def active_requests(self) -> int:
        """Requests received in full and not yet answered."""
        return len(self._processing)

    def is_processing(self, request: GatewayRequest) -> bool:
        """Has this request been received in full (so a route is working on it)?"""
        return request in self._processing

    def getResourceFor(self, request: Request) -> IResource:
        """Answer URLs Klein cannot decode with the gateway's JSON 400, not Klein's text one."""
        for what, raw in (("URL", b"/".join(request.postpath)),
                          ("Host header", request.getRequestHostname())):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return ErrorResource(GatewayError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"the {what} is not valid UTF-8"))
        return super().getResourceFor(request)

    def request_started(self, request: GatewayRequest) -> None:
        """Count a request until it finishes or its connection is lost."""
        self._processing.add(request)
        if self.observer is not None:
            self.observer.started()

    def request_over(self, request: GatewayRequest, answered: bool) -> None:
        """A request ended: stop counting it and report it."""
        was_processing = request in self._processing
        self._processing.discard(request)
        if self.observer is not None and (was_processing or request.code != 200):
            self.observer.finished(request.record(answered), was_processing)

    def log(self, request: Request) -> None:
        """Twisted's own combined-log line is replaced by the gateway's access log."""

    def close_idle_connections(self) -> None:
        """Close every connection once its pending writes are flushed."""
        for channel in list(self.channels):
            channel.loseConnection()
