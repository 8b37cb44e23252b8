"""One HTTP request at the gateway's edge, while it arrives and until it is over.

- Body size: a body larger than MAX_REQUEST_BYTES is refused with 413 as
  soon as its Content-Length (or, chunked, its running total, or the size a
  chunk announces) passes the limit, before it is buffered.  Bodies are kept
  in memory, never in Twisted's temporary files: the limit bounds them, and
  the reactor thread must not do disk I/O.
- Time: HTTP_TIMEOUT bounds a whole request from its first byte (which the
  channel saw) to its last (a client that sends half a body and stalls is
  cut off with 408; a call still running gets 504).
- Request ids: ``X-Request-Id`` is taken from the client when sane, generated
  otherwise, and echoed on every response.
- Host: an HTTP/1.1 request without exactly one Host header is refused.
- CORS: preflights are answered here, before authentication; actual
  responses get the CORS headers (see cors.py).
- Draining: once the site drains, every answer closes its connection.
- Observation: when the request is over (answered, refused or abandoned), it
  builds one :class:`RequestRecord` for the access log and metrics from its
  :class:`~opencue_gateway.context.RequestContext`.
"""

from __future__ import annotations

import io
import re
import uuid
from typing import Any, Protocol

import grpc
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from opencue_gateway.accesslog import RequestRecord
from opencue_gateway.context import RequestContext, context_of
from opencue_gateway.cors import CorsPolicy
from opencue_gateway.errors import GatewayError, raw_error_response, write_error
from opencue_gateway.proxies import TrustedProxies
from opencue_gateway.tracing import valid_traceparent
from opencue_gateway.twisted_private import request_line

REQUEST_ID_HEADER = b"X-Request-Id"
# nginx's status for "the client went away before the answer".
CLIENT_CLOSED = 499
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}\Z")
_METADATA_HEADER = re.compile(r"grpc-(metadata|trailer)-", re.IGNORECASE)


class EdgeSite(Protocol):
    """What a request needs of its site (site.GatewaySite is one)."""

    limits: Any  # HttpLimits: max_request_bytes, request_timeout, idle_timeout
    cors: CorsPolicy | None
    proxies: TrustedProxies
    reactor: Any
    draining: bool

    def request_started(self, request: GatewayRequest) -> None:
        """The request has arrived whole and is being processed."""

    def request_over(self, request: GatewayRequest, answered: bool) -> None:
        """The request ended."""

    def is_processing(self, request: GatewayRequest) -> bool:
        """Has this request arrived whole (so a route is working on it)?"""



class GatewayRequest(Request):
    """A request that enforces the site's limits while it arrives."""

    _received = 0
    _refused = False
    _timed_out = False
    _lost = False
    # Twisted only sets method and path once the whole request has arrived.
    _parsed = False

    def __init__(self, channel: HTTPChannel, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        # Twisted drops ``self.channel`` when a request finishes; the site is
        # still needed then (to report the request), so keep it.
        self.gateway_site: EdgeSite = channel.site
        site = self.gateway_site
        self._context = context_of(self)
        # HTTP_TIMEOUT counts from the request's first byte, which the channel saw.
        self.started_at = channel.request_began()
        self._context.deadline = self.started_at + site.limits.request_timeout
        # A Unix socket's peer has no host: the access log then shows "-".
        self._peer: str | None = getattr(self.getClientAddress(), "host", None)
        self._context.client = self._peer
        self._request_line = (b"-", b"-")
        self._timer: IDelayedCall | None = site.reactor.callLater(
            max(0.0, self._context.deadline - site.reactor.seconds()), self._expire
        )
        self.notifyFinish().addBoth(self._over)

    def gotLength(self, length: int | None) -> None:
        """Refuse a declared body over the limit before any of it is read."""
        self.content = io.BytesIO()
        if length is not None and length > self._limit():
            # No "100 Continue" for a body we will not take (HTTPChannel sends
            # it right after this method when the client asked for it).
            self.requestHeaders.removeHeader(b"expect")
            self._refuse_too_large()

    def expect_chunk(self, pending: int) -> None:
        """A chunk was announced: refuse it now if it cannot fit, not after waiting for it."""
        if self._refused:
            return
        if pending >= 2**64:
            self._refused = True
            self._respond_and_close(GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "malformed HTTP request: a chunk size larger than 64 bits"))
        elif self._received + pending > self._limit():
            self._refuse_too_large()

    def handleContentChunk(self, data: bytes) -> None:
        """Count chunked bodies as they come and stop at the limit."""
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse_too_large()
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Skip processing of a refused request; its answer is already on the wire."""
        if self._refused:
            return
        self._parsed = True
        self.gateway_site.request_started(self)
        super().requestReceived(command, origin_form(path), version)

    def process(self) -> None:
        """Give the request its id and client, check Host, answer CORS preflights, render."""
        self._context.request_id = self._pick_request_id()
        self.setHeader(REQUEST_ID_HEADER, self._context.request_id)
        self._context.client = self.gateway_site.proxies.client(self._peer, self.requestHeaders)
        host_problem = self._host_problem()
        if host_problem is not None:
            self.write(write_error(self, GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                                                      host_problem)))
            self.finish()
            return
        cors = self.gateway_site.cors
        if cors is not None:
            origin = self._header_text(b"origin")
            if cors.is_preflight(self.method, origin,
                                 self._header_text(b"access-control-request-method")):
                self._answer_preflight(cors, origin)
                return
            self._context.cors_origin = origin
            for name, value in cors.response_headers(origin):
                self.setHeader(name, value)
        super().process()

    def write(self, data: bytes) -> None:
        """Before the headers go out: close after this answer when draining, and let
        browsers read Cuebot's metadata headers too.

        After a timeout answer, a late answer from the route is dropped.
        """
        if self._timed_out:
            return
        if not self.startedWriting and self.gateway_site.draining:
            self.setHeader(b"Connection", b"close")
            self.channel.persistent = False
        cors, origin = self.gateway_site.cors, self._context.cors_origin
        if not self.startedWriting and cors is not None and origin:
            names = [n.decode("latin-1") for n, _ in self.responseHeaders.getAllRawHeaders()]
            metadata = [name for name in names if _METADATA_HEADER.match(name)]
            if metadata:
                for name, value in cors.response_headers(origin, metadata):
                    self.setHeader(name, value)
        super().write(data)

    def begin_stream(self) -> None:
        """A watch stream's head goes out: from now on HTTP_TIMEOUT no longer applies.

        It bounded the request's arrival and its wait for the first answer;
        the stream itself lives until it ends (watch.py).
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def connectionLost(self, reason: Failure) -> None:
        """Remember that the client went away (the answer, if any, was not delivered)."""
        self._lost = True
        super().connectionLost(reason)

    def _host_problem(self) -> str | None:
        """RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host header."""
        hosts = self.requestHeaders.getRawHeaders(b"host") or []
        if len(hosts) > 1:
            return "malformed HTTP request: more than one Host header"
        if not hosts and self.clientproto == b"HTTP/1.1":
            return "malformed HTTP request: HTTP/1.1 requires a Host header"
        return None

    def _answer_preflight(self, cors: CorsPolicy, origin: str | None) -> None:
        """204 with the preflight headers (none for a disallowed origin), no body, no login."""
        self.setResponseCode(204)
        for name, value in cors.preflight_headers(
            origin, self._header_text(b"access-control-request-headers")
        ):
            self.setHeader(name, value)
        self.finish()

    def _header_text(self, name: bytes) -> str | None:
        value = self.getHeader(name)
        return value.decode("latin-1") if value is not None else None

    def _pick_request_id(self) -> str:
        """The client's X-Request-Id when it is short and plain, else a new one."""
        given = self.getHeader(REQUEST_ID_HEADER)
        if given is not None and _SANE_REQUEST_ID.match(given):
            return given.decode("ascii")
        return uuid.uuid4().hex

    def _limit(self) -> int:
        """The limit configured on the site this request arrived at."""
        return self.gateway_site.limits.max_request_bytes

    def _refuse_too_large(self) -> None:
        """413 in the gateway's JSON error shape, then close: more body is still coming."""
        self._refused = True
        self._respond_and_close(GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the request body is larger than the {self._limit()}-byte limit "
            "(MAX_REQUEST_BYTES)",
            http_status=413,
        ))

    def _expire(self) -> None:
        """HTTP_TIMEOUT passed: answer 408 or 504 if nothing was written yet, else cut it off.

        408 while the request is still arriving; 504 while it is being
        processed (the route's own answer, when it comes, is then dropped);
        a connection whose answer is half written is aborted.
        """
        self._timer = None
        if self.finished or self._lost:
            return
        if self.startedWriting:
            self.channel.transport.abortConnection()
        elif not self.gateway_site.is_processing(self):
            self._refused = True
            self._respond_and_close(GatewayError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the request was not received within HTTP_TIMEOUT",
                http_status=408,
            ))
        else:
            body = write_error(self, GatewayError(
                grpc.StatusCode.DEADLINE_EXCEEDED, "the request took longer than HTTP_TIMEOUT"))
            super().write(body)
            self.finish()
            self._timed_out = True

    def _respond_and_close(self, error: GatewayError) -> None:
        """Write a complete error response by hand and close the connection.

        Written raw because the request may not be parsed far enough for
        Twisted's response machinery.  It still carries a request id and, for
        an allowed origin, the CORS headers: a browser can read why it was
        refused, and the access log line names the id.
        """
        self._request_line = request_line(self.channel)
        self._context.request_id = self._pick_request_id()
        headers = [(REQUEST_ID_HEADER.decode("ascii"), self._context.request_id)]
        cors = self.gateway_site.cors
        if cors is not None:
            headers += cors.response_headers(self._header_text(b"origin"))
        rendered, response = raw_error_response(error, headers)
        self.code = rendered.status
        self._context.grpc_code = rendered.grpc_code
        self.sentLength = len(rendered.body)
        self.channel.transport.write(response)
        self.channel.loseConnection()

    def _over(self, result: object) -> None:
        """The request is over (answered or disconnected): no timeout, and tell the observer."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.gateway_site.request_over(self, answered=not self._lost or self._refused)

    def record(self, answered: bool) -> RequestRecord:
        """What the access log and the metrics need to know about this request."""
        context: RequestContext = self._context
        command, path = (self.method, self.path) if self._parsed else self._request_line
        return RequestRecord(
            client=context.client,
            principal=context.principal_sub,
            http_method=command.decode("latin-1"),
            path=path.split(b"?", 1)[0].decode("latin-1")[:200],
            rpc=context.rpc,
            # A stream's status went out with its first event, however it ends.
            status=self.code if answered or context.stream_events is not None
            else CLIENT_CLOSED,
            grpc_code=context.grpc_code,
            duration_ms=round((self.gateway_site.reactor.seconds() - self.started_at) * 1000, 3),
            bytes_in=self._received,
            bytes_out=self.sentLength,
            request_id=context.request_id,
            traceparent=valid_traceparent(self._header_text(b"traceparent")),
            failure=context.failure,
            events=context.stream_events,
        )


def origin_form(target: bytes) -> bytes:
    """The path and query of a request target, also when it came in absolute form.

    RFC 9112 section 3.2.2: a server must accept ``POST http://host/pkg.Svc/M``
    (what clients configured with a proxy send); routing needs only the path.
    """
    scheme, separator, rest = target.partition(b"://")
    if not separator or scheme.lower() not in (b"http", b"https"):
        return target
    start = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    tail = rest[start:]
    return tail if tail.startswith(b"/") else b"/" + tail
