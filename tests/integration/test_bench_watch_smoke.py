"""``python -m bench.watch`` works end to end on a few watchers: it starts the sandbox and the
gateway, holds the watches, pushes changes to every one of them and stops everything.

Only counts and the figures' presence and order are asserted, never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench import ROOT

TIMEOUT_SECONDS = 180


def test_the_watch_bench_runs_and_reports_every_figure(tmp_path):
    """Twenty watchers of a five-job GetJobs: every figure is there, every watcher got every
    change (the run fails otherwise), and no server is left running."""
    out = tmp_path / "watch.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.watch", "--watchers", "20", "--idle-seconds", "1",
         "--rounds", "2", "--interval", "1s", "--jobs", "5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["watchers"] == 20 and figures["jobs_in_reply"] == 6
    assert figures["interval_s"] == 1.0
    assert 0 <= figures["change_to_first_ms"] <= figures["change_to_last_ms"]
    for name in ("memory_per_watcher_kib", "idle_cpu_ms_per_s", "fan_out_ms", "change_cpu_ms"):
        assert isinstance(figures[name], (int, float)), name
    assert "| memory per watcher |" in result.stdout
    assert "Pause: first watcher" in result.stderr and "Resume: first watcher" in result.stderr
