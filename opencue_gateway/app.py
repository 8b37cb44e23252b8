"""The Klein application: the order of the steps of a request, and nothing else.

Each step lives in its own module (auth, ratelimit, policy, catalog,
upstream, errors); this class composes them.  Every failure, expected or
not, leaves through :meth:`GatewayApp.on_error`, which renders it with
:func:`errors.write_error`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import orjson
from klein import Klein
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from opencue_gateway.audit import AuditLog
from opencue_gateway.auth import Authenticator, Principal
from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.compression import MIN_BYTES, accepts_gzip, gzip_body, request_encoding
from opencue_gateway.context import context_of
from opencue_gateway.errors import INTERNAL_MESSAGE, GatewayError, write_error
from opencue_gateway.fanin import FanIn
from opencue_gateway.health import Probe
from opencue_gateway.logs import logger
from opencue_gateway.metadata import forwarded_metadata, metadata_from_headers
from opencue_gateway.policy import Policy
from opencue_gateway.ratelimit import RateLimiter
from opencue_gateway.tracing import TRACE_HEADERS, OtelTracing
from opencue_gateway.upstream import CuebotClient, RpcResult
from opencue_gateway.watch import WatchHub, wants_stream

IGNORED_FIELDS_HEADER = b"Opencue-Gateway-Ignored-Fields"
JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class Page:
    """A GET endpoint of the gateway's own: its metrics label, content type, a function
    making (status, body), caching, and for fixed pages the body gzipped in advance."""

    label: str
    content_type: bytes
    render: Callable[[], tuple[int, bytes]]
    cache_control: bytes = b"no-store"
    gzipped: bytes | None = None


def probe_page(label: str, probe: Callable[[], Probe]) -> Page:
    """A health probe as a JSON page."""

    def render() -> tuple[int, bytes]:
        answer = probe()
        return answer.status, orjson.dumps(answer.body)

    return Page(label, JSON, render)


def static_page(
    label: str, content_type: bytes, body: bytes, cache_control: bytes = b"no-store"
) -> Page:
    """A page whose body never changes (configuration, API description, docs assets).

    Its gzip encoding is made once, here, so serving it costs no compression.
    """
    gzipped = gzip_body(body) if len(body) > MIN_BYTES else None
    return Page(label, content_type, lambda: (200, body), cache_control, gzipped)


class GatewayApp:
    """Routes ``POST /<package>.<Service>/<Method>`` to Cuebot, plus a few GET pages.

    The order matters and mirrors ARCHITECTURE.md: public pages first (probes
    carry no token), then authenticate (so an unknown path without a token is
    a 401, as with the Go gateway) and rate-limit, then resolve the method,
    authorize the principal's role for it, check the HTTP method, and call
    Cuebot, or, for ``Accept: text/event-stream``, open a watch (watch.py).
    CORS preflights never get here: the site answers them.
    """

    app = Klein()
    log = logger(__name__)

    def __init__(
        self,
        catalog: MethodCatalog,
        cuebot: CuebotClient,
        authenticator: Authenticator,
        policy: Policy,
        audit: AuditLog,
        clock: IReactorTime,
        watches: WatchHub,
        limiter: RateLimiter | None = None,
        public: dict[bytes, Page] | None = None,
        private: dict[bytes, Page] | None = None,
        tracing: OtelTracing | None = None,
        fanin: FanIn | None = None,
        on_shared: Callable[[str, str], None] = lambda rpc, kind: None,
        on_streamed: Callable[[str, str], None] = lambda rpc, outcome: None,
    ) -> None:
        self._catalog = catalog
        self._cuebot = cuebot
        self._authenticator = authenticator
        self.policy = policy
        self._audit = audit
        self._clock = clock
        self._limiter = limiter
        self._tracing = tracing
        self._fanin = fanin
        self._on_shared = on_shared
        self._on_streamed = on_streamed
        self._watches = watches
        # Pages served to anyone (probes, metrics, the API description) and
        # pages served to any authenticated caller (the configuration).
        self.public = dict(public or {})
        self.private = dict(private or {})

    def resource(self) -> IResource:
        """The Twisted resource serving this app."""
        return self.app.resource()

    @app.route("/", branch=True)
    async def handle(self, request: IRequest) -> bytes:
        """Serve one of the gateway's pages, or authenticate and forward one RPC."""
        is_get = request.method in (b"GET", b"HEAD")
        page = self.public.get(request.path)
        if page is not None and is_get:
            return self._serve(request, page)
        if self._tracing is not None:
            self._start_trace(request)
        principal = await self._authenticate(request)
        context_of(request).principal_sub = principal.sub
        page = self.private.get(request.path)
        if page is not None and is_get:
            return self._serve(request, page)
        method = self._catalog.resolve(request.path.decode("utf-8", "replace"))
        context_of(request).rpc = method.path[1:]
        if method.read_only:
            return await self._forward(request, principal, method)
        return await self._audited(request, principal, method)

    @staticmethod
    def _serve(request: IRequest, page: Page) -> bytes:
        """Write one of the gateway's pages with the status it chose."""
        context_of(request).rpc = page.label
        status, body = page.render()
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", page.content_type)
        request.setHeader(b"Cache-Control", page.cache_control)
        if page.gzipped is not None:
            request.setHeader(b"Vary", b"Accept-Encoding, Origin")
            if accepts_gzip(request.getHeader(b"accept-encoding")):
                request.setHeader(b"Content-Encoding", b"gzip")
                return page.gzipped
        return body

    def _start_trace(self, request: IRequest) -> None:
        """Open the request's server span; it closes with the request's final status."""
        assert self._tracing is not None
        headers = {name.decode("latin-1").lower(): values[0].decode("latin-1")
                   for name, values in request.requestHeaders.getAllRawHeaders()
                   if name.lower() in TRACE_HEADERS}
        context = context_of(request)
        span = self._tracing.start_request(
            f"{request.method.decode('latin-1')} {request.path.decode('latin-1')[:100]}", headers)
        context.trace_span = span
        request.notifyFinish().addBoth(
            lambda _: self._tracing.end_request(span, request.code, context.rpc))

    async def _authenticate(self, request: IRequest) -> Principal:
        """Log in, counting the request against the caller's rate-limit bucket.

        A failed login counts against the client address, so guessing tokens
        is throttled; a successful one against the principal's ``sub``.
        """
        client = context_of(request).client
        try:
            principal = await self._authenticator.authenticate(request.getHeader(b"authorization"))
        except GatewayError:
            self._rate_limit(request, f"addr:{client}")
            raise
        self._rate_limit(request, f"sub:{principal.sub}" if principal.sub else f"addr:{client}")
        return principal

    def _rate_limit(self, request: IRequest, key: str) -> None:
        """Spend a token of this caller's bucket (429 when empty) and say so in headers."""
        if self._limiter is None:
            return
        for name, value in self._limiter.check(key):
            request.setHeader(name, value)

    async def _audited(self, request: IRequest, principal: Principal, method: RpcMethod) -> bytes:
        """Forward a mutating call and record it in the audit log, whatever the outcome."""
        started = self._clock.seconds()
        code = grpc.StatusCode.INTERNAL
        try:
            body = await self._forward(request, principal, method)
            code = grpc.StatusCode.OK
            return body
        except GatewayError as error:
            code = error.code
            raise
        except CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            self._audit.record(principal, method, code, self._clock.seconds() - started,
                               context_of(request).client)

    async def _forward(self, request: IRequest, principal: Principal, method: RpcMethod) -> bytes:
        """The steps after routing: authorize, check the verb, call Cuebot, write the reply."""
        self.policy.check(principal.role, method)
        if request.method != b"POST":
            raise GatewayError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method.path} only answers POST, not {request.method.decode('latin-1')}",
                headers={"Allow": "POST"},
                http_status=405,
            )
        if wants_stream(request.getHeader(b"accept")):
            return await self._watch(request, principal, method)
        context = context_of(request)
        # The Cuebot call must end before HTTP_TIMEOUT cuts the connection, so
        # that a slow Cuebot still gets a JSON 504 rather than a reset.
        timeout = min(self._cuebot.deadline(request.getHeader(b"grpc-timeout")),
                      context.remaining(self._clock.seconds()))
        span, trace_context = None, None
        if self._tracing is not None:
            span, trace_context = self._tracing.start_call(context.trace_span, method.path)
        metadata = metadata_from_headers(
            request.requestHeaders.getAllRawHeaders(), context.client, principal.sub,
            context.request_id, trace_context,
        )
        body = request.content.getvalue()
        encoding = request_encoding(request.getHeader(b"content-encoding"))
        gzip = accepts_gzip(request.getHeader(b"accept-encoding"))

        def start() -> Deferred[RpcResult]:
            return self._cuebot.call(method, body, metadata, timeout, gzip, encoding)

        code = grpc.StatusCode.INTERNAL
        try:
            if self._fanin is not None and method.read_only:
                key = (method.path, body, encoding, gzip, request.getHeader(b"grpc-timeout"),
                       forwarded_metadata(request.requestHeaders.getAllRawHeaders()))
                answer = self._fanin.call(
                    key, start, lambda kind: self._on_shared(method.path[1:], kind))
            else:
                answer = start()
            # However the request ends first (the client leaves, HTTP_TIMEOUT answers 504),
            # the call is abandoned: never sent if still queued, cancelled if running.
            request.notifyFinish().addBoth(lambda _: answer.cancel())
            result = await answer
            code = grpc.StatusCode.OK
        except GatewayError as error:
            code = error.code
            raise
        finally:
            if span is not None:
                self._tracing.end_call(span, code)
        context.grpc_code = 0
        return await self._write_result(request, result)

    async def _write_result(self, request: IRequest, result: RpcResult) -> bytes:
        """Set the success headers; Klein writes the returned body.

        A large reply is written here as it is encoded, chunked (no
        Content-Length); Klein then only finishes the request.
        """
        self._set_headers(request, result)
        if result.stream is None:
            return result.body
        outcome = "error"
        try:
            await self._cuebot.send(request, result.stream)
            outcome = "complete"
        except CancelledError:
            left = context_of(request).remaining(self._clock.seconds())
            outcome = "client_gone" if left > 0 else "timeout"
            raise
        finally:
            self._on_streamed(context_of(request).rpc, outcome)
        return b""

    async def _watch(self, request: IRequest, principal: Principal, method: RpcMethod) -> bytes:
        """``Accept: text/event-stream``: a watch of a read-only method (watch.py)."""
        if not method.read_only:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{method.path[1:]} changes the farm and cannot be watched: only read-only "
                "methods answer Accept: text/event-stream")
        return await self._watches.open(request, principal, method)

    @staticmethod
    def _set_headers(request: IRequest, result: RpcResult) -> None:
        """The success headers: JSON, its length unless streamed, Cuebot's metadata."""
        request.setHeader(b"Content-Type", JSON)
        if result.stream is None:
            request.setHeader(b"Content-Length", str(len(result.body)).encode("ascii"))
        request.setHeader(b"Vary", b"Accept-Encoding, Origin")
        if result.gzipped:
            request.setHeader(b"Content-Encoding", b"gzip")
        for name, value in result.headers:
            request.responseHeaders.addRawHeader(name, value)
        if result.ignored_fields:
            request.setHeader(IGNORED_FIELDS_HEADER, ", ".join(result.ignored_fields))

    @app.handle_errors(Exception)
    def on_error(self, request: IRequest, failure: Failure) -> bytes | None:
        """Render every failure the same way; unexpected ones are logged with an incident id."""
        error = failure.value
        if not isinstance(error, GatewayError):
            incident = uuid.uuid4().hex[:12]
            self.log.failure("unexpected error (incident {incident})", failure, incident=incident)
            error = GatewayError(
                grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE.format(incident=incident)
            )
        context = context_of(request)
        context.grpc_code = error.code.value[0]
        context.failure = error.kind
        if request.startedWriting:
            # Half a response is already out; a second one would corrupt the stream.
            request.channel.transport.abortConnection()
            return None
        return write_error(request, error)

