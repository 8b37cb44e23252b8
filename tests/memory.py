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
  request went through real protobuf serialization, and is recorded.  A
  Behaviour's ``delay`` is fake time: the answer comes that many seconds of
  the clock later (or DEADLINE_EXCEEDED once the call's timeout passes);
- an HTTP client that talks to the site over in-memory transports
  (``twisted.test.iosim``), so requests still go through Twisted's HTTP
  parser and the gateway's site, byte for byte; and, for what a well-behaved
  client would never send, a :class:`RawClient` writing bytes as given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

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

from opencue_gateway import wiring
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import GatewayConfig
from opencue_gateway.transcode import Transcoder
from opencue_gateway.wiring import Gateway, build
from tests.conftest import Response, make_config, make_token
from tests.cuebot_double import Behaviour, Received
from tests.sse import SseReader

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
    """A pool whose jobs run on the reactor's next turn instead of in a thread.

    ``work_time`` says how many seconds of fake time the job that just ran
    took; its result is handed back that much later, as a worker thread
    blocked in a slow call would hand it back.
    """

    def __init__(self, reactor: ThreadlessReactor,
                 work_time: Callable[[], float] = lambda: 0.0) -> None:
        self._reactor = reactor
        self._work_time = work_time
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
                outcome = (True, function(*args, **kwargs))
            except BaseException:
                outcome = (False, Failure())
            took = self._work_time()
            if took > 0:
                self._reactor.callLater(took, on_result, *outcome)
            else:
                on_result(*outcome)

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
    makes every call fail the way an unreachable Cuebot does.  After
    :meth:`serve`, methods without a Behaviour are answered by the sandbox
    Cuebot's own handlers from a farm, as ``--sandbox`` answers them.
    """

    catalog: MethodCatalog
    received: list[Received] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    reachable: bool = True
    state: grpc.ChannelConnectivity = grpc.ChannelConnectivity.READY
    # Fake seconds the last call took (its Behaviour's delay, cut at its timeout).
    _took: float = field(default=0.0, init=False, repr=False)
    _watchers: list[Callable[[grpc.ChannelConnectivity], None]] = field(
        default_factory=list, init=False, repr=False)
    _sandbox: list[grpc.GenericRpcHandler] = field(default_factory=list, init=False, repr=False)

    def behave(self, path: str, **kwargs: Any) -> Behaviour:
        behaviour = Behaviour(**kwargs)
        self.behaviours[path] = behaviour
        return behaviour

    def calls(self, path: str) -> list[Received]:
        """The calls of one method, in order."""
        return [r for r in self.received if r.path == path]

    def serve(self, farm: Any) -> None:
        """Answer from ``farm`` with the sandbox server's handlers (Behaviours still win)."""
        from opencue_gateway.sandbox.server import generic_handlers

        self._sandbox = list(generic_handlers(farm, self.catalog))

    def take_work_time(self) -> float:
        """How long the last call took, in fake seconds (read once, by the pool)."""
        took, self._took = self._took, 0.0
        return took

    def become(self, state: grpc.ChannelConnectivity) -> None:
        """Change the channel's connectivity and tell whoever watches it, as grpc's thread does."""
        self.state = state
        for watcher in list(self._watchers):
            watcher(state)

    # The grpc.Channel surface CuebotClient uses.
    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None],
                  try_to_connect: bool = False) -> None:
        self._watchers.append(callback)
        callback(self.state)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def close(self) -> None:
        pass

    def unary_unary(self, path: str, request_serializer: Callable[[Message], bytes],
                    response_deserializer: Callable[[bytes], Message], **_: Any) -> _Method:
        return _Method(self, path, request_serializer, response_deserializer)

    def _answer(self, path: str, method: Any, timeout: float | None,
                request: Message) -> Message:
        """The reply a Behaviour (or the sandbox) gives, or the error it (or the clock) raises."""
        behaviour = self.behaviours.get(path, Behaviour())
        if self._sandbox and path not in self.behaviours:
            return self._sandbox_answer(path, request)
        if not self.reachable:
            # As grpc does: a connection that cannot be made fails the channel too.
            self.become(grpc.ChannelConnectivity.TRANSIENT_FAILURE)
            raise InProcessError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
        if timeout is not None and behaviour.delay > timeout:
            self._took = timeout
            raise InProcessError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        self._took = behaviour.delay
        if behaviour.error is not None:
            raise InProcessError(*behaviour.error, behaviour.initial_metadata,
                                 behaviour.trailing_metadata)
        if behaviour.reply_for is not None:
            return behaviour.reply_for(len(self.calls(path)))
        return behaviour.reply if behaviour.reply is not None else method.output_type()

    def _sandbox_answer(self, path: str, request: Message) -> Message:
        """Run the sandbox server's handler for ``path``; its aborts become call errors."""
        details = _CallDetails(path)
        handler = next(h for h in (g.service(details) for g in self._sandbox) if h is not None)
        return handler.unary_unary(request, _AbortingContext())


@dataclass(frozen=True)
class _CallDetails:
    """What a generic RPC handler is asked to find a method by (grpc.HandlerCallDetails)."""

    method: str
    invocation_metadata: tuple = ()


class _AbortingContext:
    """The one part of a servicer context the sandbox's handlers use: abort."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise InProcessError(code, details)


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
                self.cuebot._answer(self.path, method, timeout, arrived).SerializeToString())
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


class _StreamBody(Protocol):
    """Reads a watch's response body as it arrives, into its :class:`WatchClient`."""

    def __init__(self, watch: WatchClient) -> None:
        self._watch = watch

    def dataReceived(self, data: bytes) -> None:
        self._watch.received += data
        if self._watch.status == 200:
            self._watch.reader.feed(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._watch.finished = True
        self._watch.complete = reason.check(ResponseDone) is not None


@dataclass
class WatchClient:
    """One watch as a client sees it: status and headers once they came, then the events."""

    status: int | None = None
    headers: dict[str, list[str]] = field(default_factory=dict)
    received: bytes = b""
    reader: SseReader = field(default_factory=SseReader)
    # The body ended (the stream closed, or the error answer was complete), and how.
    finished: bool = False
    complete: bool = False
    # Why no response head came (the connection closed first), if so.
    error: Failure | None = None
    _body: _StreamBody | None = None

    @property
    def events(self) -> list[Any]:
        return self.reader.events

    def kinds(self) -> list[str]:
        return self.reader.kinds()

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self) -> Any:
        """The body of an answer that is not a stream (an error)."""
        return json.loads(self.received)

    def receive(self, response: Any) -> None:
        self.status = response.code
        self.headers = {k.decode().lower(): [v.decode() for v in vs]
                        for k, vs in response.headers.getAllRawHeaders()}
        self._body = _StreamBody(self)
        response.deliverBody(self._body)

    def failed(self, failure: Failure) -> None:
        self.error = failure

    def close(self) -> None:
        """Go away, as a browser tab that is closed does."""
        assert self._body is not None and self._body.transport is not None
        self._body.transport.stopProducing()


@implementer(IAgentEndpointFactory)
class _SiteEndpoints:
    """Every URL leads to the gateway's site, over an in-memory connection."""

    def __init__(self, harness: MemoryGateway) -> None:
        self._harness = harness

    def endpointForURI(self, uri: Any) -> Any:
        return self

    def connect(self, factory: Any) -> Deferred[Any]:
        return succeed(self._harness.attach(factory.buildProtocol(GATEWAY_ADDRESS)))


class RawClient(Protocol):
    """A client that writes bytes as given and keeps every byte the gateway answers."""

    def __init__(self) -> None:
        self.received = b""
        self.closed = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True

    def send(self, data: bytes) -> None:
        """Queue bytes for the gateway; they arrive when the harness settles."""
        self.transport.write(data)

    def close(self) -> None:
        """Go away, as a client that gives up waiting does."""
        self.transport.loseConnection()

    def response(self) -> RawResponse:
        """The first response received, parsed (its body cut at Content-Length)."""
        return RawResponse.parse(self.received)


@dataclass
class RawResponse:
    """A response as bytes on the wire: status line, headers in order, body."""

    status_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> RawResponse:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"no complete response head in {data[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [(name.strip().lower(), value.strip())
                   for name, _, value in (line.partition(":") for line in lines)]
        length = dict(headers).get("content-length")
        return cls(status_line, headers, rest[:int(length)] if length is not None else rest)

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])

    def header(self, name: str) -> str | None:
        return dict(self.headers).get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class MemoryGateway:
    """A gateway wired in memory, and an HTTP client for it."""

    gateway: Gateway
    reactor: ThreadlessReactor
    cuebot: InProcessCuebot
    pumps: list[Any] = field(default_factory=list)
    # Where the gateway sees connections come from (a UNIXAddress for a Unix socket).
    peer: Any = CLIENT_ADDRESS

    def __post_init__(self) -> None:
        pool = HTTPConnectionPool(self.reactor, persistent=False)
        self._agent = Agent.usingEndpointFactory(self.reactor, _SiteEndpoints(self), pool=pool)

    def attach(self, client: Any) -> Any:
        """Connect a client protocol to a new server connection of the site."""
        server = self.gateway.site.buildProtocol(self.peer)
        self.pumps.append(iosim.connect(
            server, iosim.FakeTransport(server, True, GATEWAY_ADDRESS, self.peer),
            client, iosim.FakeTransport(client, False, self.peer, GATEWAY_ADDRESS),
            greet=False))
        return client

    def raw(self, data: bytes = b"") -> RawClient:
        """Open a connection and send ``data`` as is; settle before reading what came back."""
        client = self.attach(RawClient())
        if data:
            client.send(data)
        self.settle()
        return client

    def in_progress(self) -> list[Any]:
        """The requests the site is reading or answering now, on every open connection."""
        return [request for channel in self.gateway.site.channels
                for request in channel.requests]

    def advance(self, seconds: float = 0.0) -> None:
        """Let ``seconds`` of fake time pass, moving bytes both ways as they come.

        Time stops at each delayed call on the way, so what that call schedules
        counts from its own time, not from the end of the jump.
        """
        self.settle()
        target = self.reactor.seconds() + seconds
        for _ in range(MAX_TURNS):
            due = [c.getTime() for c in self.reactor.getDelayedCalls() if c.getTime() <= target]
            if not due:
                break
            self.reactor.advance(max(0.0, min(due) - self.reactor.seconds()))
            self.settle()
        else:
            raise AssertionError("the in-memory gateway kept scheduling work")
        self.reactor.advance(max(0.0, target - self.reactor.seconds()))
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
             token: str | None = None, headers: dict[str, str] | None = None,
             read: Callable[[Any], Any] | None = None) -> Deferred[Any]:
        """Start a request; its Deferred fires with a Response once the test lets it finish.

        ``read``, when given, takes the response as soon as its head has come instead.
        """
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
        return answered.addCallback(read or self._read)

    @staticmethod
    def _read(response: Any) -> Deferred[Response]:
        collector = _Collector()
        response.deliverBody(collector)
        return collector.done.addCallback(lambda content: Response(
            response.code,
            {k.decode().lower(): [v.decode() for v in vs]
             for k, vs in response.headers.getAllRawHeaders()},
            content))

    def watch(self, path: str, body: bytes | str = b"{}", token: str | None = None,
              headers: dict[str, str] | None = None) -> WatchClient:
        """Open a watch (``Accept: text/event-stream``) and settle; events arrive as time passes.

        ``token`` defaults to a valid one.  The client's status is None until
        the response head has come.
        """
        all_headers = {"Accept": "text/event-stream", **(headers or {})}
        watch = WatchClient()
        answered = self.send("POST", path, body, token or make_token(), all_headers,
                             read=watch.receive)
        answered.addErrback(watch.failed)
        self.settle()
        return watch

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
    def answered(sent: Deferred[Any]) -> bool:
        """Has the response to a request started with :meth:`send` fully arrived?"""
        results: list[Any] = []
        sent.addBoth(lambda result: results.append(result) or result)
        return bool(results)

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


# build() compiles the JSON codecs and renders the API description (1 MB, gzipped)
# from the catalog: a fifth of a second, the same every time.  Both are pure
# functions of (catalog, STRICT_JSON) and read-only once made, so the in-memory
# gateways of a test run share them.  Each entry keeps its catalog alive, so
# the catalog's id in the key cannot be reused by another catalog.
_shared: dict[tuple[str, int, bool], tuple[MethodCatalog, Any]] = {}
_make_api_pages = wiring.api_pages


def _once(kind: str, catalog: MethodCatalog, strict: bool, make: Callable[[], Any]) -> Any:
    """What ``make`` made the first time it was asked for (kind, catalog, strict)."""
    key = (kind, id(catalog), strict)
    if key not in _shared:
        _shared[key] = (catalog, make())
    return _shared[key][1]


def _shared_transcoder(catalog: MethodCatalog) -> Callable[..., Transcoder]:
    """Transcoder's constructor, answering one transcoder per (catalog, strict)."""
    return lambda strict=False: _once(
        "transcoder", catalog, strict, lambda: Transcoder(strict=strict))


def _shared_api_pages(catalog: MethodCatalog, strict: bool) -> dict[bytes, Any]:
    """wiring.api_pages, made once per (catalog, strict); each gateway gets its own dict."""
    return dict(_once("pages", catalog, strict, lambda: _make_api_pages(catalog, strict)))


def memory_gateway(catalog: MethodCatalog, config: GatewayConfig | None = None,
                   tracing: Any = None,
                   open_channel: Callable[[str], InProcessCuebot] | None = None,
                   **env: str | None) -> MemoryGateway:
    """A gateway in memory with ``config`` (or the tests' defaults plus ``env``).

    ``tracing`` stands in for OtelTracing (anything with its four methods).
    ``open_channel`` gives each CUEBOT_ENDPOINT its own in-process Cuebot
    (several Cuebots); by default one in-process Cuebot at cuebot.memory:8443.
    """
    reactor = ThreadlessReactor()
    cuebot = InProcessCuebot(catalog)
    config = config or make_config(**env)
    endpoints = list(config.cuebot_endpoints) if open_channel else ["cuebot.memory:8443"]
    open_channel = open_channel or (lambda endpoint: cuebot)
    with mock.patch.object(wiring, "Transcoder", _shared_transcoder(catalog)), \
            mock.patch.object(wiring, "api_pages", _shared_api_pages):
        gateway = build(config, reactor, ThreadlessPool(reactor, cuebot.take_work_time),
                        catalog=catalog, open_channel=open_channel, tracing=tracing)
    gateway.cuebot.start(endpoints)
    return MemoryGateway(gateway, reactor, cuebot)
