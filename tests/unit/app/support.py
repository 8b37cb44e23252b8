"""What the in-memory request-path tests share: paths, the error-shape check, log and metric
readers, and a recording stand-in for OpenTelemetry tracing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from opencue_gateway.accesslog import NAMESPACE as ACCESS
from opencue_gateway.logs import AUDIT_NAMESPACE as AUDIT
from tests.memory import MemoryGateway

GET_SHOWS = "/show.ShowInterface/GetShows"
FIND_SHOW = "/show.ShowInterface/FindShow"
GET_JOBS = "/job.JobInterface/GetJobs"
GET_FRAMES = "/job.JobInterface/GetFrames"
PAUSE = "/job.JobInterface/Pause"
KILL = "/job.JobInterface/Kill"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def assert_error(response: Any, status: int, code: int, words: str) -> dict:
    """The response is the contract's JSON error with this status, code and message."""
    assert response.status == status, response.body
    assert response.header("content-type") == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "details", "error"}
    assert body["code"] == code and body["details"] == []
    assert body["error"] == body["message"]
    assert words in body["message"], body["message"]
    assert "Traceback" not in body["message"]
    return body


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
