"""Prometheus metrics: rates, errors and latencies per RPC, and the gateway's own state.

Labels are bounded: the ``rpc`` label is a catalog method (``job.JobInterface/GetFrames``),
one of the gateway's own pages (``healthz``, ``config``, ...), or the fixed
``unknown`` for paths that did not resolve; never a raw path, a principal or
an id.  Each gateway owns its registry (no process-wide globals), so several
gateways in one test process do not mix their counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

UNKNOWN = "unknown"
CONTENT_TYPE = CONTENT_TYPE_LATEST.encode("ascii")
# Whole requests and Cuebot calls: from a cached GetShows (ms) to a 10,000-frame GetFrames (s).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0)
SIZE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)


@dataclass(frozen=True, slots=True)
class GatewayState:
    """Live values read at scrape time: how full the pool is and how the channel is."""

    queue_depth: Callable[[], int]
    # Each Cuebot endpoint's channel state, by endpoint (CUEBOT_ENDPOINT's list).
    channel_states: Callable[[], dict[str, grpc.ChannelConnectivity | None]]


class _StateCollector(Collector):
    """Gauges computed when Prometheus scrapes, from the running gateway."""

    def __init__(self, state: GatewayState) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Queue depth, and each endpoint's channel state as one gauge per state (1 for the
        current)."""
        yield GaugeMetricFamily(
            "opencue_gateway_pool_queue_depth",
            "Requests waiting for a worker thread (beyond MAX_CONCURRENT_STREAMS).",
            value=self._state.queue_depth(),
        )
        channel = GaugeMetricFamily(
            "opencue_gateway_cuebot_channel_state",
            "Connectivity of the channel to each Cuebot endpoint: 1 for its current state.",
            labels=["endpoint", "state"],
        )
        for endpoint, current in self._state.channel_states().items():
            for state in grpc.ChannelConnectivity:
                channel.add_metric([endpoint, state.name], 1 if state == current else 0)
        yield channel


class Metrics:
    """The gateway's metrics and the exposition of them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "opencue_gateway_requests", "HTTP requests answered, by RPC and HTTP status.",
            ["rpc", "code"], registry=self.registry)
        self.duration = Histogram(
            "opencue_gateway_request_duration_seconds",
            "Whole requests, from the first byte in to the answer, by RPC.",
            ["rpc"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.cuebot_duration = Histogram(
            "opencue_gateway_cuebot_call_duration_seconds",
            "Cuebot calls (the gRPC call alone), by RPC and gRPC status.",
            ["rpc", "grpc_code"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.cuebot_calls = Counter(
            "opencue_gateway_cuebot_calls",
            "Cuebot calls by endpoint (CUEBOT_ENDPOINT's list) and gRPC status.",
            ["endpoint", "grpc_code"], registry=self.registry)
        self.in_flight = Gauge(
            "opencue_gateway_requests_in_flight", "Requests being processed.",
            registry=self.registry)
        self.rate_limited = Counter(
            "opencue_gateway_rate_limited", "Requests refused with 429.", registry=self.registry)
        self.auth_failures = Counter(
            "opencue_gateway_auth_failures",
            "Requests refused with 401 (bad or missing token) or 403 (role), by reason.",
            ["reason"], registry=self.registry)
        self.request_bytes = Histogram(
            "opencue_gateway_request_body_bytes", "Request body sizes, by RPC.",
            ["rpc"], buckets=SIZE_BUCKETS, registry=self.registry)
        self.response_bytes = Histogram(
            "opencue_gateway_response_body_bytes", "Response body sizes (as sent), by RPC.",
            ["rpc"], buckets=SIZE_BUCKETS, registry=self.registry)
        self.joined = Counter(
            "opencue_gateway_joined_requests",
            "Reads answered by joining an identical call already in flight, by RPC.",
            ["rpc"], registry=self.registry)
        self.skipped = Counter(
            "opencue_gateway_cuebot_calls_skipped",
            "Queued Cuebot calls never sent: the client left (client_gone) or the request's "
            "time ran out while it waited for a worker (deadline).",
            ["reason"], registry=self.registry)
        self.cached = Counter(
            "opencue_gateway_cached_reads",
            "Reads answered from the READ_CACHE_TTL cache, by RPC.",
            ["rpc"], registry=self.registry)
        self.streamed = Counter(
            "opencue_gateway_streamed_responses",
            "Large replies streamed (chunked) as they were encoded, by RPC and how they "
            "ended: complete, error (the connection is aborted once bytes are out), "
            "client_gone, timeout (HTTP_TIMEOUT cut the answer).",
            ["rpc", "outcome"], registry=self.registry)
        self.watches = Gauge(
            "opencue_gateway_watches", "Watch streams open (or waiting for their first answer).",
            registry=self.registry)
        self.watch_pollers = Gauge(
            "opencue_gateway_watch_pollers",
            "Pollers running: one per distinct watched question, however many watch it.",
            registry=self.registry)
        self.watch_polls = Counter(
            "opencue_gateway_watch_polls", "Cuebot polls made for watches, by RPC and gRPC status.",
            ["rpc", "grpc_code"], registry=self.registry)
        self.watch_changes = Counter(
            "opencue_gateway_watch_changes_pushed",
            "Change events written to watchers (one per watcher per change), by RPC.",
            ["rpc"], registry=self.registry)
        self.watches_ended = Counter(
            "opencue_gateway_watches_ended",
            "Watches ended, by reason: client_gone, token_expired, revoked, draining, "
            "time_limit, error.", ["reason"], registry=self.registry)
        self._children: dict[tuple[str, int], tuple[Any, Any, Any, Any]] = {}
        # The same, for Cuebot calls (written by worker threads: a lost race only makes a
        # child twice, and prometheus_client hands out the same child both times).
        self._call_children: dict[tuple[str, str, grpc.StatusCode], tuple[Any, Any]] = {}

    def watch(self, state: GatewayState) -> None:
        """Report the gateway's live state (pool queue, channel) at every scrape."""
        self.registry.register(_StateCollector(state))

    def count_shared(self, rpc: str, kind: str) -> None:
        """Count a read answered by a shared call ("joined") or the read cache ("cached")."""
        (self.joined if kind == "joined" else self.cached).labels(rpc).inc()

    def count_streamed(self, rpc: str, outcome: str) -> None:
        """Count a streamed answer by how it ended."""
        self.streamed.labels(rpc, outcome).inc()

    def count_skipped(self, reason: str) -> None:
        """Count a queued call that was never sent; called from worker threads."""
        self.skipped.labels(reason).inc()

    def observe_request(self, rpc: str, status: int, seconds: float, bytes_in: int,
                        bytes_out: int) -> None:
        """Count one finished request."""
        children = self._children.get((rpc, status))
        if children is None:
            # Resolving labels costs a lock and several lookups; the label set
            # is bounded, so each (rpc, status) is resolved once.
            children = self._children[(rpc, status)] = (
                self.requests.labels(rpc, str(status)), self.duration.labels(rpc),
                self.request_bytes.labels(rpc), self.response_bytes.labels(rpc))
        requests, duration, request_bytes, response_bytes = children
        requests.inc()
        duration.observe(seconds)
        request_bytes.observe(bytes_in)
        response_bytes.observe(bytes_out)
        if status == 429:
            self.rate_limited.inc()

    def count_stream(self, rpc: str, status: int) -> None:
        """Count a watch stream that ended: a request, but not a latency or a body size."""
        self.requests.labels(rpc, str(status)).inc()

    # The WatchObserver of watch.py.
    def watch_opened(self) -> None:
        """A watch was admitted."""
        self.watches.inc()

    def watch_ended(self, reason: str) -> None:
        """A watch ended."""
        self.watches.dec()
        self.watches_ended.labels(reason).inc()

    def poller_started(self) -> None:
        """A poller started."""
        self.watch_pollers.inc()

    def poller_stopped(self) -> None:
        """A poller stopped."""
        self.watch_pollers.dec()

    def polled(self, rpc: str, code: grpc.StatusCode) -> None:
        """A watch poll answered."""
        self.watch_polls.labels(rpc, code.name).inc()

    def changes_pushed(self, rpc: str, count: int) -> None:
        """Change events written to ``count`` watchers."""
        self.watch_changes.labels(rpc).inc(count)

    def observe_cuebot_call(self, rpc: str, endpoint: str, code: grpc.StatusCode,
                            seconds: float) -> None:
        """Time one Cuebot call and count it for its endpoint; called from worker threads
        (prometheus_client is thread-safe)."""
        children = self._call_children.get((rpc, endpoint, code))
        if children is None:
            children = self._call_children[(rpc, endpoint, code)] = (
                self.cuebot_duration.labels(rpc, code.name),
                self.cuebot_calls.labels(endpoint, code.name))
        duration, calls = children
        duration.observe(seconds)
        calls.inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
