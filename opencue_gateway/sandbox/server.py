"""The sandbox Cuebot's gRPC server: real grpcio, real bytes, an in-memory farm.

Every method of the gateway's catalog is registered, so a client never meets
gRPC's generic "Method not found": methods the sandbox implements run their
handler under the farm's lock; the others answer UNIMPLEMENTED and name
themselves.  On a farm no simulator drives, RQD's reports (a kill's outcome)
are delivered before each call: after the answer of the call that caused
them, before anything else can read the farm.  The server enforces keepalive
the way a grpc-java server (that is, a real Cuebot) does by default, so a
client that pings too often is sent GOAWAY ``too_many_pings`` here just as it
would be in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import grpc
from google.protobuf.message import Message

from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.sandbox import errors
from opencue_gateway.sandbox.farm import Farm
from opencue_gateway.sandbox.handlers import HANDLERS, Handler
from opencue_gateway.sandbox.seed import seeded_farm
from opencue_gateway.sandbox.simulate import Simulator

# grpc-java's server defaults for keepalive enforcement: pings without data
# at most every 5 minutes, GOAWAY after 2 strikes, none while no call is open.
KEEPALIVE_ENFORCEMENT = (
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 300000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_permit_without_calls", 0),
)
# grpcio sets SO_REUSEPORT by default, which lets a second server bind a port
# already in use and silently share its traffic; the sandbox must fail instead.
EXCLUSIVE_PORT = (("grpc.so_reuseport", 0),)


class SandboxServer:
    """An in-memory Cuebot listening on ``host`` (loopback by default).

    With a ``simulator`` (which must drive ``farm``), the farm moves while the
    server runs: :meth:`start` starts the simulator's thread once the server
    listens, and :meth:`stop` stops it before the server.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        farm: Farm | None = None,
        max_workers: int = 16,
        simulator: Simulator | None = None,
    ) -> None:
        self.host = host
        self.farm = farm if farm is not None else seeded_farm()
        if simulator is not None and simulator.farm is not self.farm:
            raise ValueError("the simulator must drive the server's farm")
        self.simulator = simulator
        self._requested_port = port
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._port: int | None = None

    def start(self) -> int:
        """Bind, start serving and return the bound port (a free one when 0 was asked)."""
        if self._server is not None:
            raise RuntimeError("the sandbox Cuebot is already running")
        executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="sandbox-cuebot")
        server = grpc.server(executor, options=KEEPALIVE_ENFORCEMENT + EXCLUSIVE_PORT)
        try:
            server.add_generic_rpc_handlers(tuple(generic_handlers(
                self.farm, MethodCatalog.default(), reports=self.simulator is None
            )))
            port = server.add_insecure_port(_host_port(self.host, self._requested_port))
            server.start()
        except BaseException:
            server.stop(None)
            executor.shutdown(wait=True)
            raise
        self._server, self._executor, self._port = server, executor, port
        if self.simulator is not None:
            self.simulator.start()
        return port

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving, letting calls in flight finish for ``grace`` seconds; blocks until done.

        Stopping a server that is not running does nothing.
        """
        if self._server is None or self._executor is None:
            return
        if self.simulator is not None:
            self.simulator.stop()
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=True)
        self._server = self._executor = self._port = None

    @property
    def port(self) -> int:
        """The bound port; only known once started."""
        if self._port is None:
            raise RuntimeError("the sandbox Cuebot is not running")
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` for ``grpc.insecure_channel``, e.g. ``127.0.0.1:50051``."""
        return _host_port(self.host, self.port)

    def __enter__(self) -> SandboxServer:
        """Start on entering a ``with`` block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()


def generic_handlers(
    farm: Farm, catalog: Iterable[RpcMethod], reports: bool = True
) -> Iterator[grpc.GenericRpcHandler]:
    """One generic handler per service, covering every method of ``catalog``.

    With ``reports``, RQD's reports are delivered to the farm before each call
    (:meth:`Farm.deliver_reports`); without, a simulator delivers them.
    Raises ValueError when a sandbox handler names a method the catalog lacks,
    which would otherwise never be served.
    """
    methods = list(catalog)
    stray = sorted(set(HANDLERS) - {method.path for method in methods})
    if stray:
        raise ValueError(f"sandbox handlers for methods not in the catalog: {stray}")
    services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for method in methods:
        services.setdefault(method.service, {})[method.name] = _method_handler(
            farm, method, HANDLERS.get(method.path), reports
        )
    for service, handlers in services.items():
        yield grpc.method_handlers_generic_handler(service, handlers)


def _method_handler(
    farm: Farm, method: RpcMethod, handler: Handler | None, reports: bool
) -> grpc.RpcMethodHandler:
    """Wrap one handler, or the UNIMPLEMENTED answer, as a unary gRPC method."""

    def behaviour(request: Message, context: grpc.ServicerContext) -> Message:
        """Run the handler under the farm lock and turn its failure into a status."""
        try:
            if handler is None:
                raise errors.unimplemented(method.path)
            with farm.lock:
                if reports:
                    farm.deliver_reports()
                return handler(farm, request)
        except errors.CuebotError as error:
            failure = error
        except errors.JavaError as error:
            failure = errors.uncaught(error)
        context.abort(failure.code, failure.message)

    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=method.input_type.FromString,
        response_serializer=method.output_type.SerializeToString,
    )


def _host_port(host: str, port: int) -> str:
    """Join host and port, bracketing an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
