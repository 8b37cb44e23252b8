"""Metrics, logs and traces where a real process, listener or collector is involved.

The metrics' and access log's content after known traffic, and tracing through the app,
are checked in memory (tests/unit/app/test_observability.py); here: promtool on the real
exposition, the METRICS_PORT listener, spans exported over OTLP/HTTP, and twistd's JSON log.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import pytest_twisted

from tests.conftest import SECRET, make_token

GET_SHOWS = "/show.ShowInterface/GetShows"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


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
