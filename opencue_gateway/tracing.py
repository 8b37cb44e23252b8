"""Distributed tracing: W3C trace context in, through, and (optionally) out as OpenTelemetry spans.

A client's ``traceparent``/``tracestate`` always travel to Cuebot as gRPC
metadata and appear in the access log.  With the optional ``otel`` extra
installed and OTEL_EXPORTER_OTLP_ENDPOINT set, the gateway also emits a
server span per request, continuing the client's trace, with a client span
per Cuebot call; Cuebot then receives the call span's ``traceparent``.
Without that, this module imports nothing from OpenTelemetry and the app
holds no tracer, so tracing costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import grpc

TRACE_HEADERS = (b"traceparent", b"tracestate")
# W3C Trace Context: version-traceid-parentid-flags, lower-case hex.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z")


def valid_traceparent(value: str | None) -> str | None:
    """The header if it is well-formed W3C trace context, else None (never forwarded)."""
    if value is not None and _TRACEPARENT.match(value):
        return value
    return None


class OtelTracing:
    """Spans for requests and Cuebot calls, exported over OTLP/HTTP in batches."""

    def __init__(self, endpoint: str, service_name: str, version: str) -> None:
        # Imported here so that without the `otel` extra the gateway never imports it.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = TracerProvider(resource=Resource.create(
            {"service.name": service_name, "service.version": version}))
        self._provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint))))
        self._tracer = self._provider.get_tracer("opencue_gateway", version)
        self._propagator = TraceContextTextMapPropagator()
        self._kinds = SpanKind
        self._error = StatusCode.ERROR

    def start_request(self, name: str, headers: Mapping[str, str]) -> Any:
        """A server span continuing the client's trace context, if it sent one."""
        parent = self._propagator.extract(carrier=dict(headers))
        return self._tracer.start_span(name, context=parent, kind=self._kinds.SERVER)

    def start_call(self, request_span: Any, path: str) -> tuple[Any, dict[str, str]]:
        """A client span for a Cuebot call, and the trace headers that carry it to Cuebot."""
        from opentelemetry import trace

        service, _, method = path.lstrip("/").partition("/")
        span = self._tracer.start_span(
            path.lstrip("/"), context=trace.set_span_in_context(request_span),
            kind=self._kinds.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method})
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return span, carrier

    def end_call(self, span: Any, code: grpc.StatusCode) -> None:
        """Close a Cuebot call span with its gRPC status."""
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            span.set_status(self._error, code.name)
        span.end()

    def end_request(self, span: Any, status: int, rpc: str) -> None:
        """Close a request span with its HTTP status."""
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("opencue.rpc", rpc)
        if status >= 500:
            span.set_status(self._error)
        span.end()

    def shutdown(self) -> None:
        """Flush spans still buffered (the gateway is stopping)."""
        self._provider.shutdown()


def _traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to /v1/traces."""
    return endpoint.rstrip("/") + "/v1/traces"
