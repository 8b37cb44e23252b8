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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.iweb import IRequest

from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.compression import inflate, maybe_gzip
from opencue_gateway.errors import GatewayError
from opencue_gateway.largereply import LargeReplies, LargeReply, parse_reply
from opencue_gateway.metadata import Metadata, parse_grpc_timeout, response_headers
from opencue_gateway.streaming import StreamedBody
from opencue_gateway.transcode import Transcoder

# Longer than grpc's 0.2 s connectivity polling interval (see CuebotClient.stop).
CHANNEL_CLOSE_DELAY = 0.3

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


def _serialized(reply: bytes) -> bytes:
    """grpc's response deserializer: keep Cuebot's bytes (the worker decodes them)."""
    return reply


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
        self._channel_factory = channel_factory
        self._catalog = catalog
        self._transcoder = transcoder
        self._large = LargeReplies(transcoder)
        self._default_timeout = default_timeout
        self._max_pending = max_pending
        self._max_request_bytes = max_request_bytes
        self.pending = 0
        self.endpoint = ""
        # Told of every connectivity change, on the reactor thread.
        self.on_state: Callable[[grpc.ChannelConnectivity], None] | None = None
        self.state: grpc.ChannelConnectivity | None = None
        self._channel: grpc.Channel | None = None
        self._connecting: grpc.Future | None = None
        self._callables: dict[str, grpc.UnaryUnaryMultiCallable] = {}

    @property
    def accepting(self) -> bool:
        """Is there room for one more call (in the pool or its bounded queue)?"""
        return self._channel is not None and self.pending < self._max_pending

    def _track_state(self, state: grpc.ChannelConnectivity) -> None:
        """grpc's thread reports connectivity: /readyz reads it; a change is told on the reactor."""
        previous, self.state = self.state, state
        if self.on_state is not None and state != previous:
            self._reactor.callFromThread(self.on_state, state)

    def connect(self) -> None:
        """Ask an idle or failed channel to (re)connect now, not at the next call.

        One attempt is kept in flight at a time, so a Cuebot that stays down
        for days does not pile up waiters.
        """
        if self._channel is not None and (self._connecting is None or self._connecting.done()):
            self._connecting = grpc.channel_ready_future(self._channel)

    def start(self, endpoint: str) -> None:
        """Open the long-lived channel and one callable per method."""
        self.endpoint = endpoint
        self._channel = self._channel_factory(endpoint)
        self._channel.subscribe(self._track_state, try_to_connect=True)
        self._callables = {
            method.path: self._channel.unary_unary(
                method.path,
                request_serializer=method.input_type.SerializeToString,
                response_deserializer=_serialized,
            )
            for method in self._catalog
        }

    def stop(self) -> Deferred[None]:
        """Close the channel; calls still running fail with CANCELLED.

        grpc watches connectivity from a thread that wakes every 0.2 s and
        fails loudly if the channel closed under it; so stop watching first,
        and close once that thread has had time to notice.
        """
        self._callables = {}
        if self._connecting is not None:
            self._connecting.cancel()
        channel, self._channel = self._channel, None
        if channel is None:
            return succeed(None)
        channel.unsubscribe(self._track_state)
        return deferLater(self._reactor, CHANNEL_CLOSE_DELAY, channel.close)

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
        """The worker's whole job; runs in a pool thread, never on the reactor."""
        method = job.method
        body = inflate(job.body, job.encoding, self._max_request_bytes)
        decoded = self._transcoder.decode(method.input_type, body)
        callable_ = self._callables.get(method.path)
        if callable_ is None:
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE, "the gateway is not connected to Cuebot (stopping)"
            )
        started = time.perf_counter()
        future, given = self._send(job, callable_, decoded.message)
        try:
            reply = future.result()
        except grpc.FutureCancelledError:
            self._timed(method, grpc.StatusCode.CANCELLED, started)
            raise GatewayError(grpc.StatusCode.CANCELLED, "the client went away") from None
        except grpc.RpcError as error:
            failure = self._upstream_error(error, given)
            self._timed(method, failure.code, started)
            raise failure from None
        self._timed(method, grpc.StatusCode.OK, started)
        headers = response_headers(future.initial_metadata(), future.trailing_metadata())
        large = self._large.reply(method.output_type, reply, job.gzip)
        if large is not None:
            return RpcResult(b"", headers, decoded.ignored_fields, large.gzip, large)
        encoded, gzipped = maybe_gzip(
            self._transcoder.encode(parse_reply(method.output_type, reply)), job.gzip)
        return RpcResult(encoded, headers, decoded.ignored_fields, gzipped)

    def send(self, request: IRequest, reply: LargeReply) -> Deferred[None]:
        """Write a large reply to the request as pool threads encode it, at the client's pace.

        Fires once the last byte is written; cancelling it stops the encoding.
        """
        return StreamedBody(request, reply.chunks(), self._pool, self._reactor).start()

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

    def _timed(self, method: RpcMethod, code: grpc.StatusCode, started: float) -> None:
        """Report how long the Cuebot call took (metrics), from the worker thread."""
        if self._on_call is not None:
            self._on_call(method.path[1:], code, time.perf_counter() - started)

    def _upstream_error(self, error: grpc.RpcError, timeout: float) -> GatewayError:
        """Turn a failed call into the error the client sees.

        Cuebot's own messages pass through; transport failures get a message
        naming the endpoint instead of grpc's C-core text.
        """
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (error.details() if isinstance(error, grpc.Call) else None) or ""
        if code == grpc.StatusCode.UNAVAILABLE and (
            not details or _TRANSPORT_FAILURE.search(details)
        ):
            return GatewayError(code, f"Cuebot at {self.endpoint} could not be reached")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and details in ("", "Deadline Exceeded"):
            shown = f"{timeout:.0f}" if timeout >= 10 else f"{timeout:.2g}"
            return GatewayError(code, f"Cuebot at {self.endpoint} did not answer within {shown}s")
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
