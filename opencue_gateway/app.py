"""The Klein application: the order of the steps of a request, and nothing else.

Each step lives in its own module (auth, catalog, upstream, errors); this
class composes them.  Every failure, expected or not, leaves through
:meth:`GatewayApp.on_error`, which renders it with :func:`errors.render_error`.
"""

from __future__ import annotations

import uuid

import grpc
from klein import Klein
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from opencue_gateway.audit import AuditLog
from opencue_gateway.auth import Authenticator, Principal
from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.errors import INTERNAL_MESSAGE, GatewayError, write_error
from opencue_gateway.logs import logger
from opencue_gateway.policy import Policy
from opencue_gateway.upstream import CuebotClient, RpcResult, metadata_from_headers

IGNORED_FIELDS_HEADER = b"Opencue-Gateway-Ignored-Fields"
JSON = b"application/json"


class GatewayApp:
    """Routes ``POST /<package>.<Service>/<Method>`` to Cuebot.

    The order matters and mirrors ARCHITECTURE.md: authenticate first (so an
    unknown path without a token is a 401, as with the Go gateway), then
    resolve the method, then authorize the principal's role for it, then
    check the HTTP method, then call Cuebot.
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
    ) -> None:
        self._catalog = catalog
        self._cuebot = cuebot
        self._authenticator = authenticator
        self.policy = policy
        self._audit = audit
        self._clock = clock

    def resource(self) -> IResource:
        """The Twisted resource serving this app."""
        return self.app.resource()

    @app.route("/", branch=True)
    async def rpc(self, request: IRequest) -> bytes:
        """Authenticate, resolve and forward one RPC; answer with Cuebot's reply as JSON."""
        principal = await self._authenticator.authenticate(
            request.getHeader(b"authorization")
        )
        method = self._catalog.resolve(request.path.decode("utf-8", "replace"))
        if method.read_only:
            return await self._forward(request, principal, method)
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
                               _client_host(request))

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
        timeout = self._cuebot.deadline(request.getHeader(b"grpc-timeout"))
        metadata = metadata_from_headers(
            request.requestHeaders.getAllRawHeaders(), _client_host(request), principal.sub
        )
        result = await self._cuebot.call(method, request.content.getvalue(), metadata, timeout)
        return self._write_result(request, result)

    @staticmethod
    def _write_result(request: IRequest, result: RpcResult) -> bytes:
        """Set the success headers; Klein writes the returned body."""
        request.setHeader(b"Content-Type", JSON)
        request.setHeader(b"Content-Length", str(len(result.body)).encode("ascii"))
        for name, value in result.headers:
            request.responseHeaders.addRawHeader(name, value)
        if result.ignored_fields:
            request.setHeader(IGNORED_FIELDS_HEADER, ", ".join(result.ignored_fields))
        return result.body

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
        if request.startedWriting:
            # Half a response is already out; a second one would corrupt the stream.
            request.channel.transport.abortConnection()
            return None
        return write_error(request, error)


def _client_host(request: IRequest) -> str | None:
    """The peer's address (the proxy's, behind one; X-Forwarded-For carries the rest)."""
    return getattr(request.getClientAddress(), "host", None)
