"""Calls to Cuebot: one long-lived gRPC channel, a dedicated thread pool, deadlines, metadata.

grpcio's blocking calls never run on the reactor thread.  Each request makes
one hand-off to the pool, where the worker decodes the JSON body, calls
Cuebot and encodes the reply to JSON bytes; only the finished bytes come back
to the reactor.  The pool's wait queue is bounded: past it a request gets 503
at once instead of queueing without end.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.compression import maybe_gzip
from opencue_gateway.config import GatewayConfig
from opencue_gateway.errors import GatewayError
from opencue_gateway.tracing import TRACE_HEADERS, valid_traceparent
from opencue_gateway.transcode import Transcoder, bytes_json, decode_base64

Metadata = tuple[tuple[str, str | bytes], ...]

# Request headers that carry credentials never travel upstream, whatever their
# spelling (COMPATIBILITY.md section 5; grpc-gateway forwards them, we do not).
CREDENTIAL_KEYS = frozenset({"authorization", "cookie"})
METADATA_PREFIX = b"grpc-metadata-"
# Who made the call, for Cuebot-side logs (COMPATIBILITY.md section 6).
PRINCIPAL_KEY = "opencue-gateway-sub"
REQUEST_ID_KEY = "x-request-id"
# Longer than grpc's 0.2 s connectivity polling interval (see CuebotClient.stop).
CHANNEL_CLOSE_DELAY = 0.3

_GRPC_TIMEOUT = re.compile(rb"(\d{1,8})([HMSmun])\Z")
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+\Z")
# Transport failures, as grpc's C core words them, as opposed to an
# UNAVAILABLE that Cuebot itself returned with its own message.
_TRANSPORT_FAILURE = re.compile(
    r"failed to connect|connection refused|errors resolving|dns resolution|"
    r"socket closed|connection reset|broken pipe|goaway|keepalive|"
    r"connections to all backends failing|no route to host|timeout occurred|"
    r"name resolution",
    re.IGNORECASE,
)


def channel_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """gRPC channel arguments for talking to Cuebot.

    Keepalive: Cuebot is a grpc-java server with default settings, which
    tolerates a ping at most every 5 minutes and hangs up (GOAWAY
    "too_many_pings") after more than 2 early pings without data in between.
    So the gateway never pings an idle connection and sends at most 2 pings
    between data frames; pings then only watch connections that have calls
    in flight, at KEEPALIVE_TIME intervals, and Cuebot never counts a third
    strike.  Reconnect backoff is capped at 5 s so the gateway notices a
    restarted Cuebot quickly instead of waiting up to grpc's default 120 s.
    """
    return [
        ("grpc.max_receive_message_length", config.grpc_max_recv_msg_mb * 1024 * 1024),
        ("grpc.max_send_message_length", -1),
        ("grpc.keepalive_time_ms", int(config.keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 2),
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.min_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5000),
        ("grpc.primary_user_agent", "opencue-gateway"),
    ]


def parse_grpc_timeout(value: bytes) -> float:
    """Seconds from a ``Grpc-Timeout`` header (gRPC wire format: digits and one unit)."""
    match = _GRPC_TIMEOUT.match(value.strip())
    if not match:
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid Grpc-Timeout header: expected up to 8 digits and a unit "
            "(H, M, S, m, u or n), like 500m or 10S",
        )
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]


def metadata_from_headers(
    headers: Iterable[tuple[bytes, Sequence[bytes]]],
    client_address: str | None,
    principal_sub: str,
    request_id: str = "",
    trace_context: dict[str, str] | None = None,
) -> Metadata:
    """The gRPC metadata for a request (COMPATIBILITY.md section 6).

    ``Grpc-Metadata-<key>`` headers become ``<key>``; ``-bin`` keys carry
    base64 in HTTP and bytes in gRPC.  X-Forwarded-For gains the client's
    address, X-Forwarded-Host is the Host header, and the caller's ``sub``
    is added, and so is the request id.  W3C ``traceparent``/``tracestate``
    pass when well-formed (``trace_context``, the gateway's own span, wins
    over the client's).  Credentials and gRPC's reserved ``grpc-*`` keys
    never pass.

    Every text value must be printable ASCII, or grpcio fails the call
    ("Invalid metadata").  Headers the client sends are refused with a 400
    naming the header when they hold anything else; a malformed tracestate
    is dropped; the ``sub`` is percent-encoded (:func:`percent_encode`).
    """
    metadata: list[tuple[str, str | bytes]] = []
    forwarded_for: list[str] = []
    trace: dict[str, str] = {}
    host = None
    for raw_name, values in headers:
        name = raw_name.lower()
        if name == b"x-request-id":
            continue
        if name in TRACE_HEADERS:
            trace[name.decode("ascii")] = values[0].decode("latin-1").strip()
            continue
        if name == b"x-forwarded-for":
            forwarded_for.extend(_ascii(v, "the X-Forwarded-For header") for v in values)
        elif name == b"host":
            host = _ascii(values[0], "the Host header")
        elif name.startswith(METADATA_PREFIX):
            key = name[len(METADATA_PREFIX):].decode("latin-1")
            if key in CREDENTIAL_KEYS or key.startswith("grpc-"):
                continue
            metadata.extend((key, _metadata_value(key, v)) for v in values)
    if client_address:
        forwarded_for.append(client_address)
    if forwarded_for:
        metadata.append(("x-forwarded-for", ", ".join(forwarded_for)))
    if host:
        metadata.append(("x-forwarded-host", host))
    if principal_sub:
        metadata.append((PRINCIPAL_KEY, percent_encode(principal_sub)))
    if request_id:
        metadata.append((REQUEST_ID_KEY, request_id))
    trace.update(trace_context or {})
    if valid_traceparent(trace.get("traceparent")):
        metadata.append(("traceparent", trace["traceparent"]))
        if _is_metadata_text(trace.get("tracestate", "")) and trace.get("tracestate"):
            metadata.append(("tracestate", trace["tracestate"]))
    return tuple(metadata)


def forwarded_metadata(headers: Iterable[tuple[bytes, Sequence[bytes]]]) -> tuple:
    """The Grpc-Metadata-* headers of a request, in a canonical order (part of a fan-in key)."""
    return tuple(sorted(
        (name.lower(), tuple(values)) for name, values in headers
        if name.lower().startswith(METADATA_PREFIX)
    ))


def _metadata_value(key: str, raw: bytes) -> str | bytes:
    """Check a metadata key and convert its header value to what gRPC wants."""
    if not _METADATA_KEY.match(key):
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid Grpc-Metadata header key {key!r}: use letters, digits, '-', '_' and '.'",
        )
    if key.endswith("-bin"):
        try:
            return decode_base64(raw.strip().decode("latin-1"))
        except ValueError:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Grpc-Metadata-{key} must hold base64, as binary metadata keys do",
            ) from None
    return _ascii(raw, f"Grpc-Metadata-{key}")


def _ascii(raw: bytes, header: str) -> str:
    """A header value that may travel as metadata text, or a 400 naming the header."""
    text = raw.decode("latin-1").strip()
    if not _is_metadata_text(text):
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{header} holds characters gRPC metadata cannot carry (only printable ASCII)",
        )
    return text


def _is_metadata_text(text: str) -> bool:
    """Printable ASCII: what gRPC accepts in a text metadata value."""
    return text.isascii() and text.isprintable()


def percent_encode(text: str) -> str:
    """Text as metadata the way gRPC encodes ``grpc-message``, so any identity can travel.

    The UTF-8 bytes outside printable ASCII, and ``%`` itself, become
    ``%XX``: ``José`` arrives as ``Jos%C3%A9``, ``100%`` as ``100%25``; plain
    ASCII names arrive unchanged.  Percent-decoding gives the exact text back
    (``urllib.parse.unquote`` in Python; ``+`` is not a space here).
    """
    if _is_metadata_text(text) and "%" not in text:
        return text
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}"
                   for b in text.encode("utf-8"))


def response_headers(
    initial: Iterable[tuple[str, str | bytes]] | None,
    trailing: Iterable[tuple[str, str | bytes]] | None,
) -> list[tuple[str, str]]:
    """Cuebot's metadata as HTTP headers, named the way grpc-gateway names them."""
    headers = []
    for prefix, metadata in (("Grpc-Metadata-", initial), ("Grpc-Trailer-", trailing)):
        for key, value in metadata or ():
            text = bytes_json(value) if isinstance(value, bytes) else value
            if text.isprintable():
                headers.append((prefix + key, text))
    return headers


@dataclass(frozen=True, slots=True)
class RpcResult:
    """What a successful call hands back to the reactor: bytes, ready to write."""

    body: bytes
    headers: list[tuple[str, str]]
    ignored_fields: tuple[str, ...]
    gzipped: bool = False


class CuebotClient:
    """Runs Cuebot calls in a dedicated thread pool and answers with Deferreds.

    The reactor, the pool and the channel factory are injected, like
    ``twisted.enterprise.adbapi.ConnectionPool`` takes its reactor: tests pass
    a fake clock and a threadless pool, the service passes the real ones.
    The channel is opened by :meth:`start`, not at construction, because
    gRPC's threads must not exist before twistd has finished forking.
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
    ) -> None:
        self._reactor = reactor
        self._on_call = on_call
        self._pool = pool
        self._channel_factory = channel_factory
        self._catalog = catalog
        self._transcoder = transcoder
        self._default_timeout = default_timeout
        self._max_pending = max_pending
        self.pending = 0
        self.endpoint = ""
        self.state: grpc.ChannelConnectivity | None = None
        self._channel: grpc.Channel | None = None
        self._connecting: grpc.Future | None = None
        self._callables: dict[str, grpc.UnaryUnaryMultiCallable] = {}

    @property
    def accepting(self) -> bool:
        """Is there room for one more call (in the pool or its bounded queue)?"""
        return self._channel is not None and self.pending < self._max_pending

    def _track_state(self, state: grpc.ChannelConnectivity) -> None:
        """grpc's thread reports connectivity; one attribute write, read by /readyz."""
        self.state = state

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
                response_deserializer=method.output_type.FromString,
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
        gzip: bool = False,
    ) -> Deferred[RpcResult]:
        """Decode, call and encode in a worker thread; fire on the reactor with the result."""
        if self.pending >= self._max_pending:
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE,
                f"the gateway is at capacity ({self.pending} requests in progress); "
                "retry shortly",
            )
        self.pending += 1
        result: Deferred[RpcResult] = Deferred()

        def on_done(success: bool, value: Any) -> None:
            self._reactor.callFromThread(self._deliver, result, success, value)

        self._pool.callInThreadWithCallback(
            on_done, self._invoke, method, body, metadata, timeout, gzip
        )
        return result

    def _deliver(self, result: Deferred[RpcResult], success: bool, value: Any) -> None:
        """Back on the reactor: free the slot, then fire unless the client went away."""
        self.pending -= 1
        if result.called:
            return
        if success:
            result.callback(value)
        else:
            result.errback(value if isinstance(value, Failure) else Failure(value))

    def _invoke(
        self, method: RpcMethod, body: bytes, metadata: Metadata, timeout: float, gzip: bool
    ) -> RpcResult:
        """The worker's whole job; runs in a pool thread, never on the reactor."""
        decoded = self._transcoder.decode(method.input_type, body)
        callable_ = self._callables.get(method.path)
        if callable_ is None:
            raise GatewayError(
                grpc.StatusCode.UNAVAILABLE, "the gateway is not connected to Cuebot (stopping)"
            )
        started = time.perf_counter()
        try:
            reply, call = callable_.with_call(
                decoded.message, timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as error:
            failure = self._upstream_error(error, timeout)
            self._timed(method, failure.code, started)
            raise failure from None
        self._timed(method, grpc.StatusCode.OK, started)
        encoded, gzipped = maybe_gzip(self._transcoder.encode(reply), gzip)
        return RpcResult(
            body=encoded,
            headers=response_headers(call.initial_metadata(), call.trailing_metadata()),
            ignored_fields=decoded.ignored_fields,
            gzipped=gzipped,
        )

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
            return GatewayError(
                code, f"Cuebot at {self.endpoint} did not answer within {timeout:g}s"
            )
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
