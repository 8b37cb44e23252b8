"""What the in-memory request-path tests share: paths, log and metric readers, and a
recording stand-in for OpenTelemetry tracing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from opencue_gateway.accesslog import NAMESPACE as ACCESS
from opencue_gateway.logs import AUDIT_NAMESPACE as AUDIT
from tests.conftest import make_token
from tests.memory import MemoryGateway, RawClient

GET_SHOWS = "/show.ShowInterface/GetShows"
FIND_SHOW = "/show.ShowInterface/FindShow"
GET_JOBS = "/job.JobInterface/GetJobs"
GET_FRAMES = "/job.JobInterface/GetFrames"
PAUSE = "/job.JobInterface/Pause"
KILL = "/job.JobInterface/Kill"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def raw_head(path: str, host: str = "x") -> bytes:
    """The request line and headers of an authenticated POST, to finish with a body."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {make_token()}\r\n").encode()


def half_answered(gw: MemoryGateway, path: str) -> RawClient:
    """A request whose answer is half out: a head promising 100 bytes, and 7 of them.

    Nothing in the gateway writes part of an answer and then waits, so the test
    writes it into the request the site is processing.
    """
    client = gw.raw(raw_head(path) + b"Content-Length: 2\r\n\r\n{}")
    [request] = gw.in_progress()
    request.setHeader(b"Content-Length", b"100")
    request.write(b"partial")
    return client


def assert_cut_after_partial(client: RawClient) -> None:
    """The half-written answer was cut: one status line, the partial body, then closed."""
    assert client.closed
    assert client.received.endswith(b"\r\n\r\npartial")
    assert client.received.count(b"HTTP/1.1") == 1


def samples(exposition: bytes) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from a Prometheus exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition.decode())
            for s in family.samples}


def scrape(gw: MemoryGateway) -> dict[tuple[str, tuple], float]:
    """The gateway's metrics as /metrics serves them."""
    response = gw.request("GET", "/metrics", None)
    assert response.status == 200
    return samples(response.body)


def access_records(events: list[dict]) -> list[dict]:
    """The access-log records among captured log events, in order."""
    return [e["access"] for e in events if e.get("log_namespace") == ACCESS]


def audit_records(events: list[dict]) -> list[dict]:
    """The audit records among captured log events, in order."""
    return [e["audit"] for e in events if e.get("log_namespace") == AUDIT]


@dataclass
class Span:
    """One span as the fake tracer saw it: how it began and how it ended."""

    name: str
    parent: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    ended: tuple | None = None


@dataclass
class RecordingTracing:
    """OtelTracing's surface, keeping every span so a test can read them back."""

    spans: list[Span] = field(default_factory=list)

    def start_request(self, name: str, headers: dict[str, str]) -> Span:
        span = Span(name, headers=dict(headers))
        self.spans.append(span)
        return span

    def start_call(self, request_span: Span, path: str) -> tuple[Span, dict[str, str]]:
        span = Span(path.lstrip("/"), parent=request_span)
        self.spans.append(span)
        return span, {"traceparent": f"00-{'1' * 32}-{len(self.spans):016x}-01"}

    def end_call(self, span: Span, code: grpc.StatusCode) -> None:
        span.ended = (code,)

    def end_request(self, span: Span, status: int, rpc: str) -> None:
        span.ended = (status, rpc)
