"""The benchmark harness works end to end: ``python -m bench --smoke`` as a subprocess.

This proves that the harness starts the stand-in, the gateway (and Envoy and
h2load where installed), measures, stops everything and writes its JSON.  It
asserts that figures exist, never what they are: performance is not part of
the test suite's pass/fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The smoke run takes about ten seconds; this bound only stops a hung harness.
TIMEOUT_SECONDS = 300
FIGURES = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "peak_rss_mib", "response_bytes")

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install -y wrk): the benchmark harness needs it "
           "to send HTTP load",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the smoke benchmark once for this module's tests."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads(out.read_text())


def test_smoke_run_has_figures_for_the_gateway(smoke):
    """Every small scenario was measured on the gateway and every figure is a number."""
    _, document = smoke
    gateway = [m for m in document["measurements"] if m["target"] == "gateway"]
    assert {m["scenario"] for m in gateway} == {"shows.c1", "shows.c32"}
    for measurement in gateway:
        assert measurement["requests"] > 0, measurement
        assert "status" not in measurement["errors"], measurement
        for name in FIGURES:
            assert isinstance(measurement[name], int | float), (name, measurement)
    summary = {(row["scenario"], row["target"]) for row in document["summary"]}
    assert {("shows.c1", "gateway"), ("shows.c32", "gateway")} <= summary


def test_smoke_run_names_every_target_it_skipped(smoke):
    """A target whose tool is missing is reported as skipped, with how to install it."""
    result, document = smoke
    meta = document["meta"]
    assert set(meta["targets"]) | set(meta["skipped"]) == {"gateway", "envoy", "grpc"}
    for target, reason in meta["skipped"].items():
        assert "install" in reason, reason
        assert f"skipping target {target}" in result.stderr
    assert "req/s" in result.stdout
