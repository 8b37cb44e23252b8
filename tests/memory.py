"""The whole gateway in memory: no sockets, no threads, a clock the test moves.

:func:`memory_gateway` wires the real gateway with :func:`wiring.build` —
the real Klein app, site, authentication, policy, fan-in, transcoding and
Cuebot client — but gives it:

- a :class:`MemoryReactorClock` as its reactor, so time passes only when the
  test calls :meth:`MemoryGateway.advance` (rate limits, timeouts and caches
  are exact, whatever the machine's speed);
- a threadless pool, whose "thread" work runs on the next turn of that clock
  (the real ``callInThreadWithCallback`` contract, as in Synapse's tests);
- an in-process gRPC channel standing in for Cuebot: each call is answered
  from a programmable :class:`~tests.cuebot_double.Behaviour` after its
  request went through real protobuf serialization, and is recorded;
- an HTTP client that talks to the site over in-memory transports
  (``twisted.test.iosim``), so requests still go through Twisted's HTTP
  parser and the gateway's site, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer
from zope.interface import implementer

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import GatewayConfig
from opencue_gateway.wiring import Gateway, build
from tests.conftest import Response, make_config, make_token
from tests.cuebot_double import Behaviour, Received

GATEWAY_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8448)
CLIENT_ADDRESS = IPv4Address("TCP", "10.0.0.5", 40000)
# Turns of the clock a request may take before the harness calls it stuck.
MAX_TURNS = 1000


class ThreadlessReactor(MemoryReactorClock):
    """A fake reactor whose "other threads" are the reactor itself."""

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run on the next turn of the clock, as the real reactor would run it soon."""
        self.callLater(0, callable, *args, **kwargs)


class ThreadlessPool:
    """A pool whose jobs run on the reactor's next turn instead of in a thread."""

    def __init__(self, reactor: ThreadlessReactor) -> None:
        self._reactor = reactor
        self.started = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def callInThreadWithCallback(self, on_result: Callable[[bool, Any], None],
                                 function: Callable[..., Any], *args: Any,
                                 **kwargs: Any) -> None:
        def run() -> None:
            try:
                result = function(*args, **kwargs)
            except BaseException:
                on_result(False, Failure())
            else:
                on_result(True, result)

        self._reactor.callLater(0, run)


class InProcessError(grpc.RpcError, grpc.Call):
    """A failed call, shaped like grpcio's: code, details and metadata."""

    def __init__(self, code: grpc.StatusCode, details: str,
                 initial: tuple = (), trailing: tuple = ()) -> None:
        super().__init__(details)
        self._code, self._details = code, details
        self._initial, self._trailing = initial, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple:
        return self._initial

    def trailing_metadata(self) -> tuple:
        return self._trailing

    # grpc.Call's remaining abstract methods: nothing to report in memory.
    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


@dataclass
class InProcessCuebot:
    """A Cuebot answering in process, through real protobuf serialization.

    Like the socket-based CuebotDouble: set a :class:`Behaviour` per method
    with :meth:`behave`, read back :attr:`received`.  ``reachable=False``
    makes every call fail the way an unreachable Cuebot does.
    """

    catalog: MethodCatalog
    received: list[Received] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    reachable: bool = True
    state: grpc.ChannelConnectivity = grpc.ChannelConnectivity.READY

    def behave(self, path: str, **kwargs: Any) -> Behaviour:
        behaviour = Behaviour(**kwargs)
        self.behaviours[path] = behaviour
        return behaviour

    def calls(self, path: str) -> list[Received]:
        """The calls of one method, in order."""
        return [r for r in self.received if r.path == path]

    # The grpc.Channel surface CuebotClient uses.
    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None],
                  try_to_connect: bool = False) -> None:
        callback(self.state)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        pass

    def close(self) -> None:
        pass

    def unary_unary(self, path: str, request_serializer: Callable[[Message], bytes],
                    response_deserializer: Callable[[bytes], Message], **_: Any) -> _Method:
        return _Method(self, path, request_serializer, response_deserializer)

    def _answer(self, path: str, method: Any, timeout: float | None) -> Message:
        """The reply a Behaviour asks for, or the error it (or the clock) raises."""
        behaviour = self.behaviours.get(path, Behaviour())
        if not self.reachable:
            raise InProcessError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
        if timeout is not None and behaviour.delay > timeout:
            raise InProcessError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if behaviour.error is not None:
            raise InProcessError(*behaviour.error, behaviour.initial_metadata,
                                 behaviour.trailing_metadata)
        if behaviour.reply_for is not None:
            return behaviour.reply_for(len(self.calls(path)))
        return behaviour.reply if behaviour.reply is not None else method.output_type()


@dataclass
class _Method:
    """One method's callable on the in-process channel."""

    cuebot: InProcessCuebot
    path: str
    serialize: Callable[[Message], bytes]
    deserialize: Callable[[bytes], Message]

    def future(self, request: Message, timeout: float | None = None,
               metadata: Any = ()) -> _Done:
        """The call, already over (the threadless pool runs it to the end at once)."""
        method = self.cuebot.catalog.methods[self.path]
        arrived = method.input_type.FromString(self.serialize(request))
        self.cuebot.received.append(Received(self.path, arrived, dict(metadata or ())))
        behaviour = self.cuebot.behaviours.get(self.path, Behaviour())
        try:
            reply = self.deserialize(
                self.cuebot._answer(self.path, method, timeout).SerializeToString())
        except InProcessError as error:
            return _Done(None, error, behaviour.initial_metadata, behaviour.trailing_metadata)
        return _Done(reply, None, behaviour.initial_metadata, behaviour.trailing_metadata)


@dataclass
class _Done:
    """A finished call, shaped like grpcio's future (which is also its Call)."""

    reply: Message | None
    error: InProcessError | None
    initial: tuple
    trailing: tuple

    def result(self) -> Message:
        if self.error is not None:
            raise self.error
        return self.reply

    def cancel(self) -> bool:
        return False

    def initial_metadata(self) -> tuple:
        return self.initial

    def trailing_metadata(self) -> tuple:
        return self.trailing


@implementer(IBodyProducer)
class _Body:
    """A request body written in one go (no cooperator, no global reactor)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _Collector(Protocol):
    """Gathers a response body; fires with it when the body ends, or fails if it was cut."""

    def __init__(self) -> None:
        self.done: Deferred[bytes] = Deferred()
        self._parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self._parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self._parts))
        else:
            self.done.errback(reason)


@implementer(IAgentEndpointFactory)
class _SiteEndpoints:
    """Every URL leads to the gateway's site, over an in-memory connection."""

    def __init__(self, harness: MemoryGateway) -> None:
        self._harness = harness

    def endpointForURI(self, uri: Any) -> Any:
        return self

    def connect(self, factory: Any) -> Deferred[Any]:
        server = self._harness.gateway.site.buildProtocol(CLIENT_ADDRESS)
        client = factory.buildProtocol(GATEWAY_ADDRESS)
        self._harness.pumps.append(iosim.connect(
            server, iosim.FakeTransport(server, True, GATEWAY_ADDRESS, CLIENT_ADDRESS),
            client, iosim.FakeTransport(client, False, CLIENT_ADDRESS, GATEWAY_ADDRESS),
            greet=False))
        return succeed(client)


@dataclass
class MemoryGateway:
    """A gateway wired in memory, and an HTTP client for it."""

    gateway: Gateway
    reactor: ThreadlessReactor
    cuebot: InProcessCuebot
    pumps: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        pool = HTTPConnectionPool(self.reactor, persistent=False)
        self._agent = Agent.usingEndpointFactory(self.reactor, _SiteEndpoints(self), pool=pool)

    def advance(self, seconds: float = 0.0) -> None:
        """Let ``seconds`` of fake time pass, moving bytes both ways as they come."""
        self.settle()
        self.reactor.advance(seconds)
        self.settle()

    def settle(self) -> None:
        """Move bytes and run what is due now, until nothing more happens."""
        for _ in range(MAX_TURNS):
            moved = any(pump.flush() for pump in self.pumps)
            due = [c for c in self.reactor.getDelayedCalls()
                   if c.getTime() <= self.reactor.seconds()]
            if not moved and not due:
                return
            self.reactor.advance(0)
        raise AssertionError("the in-memory gateway never settled")

    def send(self, method: str, path: str, body: bytes | str | None = b"{}",
             token: str | None = None, headers: dict[str, str] | None = None) -> Deferred[Any]:
        """Start a request; its Deferred fires with a Response once the test lets it finish."""
        all_headers = {"Content-Type": ["application/json"]}
        if token is not None:
            all_headers["Authorization"] = [f"Bearer {token}"]
        for name, value in (headers or {}).items():
            all_headers[name] = [value]
        if isinstance(body, str):
            body = body.encode()
        answered = self._agent.request(
            method.encode(), f"http://gateway{path}".encode(), Headers(all_headers),
            _Body(body) if body is not None else None)
        return answered.addCallback(self._read)

    @staticmethod
    def _read(response: Any) -> Deferred[Response]:
        collector = _Collector()
        response.deliverBody(collector)
        return collector.done.addCallback(lambda content: Response(
            response.code,
            {k.decode().lower(): [v.decode() for v in vs]
             for k, vs in response.headers.getAllRawHeaders()},
            content))

    def request(self, method: str, path: str, body: bytes | str | None = b"{}",
                token: str | None = None, headers: dict[str, str] | None = None) -> Response:
        """Send a request and run the gateway until it is answered (no time passes)."""
        answered = self.send(method, path, body, token, headers)
        self.settle()
        return self.result(answered)

    def post(self, path: str, body: bytes | str | None = b"{}", **kwargs: Any) -> Response:
        """POST with a valid token unless one is given."""
        kwargs.setdefault("token", make_token())
        return self.request("POST", path, body, **kwargs)

    @staticmethod
    def result(answered: Deferred[Any]) -> Any:
        """The result of a Deferred that must have fired by now."""
        results: list[Any] = []
        answered.addBoth(results.append)
        assert results, "the request has not been answered"
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    @staticmethod
    def json(response: Response) -> Any:
        return json.loads(response.body)


def memory_gateway(catalog: MethodCatalog, config: GatewayConfig | None = None,
                   **env: str | None) -> MemoryGateway:
    """A gateway in memory with ``config`` (or the tests' defaults plus ``env``)."""
    reactor = ThreadlessReactor()
    cuebot = InProcessCuebot(catalog)
    gateway = build(config or make_config(**env), reactor, ThreadlessPool(reactor),
                    catalog=catalog, open_channel=lambda endpoint: cuebot)
    gateway.cuebot.start("cuebot.memory:8443")
    return MemoryGateway(gateway, reactor, cuebot)
