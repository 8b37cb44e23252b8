"""Calls to Cuebot: one long-lived gRPC channel, a dedicated thread pool, deadlines.

grpcio's blocking calls never run on the reactor thread.  Each request makes
one hand-off to the pool, where the worker decodes the JSON body, calls
Cuebot and encodes the reply to JSON bytes; only the finished bytes come back
to the reactor.  A large reply (see :mod:`opencue_gateway.largereply`) comes
back as Cuebot's bytes instead, and is encoded in pool threads as it is
written (:meth:`CuebotClient.send`).  The pool's wait queue is bounded: past
it a request gets 503 at once instead of queueing without end.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.iweb import IRequest

from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.compression import inflate, maybe_gzip
from opencue_gateway.cuebots import Cuebots, Endpoint
from opencue_gateway.errors import GatewayError
from opencue_gateway.largereply import LargeReplies, LargeReply, parse_reply
from opencue_gateway.metadata import Metadata, parse_grpc_timeout, response_headers
from opencue_gateway.streaming import StreamedBody
from opencue_gateway.transcode import Transcoder

# Transport failures, as grpc's C core words them, as opposed to an
# UNAVAILABLE that Cuebot itself returned with its own message.
_TRANSPORT_FAILURE = re.compile(
    r"failed to connect|connection refused|errors resolving|dns resolution|"
    r"socket closed|connection reset|broken pipe|goaway|keepalive|"
    r"connections to all backends failing|no route to host|timeout occurred|"
    r"name resolution",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RpcResult:
    """What a successful call hands back to the reactor: bytes ready to write, or a large
    reply to stream (then ``body`` is empty)."""

    body: bytes
    headers: list[tuple[str, str]]
    ignored_fields: tuple[str, ...]
    gzipped: bool = False
    stream: LargeReply | None = None


def _unreachable(error: grpc.RpcError) -> bool:
    """Did the call fail because its Cuebot could not be reached (not by Cuebot's own answer)?"""
    if not isinstance(error, grpc.Call) or error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = error.details() or ""
    return not details or bool(_TRANSPORT_FAILURE.search(details))


def _worth_another_cuebot(error: grpc.RpcError) -> bool:
    """Could another Cuebot answer this read?  Yes when this one was unreachable, or ended
    the call without answering it (UNAVAILABLE, or CANCELLED by Cuebot itself: what a
    Cuebot going down does to the calls it holds)."""
    return isinstance(error, grpc.Call) and error.code() in (
        grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


class _UnreachableError(Exception):
    """A read's Cuebot could not be reached or gave up on it; carries the error the client
    would get, so that another Cuebot may be tried first."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(eq=False)
class _Job:
    """One call waiting for, or running in, a pool thread; the reactor may cancel it.

    ``deadline`` is absolute on the client's clock: a job that waited in the
    queue past it is never sent, and one that is sent gets only the time left.
    """

    method: RpcMethod
    body: bytes
    metadata: Metadata
    deadline: float
    gzip: bool
    encoding: str | None
    cancelled: bool = False
    future: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class CuebotClient:
    """Runs Cuebot calls in a dedicated thread pool and answers with Deferreds.

    The reactor, the pool and the channel factory are injected, like
    ``twisted.enterprise.adbapi.ConnectionPool`` takes its reactor: tests pass
    a fake clock and a threadless pool, the service passes the real ones.
    The channel is opened by :meth:`start`, not at construction, because
    gRPC's threads must not exist before twistd has finished forking.

    Cancelling a call's Deferred (the client went away, or its time is up)
    stops it where it is: a job still queued is never sent, and a call in
    flight is cancelled on the wire (Cuebot sees the cancellation) and frees
    its thread at once.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        pool: ThreadPool,
        channel_factory: Callable[[str], grpc.Channel],
        catalog: MethodCatalog,
        transcoder: Transcoder,
        default_timeout: float,
        max_pending: int,
        on_call: Callable[[str, grpc.StatusCode, float], None] | None = None,
        on_skip: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_request_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._reactor = reactor
        self._on_call = on_call
        self._on_skip = on_skip
        self._clock = clock
        self._pool = pool
        self._transcoder = transcoder
        self._large = LargeReplies(transcoder)
        self._default_timeout = default_timeout
        self._max_pending = max_pending
        self._max_request_bytes = max_request_bytes
        self.pending = 0
        self.cuebots = Cuebots(reactor, channel_factory, catalog)

    @property
    def endpoint(self) -> str:
        """Where calls go: CUEBOT_ENDPOINT's endpoints, once started."""
        return self.cuebots.names

    @property
    def state(self) -> grpc.ChannelConnectivity | None:
        """Connectivity taken as a whole: READY while any Cuebot is connected."""
        return self.cuebots.state

    @property
    def accepting(self) -> bool:
        """Is there room for one more call (in the pool or its bounded queue)?"""
        return bool(self.cuebots.endpoints) and self.pending < self._max_pending

    def connect(self) -> None:
        """Ask every Cuebot that is not connected to reconnect now, not at the next call."""
        self.cuebots.connect()

    def start(self, endpoints: Sequence[str]) -> None:
        """Open the long-lived channel to each Cuebot."""
        self.cuebots.start(endpoints)

    def stop(self) -> Deferred[object]:
        """Close the channels; calls still running fail with CANCELLED."""
        return self.cuebots.stop()

    def deadline(self, header: bytes | None) -> float:
        """The call's timeout: GRPC_TIMEOUT, or a shorter ``Grpc-Timeout`` from the client."""
        if header is None:
            return self._default_timeout
        return min(self._default_timeout, parse_grpc_timeout(header))

    def call(
        self, method: RpcMethod, body: bytes, metadata: Metadata, timeout: float,
        gzip: bool = False, encoding: str | None = None,
    ) -> Deferred[RpcResult]:
        """Decode, call and encode in a worker thread; fire on the reactor with the result.

        ``encoding`` is the request body's Content-Encoding (``gzip`` or
        ``deflate``), inflated in the worker thread.  Cancelling the returned
        Deferred cancels the call.
        """
        if self.pending >= self._max_pending:
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE,
                f"the gateway is at capacity ({self.pending} requests in progress); "
                "retry shortly",
            )
        self.pending += 1
        job = _Job(method, body, metadata, self._clock() + timeout, gzip, encoding)
        result: Deferred[RpcResult] = Deferred(lambda _: self._cancel(job))

        def on_done(success: bool, value: Any) -> None:
            self._reactor.callFromThread(self._deliver, result, success, value)

        self._pool.callInThreadWithCallback(on_done, self._invoke, job)
        return result

    @staticmethod
    def _cancel(job: _Job) -> None:
        """The reactor gave up on a job: never send it, or cancel it on the wire."""
        with job.lock:
            job.cancelled = True
            future = job.future
        if future is not None:
            future.cancel()

    def _deliver(self, result: Deferred[RpcResult], success: bool, value: Any) -> None:
        """Back on the reactor: free the slot, then fire unless the client went away."""
        self.pending -= 1
        if result.called:
            return
        if success:
            result.callback(value)
        else:
            result.errback(value if isinstance(value, Failure) else Failure(value))

    def _invoke(self, job: _Job) -> RpcResult:
        """The worker's whole job; runs in a pool thread, never on the reactor.

        A read that failed because its Cuebot could not be reached, or was
        going away, is tried once more on another Cuebot, when there is one: a
        read changes nothing, so repeating it is safe.
        """
        method = job.method
        body = inflate(job.body, job.encoding, self._max_request_bytes)
        decoded = self._transcoder.decode(method.input_type, body)
        endpoint = self.cuebots.pick()
        try:
            future = self._call(job, endpoint, decoded.message)
        except _UnreachableError as unreachable:
            other = self.cuebots.pick(avoid=endpoint)
            if other is None or other is endpoint:
                raise unreachable.error from None
            future = self._call(job, other, decoded.message)
        reply = future.result()
        headers = response_headers(future.initial_metadata(), future.trailing_metadata())
        large = self._large.reply(method.output_type, reply, job.gzip)
        if large is not None:
            return RpcResult(b"", headers, decoded.ignored_fields, large.gzip, large)
        encoded, gzipped = maybe_gzip(
            self._transcoder.encode(parse_reply(method.output_type, reply)), job.gzip)
        return RpcResult(encoded, headers, decoded.ignored_fields, gzipped)

    def whole(self, result: RpcResult) -> Deferred[RpcResult]:
        """The result with its body in one piece: a large reply is encoded whole, in the pool.

        For those who need the bytes rather than a stream to write (a watch
        compares each poll's reply with the last one).
        """
        large = result.stream
        if large is None:
            return succeed(result)
        return deferToThreadPool(self._reactor, self._pool, lambda: replace(
            result, body=b"".join(large.chunks()), stream=None))

    def send(self, request: IRequest, reply: LargeReply) -> Deferred[None]:
        """Write a large reply to the request as pool threads encode it, at the client's pace.

        Fires once the last byte is written; cancelling it stops the encoding.
        """
        return StreamedBody(request, reply.chunks(), self._pool, self._reactor).start()

    def _call(self, job: _Job, endpoint: Endpoint | None, message: Any) -> Any:
        """Make the call on ``endpoint`` and wait for it; the finished future.

        Raises the client's GatewayError, or for a read _UnreachableError when
        the Cuebot could not be reached or went away (so another may be tried).
        """
        if endpoint is None:
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE, "the gateway is not connected to Cuebot (stopping)")
        method = job.method
        started = time.perf_counter()
        future, given = self._send(job, endpoint.callables[method.path], message)
        try:
            future.result()
        except grpc.FutureCancelledError:
            self._timed(method, endpoint, grpc.StatusCode.CANCELLED, started)
            raise GatewayError(grpc.StatusCode.CANCELLED, "the client went away") from None
        except grpc.RpcError as error:
            failure = self._upstream_error(error, endpoint.name, given)
            self._timed(method, endpoint, failure.code, started)
            if method.read_only and _worth_another_cuebot(error):
                raise _UnreachableError(failure) from None
            raise failure from None
        self._timed(method, endpoint, grpc.StatusCode.OK, started)
        return future

    def _send(self, job: _Job, callable_: grpc.UnaryUnaryMultiCallable, message: Any
              ) -> tuple[Any, float]:
        """Start the call unless the job was cancelled or its time ran out in the queue.

        Returns the call's future and the seconds it was given.
        """
        with job.lock:
            if job.cancelled:
                self._skipped("client_gone")
                raise GatewayError(grpc.StatusCode.CANCELLED, "the client went away")
            remaining = job.deadline - self._clock()
            if remaining <= 0:
                self._skipped("deadline")
                raise GatewayError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    "the request waited for a free worker until its deadline passed; "
                    "the gateway is overloaded (MAX_CONCURRENT_STREAMS)",
                )
            job.future = callable_.future(message, timeout=remaining, metadata=job.metadata)
            return job.future, remaining

    def _skipped(self, reason: str) -> None:
        """Count a queued job that was never sent (metrics), from the worker thread."""
        if self._on_skip is not None:
            self._on_skip(reason)

    def _timed(self, method: RpcMethod, endpoint: Endpoint, code: grpc.StatusCode,
               started: float) -> None:
        """Report the Cuebot call, where it went and how long it took (metrics), from the
        worker thread."""
        if self._on_call is not None:
            self._on_call(method.path[1:], endpoint.name, code, time.perf_counter() - started)

    @staticmethod
    def _upstream_error(error: grpc.RpcError, endpoint: str, timeout: float) -> GatewayError:
        """Turn a failed call into the error the client sees.

        Cuebot's own messages pass through; transport failures get a message
        naming the endpoint instead of grpc's C-core text.
        """
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (error.details() if isinstance(error, grpc.Call) else None) or ""
        if _unreachable(error):
            return GatewayError(code, f"Cuebot at {endpoint} could not be reached")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and details in ("", "Deadline Exceeded"):
            shown = f"{timeout:.0f}" if timeout >= 10 else f"{timeout:.2g}"
            return GatewayError(code, f"Cuebot at {endpoint} did not answer within {shown}s")
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "message larger than max" in details:
            return GatewayError(
                code,
                "Cuebot's reply is larger than GRPC_MAX_RECV_MSG_MB allows; "
                "narrow the request (page/limit) or raise the limit",
            )
        headers = response_headers(
            error.initial_metadata() if isinstance(error, grpc.Call) else None,
            error.trailing_metadata() if isinstance(error, grpc.Call) else None,
        )
        return GatewayError(code, details or code.name, headers=dict(headers))
