"""A programmable Cuebot stand-in for tests: a real grpcio server on a loopback port.

It answers every method of the catalog.  By default it replies with the
empty response; tests set a reply, an error or a delay per method, and read
back exactly what arrived (the request message and its metadata).  Unlike
the sandbox it has no farm: it exists to observe the wire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message

from opencue_gateway.catalog import MethodCatalog, RpcMethod


@dataclass
class Received:
    """One call as the double saw it."""

    path: str
    request: Message
    metadata: dict[str, Any]


@dataclass
class Behaviour:
    """How the double answers one method."""

    reply: Message | None = None
    reply_for: Callable[[int], Message] | None = None  # the n-th call's reply (from 1)
    error: tuple[grpc.StatusCode, str] | None = None
    delay: float = 0.0
    initial_metadata: tuple[tuple[str, str | bytes], ...] = ()
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()


@dataclass
class CuebotDouble:
    """The server plus what it received; use :meth:`start` / :meth:`stop`."""

    catalog: MethodCatalog
    options: list[tuple[str, Any]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    # Paths of calls the client cancelled while they were delayed here.
    cancelled: list[str] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=self.options)
        services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for method in self.catalog:
            services.setdefault(method.service, {})[method.name] = (
                grpc.unary_unary_rpc_method_handler(
                    self._handler(method),
                    request_deserializer=method.input_type.FromString,
                    response_serializer=method.output_type.SerializeToString,
                )
            )
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(name, handlers)
             for name, handlers in services.items()]
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int = 0,
              credentials: grpc.ServerCredentials | None = None) -> CuebotDouble:
        """Listen on 127.0.0.1 (a given port, to come back where it was), optionally with TLS."""
        address = f"127.0.0.1:{port}"
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)

    def behave(self, path: str, **kwargs: Any) -> Behaviour:
        behaviour = Behaviour(**kwargs)
        self.behaviours[path] = behaviour
        return behaviour

    def last(self) -> Received:
        with self._lock:
            return self.received[-1]

    def _handler(self, method: RpcMethod):
        def handle(request: Message, context: grpc.ServicerContext) -> Message:
            with self._lock:
                self.received.append(
                    Received(method.path, request, dict(context.invocation_metadata()))
                )
            behaviour = self.behaviours.get(method.path, Behaviour())
            if behaviour.delay:
                deadline = time.monotonic() + behaviour.delay
                while time.monotonic() < deadline and context.is_active():
                    time.sleep(0.01)
                if not context.is_active():
                    with self._lock:
                        self.cancelled.append(method.path)
            if behaviour.initial_metadata:
                context.send_initial_metadata(behaviour.initial_metadata)
            if behaviour.trailing_metadata:
                context.set_trailing_metadata(behaviour.trailing_metadata)
            if behaviour.error is not None:
                context.abort(*behaviour.error)
            if behaviour.reply_for is not None:
                with self._lock:
                    calls = sum(1 for r in self.received if r.path == method.path)
                return behaviour.reply_for(calls)
            return behaviour.reply if behaviour.reply is not None else method.output_type()

        return handle
