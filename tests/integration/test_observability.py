"""Metrics, access logs and traces, checked after known traffic."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.logger import formatEvent

from opencue_gateway.accesslog import NAMESPACE as ACCESS
from tests.conftest import SECRET, make_token

GET_SHOWS = "/show.ShowInterface/GetShows"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def samples(exposition: bytes) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition.decode())
            for s in family.samples}


@pytest_twisted.ensureDeferred
async def test_metrics_after_known_traffic(gateway, cuebot):
    """Three GetShows, one unknown method and one 401 show up with the right labels."""
    for _ in range(3):
        assert (await gateway.post(GET_SHOWS)).status == 200
    assert (await gateway.post("/show.ShowInterface/NoSuchMethod")).status == 404
    assert (await gateway.request("POST", GET_SHOWS)).status == 401
    response = await gateway.request("GET", "/metrics", None)
    assert response.status == 200 and response.header("content-type").startswith("text/plain")
    values = samples(response.body)
    rpc = "show.ShowInterface/GetShows"
    assert values[("opencue_gateway_requests_total", (("code", "200"), ("rpc", rpc)))] == 3
    assert values[("opencue_gateway_requests_total", (("code", "404"), ("rpc", "unknown")))] == 1
    assert values[("opencue_gateway_requests_total", (("code", "401"), ("rpc", "unknown")))] == 1
    assert values[("opencue_gateway_request_duration_seconds_count", (("rpc", rpc),))] == 3
    assert values[("opencue_gateway_cuebot_call_duration_seconds_count",
                   (("grpc_code", "OK"), ("rpc", rpc)))] == 3
    assert values[("opencue_gateway_auth_failures_total", (("reason", "missing"),))] == 1
    assert values[("opencue_gateway_requests_in_flight", ())] == 1  # the scrape itself
    assert values[("opencue_gateway_pool_queue_depth", ())] == 0
    assert values[("opencue_gateway_cuebot_channel_state", (("state", "READY"),))] == 1
    assert values[("opencue_gateway_response_body_bytes_count", (("rpc", rpc),))] == 3
    labels = {dict(k[1]).get("rpc") for k in values} - {None}
    assert labels <= {rpc, "unknown", "metrics"}, labels


@pytest_twisted.ensureDeferred
async def test_rate_limited_and_forbidden_are_counted(start_gateway, cuebot, tmp_path):
    """429s and 403s (by reason) are counted."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.viewer]\nallow = ["@readonly"]\n')
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, RATE_LIMIT_RPS="0.001",
                            RATE_LIMIT_BURST="1", AUTH_POLICY_FILE=str(policy))
    token = make_token(role="viewer")
    assert (await gateway.post("/job.JobInterface/Kill", token=token)).status == 403
    assert (await gateway.post(GET_SHOWS, token=token)).status == 429
    values = samples((await gateway.request("GET", "/metrics", None)).body)
    assert values[("opencue_gateway_rate_limited_total", ())] == 1
    assert values[("opencue_gateway_auth_failures_total", (("reason", "role"),))] == 1


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian package prometheus; "
                           ".ci/system-packages installs it)")
@pytest_twisted.ensureDeferred
async def test_promtool_accepts_the_exposition(gateway):
    """promtool check metrics finds no problem in the exposition."""
    await gateway.post(GET_SHOWS)
    exposition = (await gateway.request("GET", "/metrics", None)).body
    result = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


@pytest_twisted.ensureDeferred
async def test_metrics_can_require_a_token(start_gateway, cuebot):
    """METRICS_REQUIRE_AUTH=true guards /metrics."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, METRICS_REQUIRE_AUTH="true")
    assert (await gateway.request("GET", "/metrics", None)).status == 401
    assert (await gateway.request("GET", "/metrics", None, token=make_token())).status == 200


@pytest_twisted.ensureDeferred
async def test_metrics_on_their_own_port(start_gateway, cuebot):
    """METRICS_PORT serves /metrics on a separate listener and not on the main one."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, METRICS_PORT=str(port))
    assert (await gateway.request("GET", "/metrics", None)).status == 401
    main_url = gateway.url
    gateway.url = f"http://127.0.0.1:{port}"
    separate = await gateway.request("GET", "/metrics", None)
    gateway.url = main_url
    assert separate.status == 200 and b"opencue_gateway_requests_total" in separate.body


@pytest_twisted.ensureDeferred
async def test_access_log_has_every_field_and_no_secret(gateway, cuebot, captured_logs):
    """One access line per request with client, principal, method, status, code, duration,
    bytes, request id and traceparent; tokens and the secret never appear in any log line."""
    token = make_token(sub="ann")
    await gateway.post(GET_SHOWS, token=token,
                       headers={"X-Request-Id": "req-1", "traceparent": TRACEPARENT})
    await gateway.post(GET_SHOWS, token="not.a.token")
    access = [e for e in captured_logs if e.get("log_namespace") == ACCESS]
    assert len(access) == 2
    first = access[0]["access"]
    assert first["principal"] == "ann" and first["rpc"] == "show.ShowInterface/GetShows"
    assert (first["status"], first["grpc_code"], first["http_method"]) == (200, 0, "POST")
    assert first["request_id"] == "req-1" and first["traceparent"] == TRACEPARENT
    assert first["client"] == "127.0.0.1" and first["bytes_in"] == 2 and first["bytes_out"] > 0
    assert first["duration_ms"] >= 0
    line = formatEvent(access[0])
    for fragment in ('"POST /show.ShowInterface/GetShows" 200', "grpc=0", "id=req-1",
                     f"trace={TRACEPARENT}", "ann"):
        assert fragment in line
    assert access[1]["access"]["status"] == 401 and access[1]["access"]["grpc_code"] == 16
    everything = "\n".join(formatEvent(e) + repr(e) for e in captured_logs)
    assert token not in everything and "not.a.token" not in everything
    assert SECRET not in everything


@pytest_twisted.ensureDeferred
async def test_traceparent_reaches_cuebot(gateway, cuebot):
    """A client's W3C trace context is forwarded to Cuebot; a malformed one is not."""
    await gateway.post(GET_SHOWS, headers={"traceparent": TRACEPARENT, "tracestate": "a=1"})
    assert cuebot.last().metadata["traceparent"] == TRACEPARENT
    assert cuebot.last().metadata["tracestate"] == "a=1"
    await gateway.post(GET_SHOWS, headers={"traceparent": "garbage"})
    assert "traceparent" not in cuebot.last().metadata


@pytest.fixture
def collector():
    """An OTLP/HTTP collector on loopback that keeps what it is sent."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, ExportTraceServiceRequest.FromString(body)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


@pytest_twisted.ensureDeferred
async def test_spans_continue_the_client_trace(start_gateway, cuebot, collector):
    """With OTEL_EXPORTER_OTLP_ENDPOINT: a server span in the client's trace, a child span per
    Cuebot call, and Cuebot sees the child span as its parent."""
    pytest.importorskip("opentelemetry.sdk")
    url, received = collector
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, OTEL_EXPORTER_OTLP_ENDPOINT=url)
    assert (await gateway.post(GET_SHOWS, headers={"traceparent": TRACEPARENT})).status == 200
    forwarded = cuebot.last().metadata["traceparent"]
    gateway.process.gateway.tracing.shutdown()
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    spans = [span for _, request in received for rs in request.resource_spans
             for ss in rs.scope_spans for span in ss.spans]
    assert [path for path, _ in received] == ["/v1/traces"]
    server = next(s for s in spans if s.kind == 2)
    client = next(s for s in spans if s.kind == 3)
    assert server.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert server.parent_span_id.hex() == "b7ad6b7169203331"
    assert client.parent_span_id == server.span_id and client.trace_id == server.trace_id
    assert client.name == "show.ShowInterface/GetShows"
    assert forwarded.split("-")[1:3] == [client.trace_id.hex(), client.span_id.hex()]


def test_json_log_format_from_twistd(tmp_path, cuebot):
    """LOG_FORMAT=json makes every line of the daemon's output a JSON object, access lines
    with their fields, and no secret anywhere."""
    import os
    import signal

    from tests.integration.conftest import TWISTD

    log = tmp_path / "out.log"
    env = {**os.environ, "JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
           "LOG_FORMAT": "json", "DRAIN_DELAY": "0s"}
    with log.open("wb") as out:
        process = subprocess.Popen([*TWISTD, "-n", "--pidfile=", "opencue-gateway", "--rest-host",
                                    "127.0.0.1", "--rest-port", "0"], stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            time.sleep(0.1)
            for line in log.read_text().splitlines():
                if "listening on" in line:
                    port = int(json.loads(line)["message"].split(":")[2].split(",")[0])
        assert port is not None, log.read_text()
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{port}{GET_SHOWS}", data=b"{}",
                                         headers={"Authorization": f"Bearer {make_token()}"})
        assert urllib.request.urlopen(request, timeout=10).status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line["access"] for line in lines if "access" in line]
    assert access and access[0]["status"] == 200 and access[0]["rpc"].endswith("GetShows")
    assert SECRET not in log.read_text()
