"""Medians over runs, ratios between targets of the same run, the printed tables, the JSON.

Ratios are only ever taken between figures of the same session (same
machine, same stand-in, same data, interleaved rounds), never against
numbers from another day.  "x Envoy" is ours divided by Envoy's: above 1 is
more for throughput, worse for latency, CPU and memory.

Each table says which gateway settings produced it: the like-for-like
table and ratios come from the gateway with ``FAN_IN=false``, the fan-in
table from its own gateway with ``FAN_IN=true``.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.gzip_levels import GzipFigure
from bench.large import LargeMeasurement
from bench.runner import Measurement
from bench.scenarios import SCENARIOS, TARGETS

SUMMARY_FIELDS = (
    "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cpu_us_per_request", "cpu_percent",
    "peak_rss_mib", "rss_start_mib", "response_bytes", "standin_cpu_us_per_request",
    "standin_cpu_percent", "load_cpu_percent", "other_cpu_percent", "cuebot_calls_per_request",
)
# The stand-in is a Python process: near one core busy, it (not the target) sets the pace.
STANDIN_SATURATED_PERCENT = 85.0
# CPU that processes outside the benchmark took during a window; above this, the run was noisy.
NOISY_OTHER_PERCENT = 10.0


LARGE_FIELDS = (
    "first_byte_p50_ms", "first_byte_max_ms", "total_p50_ms", "total_max_ms",
    "cpu_ms_per_request", "cpu_percent", "rss_idle_mib", "extra_peak_rss_mib",
    "response_bytes", "standin_cpu_ms_per_request", "other_cpu_percent",
)
# Memory is planned for the worst case: the large table shows the highest peak of the runs.
LARGE_MAXIMA = ("extra_peak_rss_mib",)


@dataclass(slots=True)
class Row:
    """The median of every figure of one scenario and target over the runs."""

    scenario: str
    target: str
    runs: int
    values: dict[str, float | None]
    errors: int
    grpc_errors: int = 0
    server: str = ""
    settings: str = ""

    def get(self, name: str) -> float | None:
        """One median figure, or None where it does not apply."""
        return self.values.get(name)


def _grouped(measurements: Iterable[Any]) -> list[tuple[str, str, list[Any]]]:
    """Measurements by (scenario, target), in the scenarios' and the targets' order."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for m in measurements:
        groups.setdefault((m.scenario, m.target), []).append(m)
    order = {s.name: i for i, s in enumerate(SCENARIOS)}
    ordered = sorted(groups.items(),
                     key=lambda kv: (order.get(kv[0][0], 99), TARGETS.index(kv[0][1])))
    return [(scenario, target, items) for (scenario, target), items in ordered]


def _row(scenario: str, target: str, items: list[Any], values: dict[str, float | None]) -> Row:
    """One summary row: the figures, and the errors of every run added up."""
    return Row(scenario, target, len(items), values,
               sum(sum(m.errors.values()) for m in items), sum(m.grpc_errors for m in items),
               items[0].server, items[0].settings)


def summarize(measurements: Iterable[Measurement]) -> list[Row]:
    """Medians per (scenario, target), in the scenarios' and targets' order."""
    rows = []
    for scenario, target, items in _grouped(measurements):
        values = {}
        for name in SUMMARY_FIELDS:
            figures = [getattr(m, name) for m in items if getattr(m, name) is not None]
            values[name] = statistics.median(figures) if figures else None
        rows.append(_row(scenario, target, items, values))
    return rows


def summarize_large(measurements: Iterable[LargeMeasurement]) -> list[Row]:
    """Per (scenario, target) of the large scenarios: medians, and the highest memory peak."""
    rows = []
    for scenario, target, items in _grouped(measurements):
        values: dict[str, float | None] = {}
        for name in LARGE_FIELDS:
            figures = [v for m in items
                       if (v := m.figures.get(name, getattr(m, name, None))) is not None]
            pick = max if name in LARGE_MAXIMA else statistics.median
            values[name] = pick(figures) if figures else None
        values["good"] = sum(m.good for m in items)
        values["requests"] = sum(m.requests for m in items)
        rows.append(_row(scenario, target, items, values))
    return rows


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, or None when either is missing or zero."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def ratios(rows: list[Row]) -> dict[str, dict[str, float | None]]:
    """Per scenario: the gateway against Envoy and against direct gRPC, and Envoy against gRPC."""
    by_key = {(r.scenario, r.target): r for r in rows}
    out: dict[str, dict[str, float | None]] = {}
    for scenario in dict.fromkeys(r.scenario for r in rows):
        ours, envoy, grpc = (by_key.get((scenario, t)) for t in TARGETS)

        def figure(row: Row | None, name: str) -> float | None:
            return row.get(name) if row else None

        out[scenario] = {
            "rps_vs_envoy": ratio(figure(ours, "rps"), figure(envoy, "rps")),
            "rps_vs_grpc": ratio(figure(ours, "rps"), figure(grpc, "rps")),
            "envoy_rps_vs_grpc": ratio(figure(envoy, "rps"), figure(grpc, "rps")),
            "p50_vs_envoy": ratio(figure(ours, "p50_ms"), figure(envoy, "p50_ms")),
            "p99_vs_envoy": ratio(figure(ours, "p99_ms"), figure(envoy, "p99_ms")),
            "p50_vs_grpc": ratio(figure(ours, "p50_ms"), figure(grpc, "p50_ms")),
            "p99_vs_grpc": ratio(figure(ours, "p99_ms"), figure(grpc, "p99_ms")),
            "cpu_per_request_vs_envoy": ratio(figure(ours, "cpu_us_per_request"),
                                              figure(envoy, "cpu_us_per_request")),
            "peak_rss_vs_envoy": ratio(figure(ours, "peak_rss_mib"),
                                       figure(envoy, "peak_rss_mib")),
        }
    return out


def _fmt(value: float | None, spec: str) -> str:
    """A figure for the table, or a dash where it does not apply."""
    return "-" if value is None else format(value, spec)


def _fmt_ms(value: float | None) -> str:
    """Milliseconds: a decimal below 10 ms (direct gRPC's first byte), whole ones above."""
    return _fmt(value, ".1f" if value is not None and value < 10 else ",.0f")


def _table(header: list[str], lines: list[list[str]]) -> str:
    """Plain-text columns, first column left-aligned, the rest right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def render(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


def format_results(rows: list[Row]) -> str:
    """The main table: one line per scenario and target, medians over the runs."""
    header = ["scenario", "target", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "CPU %",
              "peak RSS MiB", "body bytes", "errors", "gRPC errors", "Cuebot calls/req",
              "stand-in CPU %", "load CPU %", "other CPU %"]
    lines = []
    previous = None
    for row in rows:
        saturated = (row.get("standin_cpu_percent") or 0) >= STANDIN_SATURATED_PERCENT
        noisy = (row.get("other_cpu_percent") or 0) >= NOISY_OTHER_PERCENT
        lines.append([
            row.scenario if row.scenario != previous else "",
            row.target,
            _fmt(row.get("rps"), ",.0f"),
            _fmt(row.get("p50_ms"), ".2f"),
            _fmt(row.get("p99_ms"), ".2f"),
            _fmt(row.get("cpu_us_per_request"), ",.0f"),
            _fmt(row.get("cpu_percent"), ".0f"),
            _fmt(row.get("peak_rss_mib"), ".1f"),
            _fmt(row.get("response_bytes"), ",.0f"),
            str(row.errors),
            str(row.grpc_errors),
            _fmt(row.get("cuebot_calls_per_request"), ".3f"),
            _fmt(row.get("standin_cpu_percent"), ".0f") + ("*" if saturated else ""),
            _fmt(row.get("load_cpu_percent"), ".0f"),
            _fmt(row.get("other_cpu_percent"), ".0f") + ("!" if noisy else ""),
        ])
        previous = row.scenario
    return _table(header, lines)


def format_ratios(table: dict[str, dict[str, float | None]]) -> str:
    """The ratio table: ours ÷ Envoy and ours ÷ direct gRPC, per scenario."""
    header = ["scenario", "req/s ÷Envoy", "req/s ÷gRPC", "Envoy req/s ÷gRPC", "p50 ÷Envoy",
              "p99 ÷Envoy", "p50 ÷gRPC", "CPU/req ÷Envoy", "RSS ÷Envoy"]
    keys = ["rps_vs_envoy", "rps_vs_grpc", "envoy_rps_vs_grpc", "p50_vs_envoy",
            "p99_vs_envoy", "p50_vs_grpc", "cpu_per_request_vs_envoy", "peak_rss_vs_envoy"]
    lines = [[scenario, *(_fmt(values[k], ".2f") for k in keys)]
             for scenario, values in table.items()]
    return _table(header, lines)


def format_fan_in(rows: list[Row]) -> str:
    """The fan-in table: throughput, latency, CPU and Cuebot calls per client request."""
    header = ["scenario", "target", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "errors",
              "gRPC errors", "Cuebot calls per client request"]
    lines = [[r.scenario, r.target, _fmt(r.get("rps"), ",.0f"), _fmt(r.get("p50_ms"), ".2f"),
              _fmt(r.get("p99_ms"), ".2f"), _fmt(r.get("cpu_us_per_request"), ",.0f"),
              str(r.errors), str(r.grpc_errors), _fmt(r.get("cuebot_calls_per_request"), ".3f")]
             for r in rows]
    return _table(header, lines)


def format_large(rows: list[Row]) -> str:
    """The production-size table: first byte, total, CPU and extra memory per request."""
    header = ["scenario", "target", "good/sent", "first byte p50 ms", "total p50 ms",
              "total max ms", "CPU ms/req", "idle RSS MiB", "extra peak RSS MiB",
              "body bytes", "errors", "gRPC errors", "other CPU %"]
    lines = []
    previous = None
    for row in rows:
        noisy = (row.get("other_cpu_percent") or 0) >= NOISY_OTHER_PERCENT
        lines.append([
            row.scenario if row.scenario != previous else "",
            row.target,
            f"{row.get('good'):.0f}/{row.get('requests'):.0f}",
            _fmt_ms(row.get("first_byte_p50_ms")),
            _fmt_ms(row.get("total_p50_ms")),
            _fmt_ms(row.get("total_max_ms")),
            _fmt(row.get("cpu_ms_per_request"), ",.0f"),
            _fmt(row.get("rss_idle_mib"), ",.0f"),
            _fmt(row.get("extra_peak_rss_mib"), ",.0f"),
            _fmt(row.get("response_bytes"), ",.0f"),
            str(row.errors),
            str(row.grpc_errors),
            _fmt(row.get("other_cpu_percent"), ".0f") + ("!" if noisy else ""),
        ])
        previous = row.scenario
    return _table(header, lines)


def format_gzip(figures: list[GzipFigure]) -> str:
    """gzip levels on the gateway's large answers: CPU against bytes."""
    header = ["reply", "level", "mode", "JSON bytes", "gzip bytes", "ratio", "CPU ms",
              "MB/CPU s"]
    lines = [[f.reply, f"{f.level}{' (gateway)' if f.gateway_level else ''}", f.mode,
              f"{f.input_bytes:,}", f"{f.output_bytes:,}", f"{f.ratio:.1f}", f"{f.cpu_ms:,.0f}",
              f"{f.mb_per_cpu_second:.0f}"] for f in figures]
    return _table(header, lines)


def format_differences(differences: dict[str, list[str]]) -> str:
    """Envoy's JSON against ours, per reply."""
    parts = []
    for key, lines in differences.items():
        if not lines:
            parts.append(f"  {key}: identical bytes")
            continue
        parts.append(f"  {key}:")
        parts.extend(f"    - {line}" for line in lines)
    return "\n".join(parts)


def environment() -> dict[str, Any]:
    """Where the numbers come from, for the JSON file."""
    import os

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """All results as one JSON file (atomically replaced)."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2, default=str) + "\n")
    partial.replace(path)
