"""``python -m bench``: the gateway against Envoy and direct gRPC, all on 127.0.0.1.

Starts a Cuebot stand-in, our gateway (twistd), Envoy and the load
generators; checks that each target answers correctly; measures every
scenario on every target; prints medians and ratios; stops everything, also
on Ctrl-C.  Progress goes to stderr, the tables to stdout.

Like for like by default: the gateway runs with ``FAN_IN=false`` (Envoy has
no fan-in); only the fan-in scenario runs on a second gateway with
``FAN_IN=true``.  Each table names the settings that produced it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ROOT, gzip_levels, large, load, procs, procstat, report, runner, say
from bench.client import make_token
from bench.data import build_replies
from bench.envoy import INSTALL_HINT as ENVOY_HINT
from bench.envoy import find_envoy, start_envoy
from bench.envoy import version as envoy_version
from bench.gateway import (
    FAN_IN_ENV,
    FAN_IN_SERVER,
    GATEWAY_SERVER,
    HttpServer,
    start_gateway,
)
from bench.scenarios import (
    SCENARIOS,
    TARGET_LABELS,
    Scenario,
    select_scenarios,
    select_targets,
)
from bench.standin import start_standin
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.compression import LEVEL

# wrk takes whole seconds only, so durations are whole seconds everywhere.
SMOKE_SECONDS = 1
SMOKE_WARMUP = 0
# Time to start everything and verify, per session, for the time estimate and bounds.
SETUP_SECONDS = 60
# A production-size scenario on one target: a few whole requests, tens of seconds at most.
LARGE_SECONDS = 30


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see ``python -m bench --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        epilog=f"Scenarios: {' '.join(s.name for s in SCENARIOS)}. "
               "Targets: gateway envoy grpc.",
    )
    parser.add_argument("--duration", type=int, default=10,
                        help="measured seconds per run of each scenario and target (default 10)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="discarded seconds of load before each measured run "
                             "(default: a fifth of --duration, at most 2)")
    parser.add_argument("--runs", type=int, default=1,
                        help="rounds over all scenarios and targets; the report shows medians")
    parser.add_argument("--scenarios", help="comma-separated names, families (frames10k) "
                                            "or globs (*.c1)")
    parser.add_argument("--targets", help="comma-separated: gateway, envoy, grpc (default all)")
    parser.add_argument("--workers", type=int,
                        help="passed to the gateway as WORKERS (ignored by gateways without it)")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra environment variable for the gateway (repeatable), "
                             "e.g. MAX_CONCURRENT_STREAMS=32")
    parser.add_argument("--gzip-levels", default=f"{LEVEL},6",
                        help="gzip levels to compare on the gateway's production-size answers, "
                             "besides the gateway's own for streamed replies (default: the "
                             f"level of smaller replies, {LEVEL}, and zlib's default, 6)")
    parser.add_argument("--json", type=Path, dest="json_path",
                        help="write every measurement, median and ratio to this JSON file")
    parser.add_argument("--smoke", action="store_true",
                        help="about half a minute in all: one 1-second window of each small "
                             "scenario, skipping targets whose tools are missing")
    parser.add_argument("--keep-files", action="store_true",
                        help="keep the work folder (logs, Envoy config, descriptor set, scripts)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.runs = SMOKE_SECONDS, 1
        args.warmup = SMOKE_WARMUP if args.warmup is None else args.warmup
    if args.warmup is None:
        args.warmup = min(2, args.duration // 5)
    if args.duration <= 0 or args.runs < 1 or args.warmup < 0:
        parser.error("--duration must be > 0, --runs >= 1 and --warmup >= 0")
    if args.duration > 3600 or args.runs > 100:
        parser.error("--duration is capped at 3600 s and --runs at 100")
    bad = [item for item in args.gateway_env if "=" not in item or item.startswith("=")]
    if bad:
        parser.error(f"--gateway-env takes NAME=VALUE, got {', '.join(bad)}")
    args.gateway_env = dict(item.split("=", 1) for item in args.gateway_env)
    try:
        args.gzip_levels = [int(x) for x in args.gzip_levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--gzip-levels takes comma-separated levels 1-9, got {args.gzip_levels}")
    if not all(1 <= level <= 9 for level in args.gzip_levels):
        parser.error("--gzip-levels are between 1 and 9")
    return args


def available_targets(
    wanted: list[str], scenarios: list[Scenario],
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The targets whose tools exist here; the rest with how to install what they lack.

    Load scenarios need wrk (HTTP) or h2load (gRPC); production-size ones need curl.
    """
    tools = {"wrk": load.find_tool("wrk"), "h2load": load.find_tool("h2load"),
             "curl": load.find_tool("curl"), "envoy": find_envoy()}
    hints = {"wrk": f"wrk is not installed: {load.INSTALL_HINTS['wrk']}",
             "h2load": f"h2load is not installed: {load.INSTALL_HINTS['h2load']}",
             "curl": f"curl is not installed: {large.INSTALL_HINT}",
             "envoy": f"Envoy is not installed: {ENVOY_HINT}, or set ENVOY_BIN"}
    loads, larges = any(not s.large for s in scenarios), any(s.large for s in scenarios)
    needs = {
        "gateway": ["wrk"] * loads + ["curl"] * larges,
        "envoy": ["envoy"] + ["wrk"] * loads + ["curl"] * larges,
        "grpc": ["h2load"] * loads + ["curl"] * larges,
    }
    runnable, skipped = [], {}
    for target in wanted:
        missing = [hints[tool] for tool in needs[target] if not tools[tool]]
        if missing:
            skipped[target] = "; ".join(missing)
        else:
            runnable.append(target)
    return runnable, skipped, tools


def tool_versions(tools: dict[str, Any]) -> dict[str, str]:
    """Versions of the load generators and Envoy, for the report."""
    versions = {}
    for name, argv in (("wrk", ["-v"]), ("h2load", ["--version"]), ("curl", ["--version"])):
        if tools.get(name):
            out = subprocess.run([tools[name], *argv], capture_output=True, text=True,
                                 timeout=30, check=False)
            # The first line, without curl's list of libraries or wrk's copyright.
            first = (out.stdout or out.stderr).splitlines()[0]
            versions[name] = first.split(" (")[0].split(" Copyright")[0].strip()
    if tools.get("envoy"):
        versions["envoy"] = f"{envoy_version(tools['envoy'])} ({tools['envoy'].source})"
    return versions


def estimated_seconds(args: argparse.Namespace, scenarios: list[Scenario],
                      targets: list[str]) -> float:
    """How long the measuring will take, for the plan line and the processes' bounds.

    Each measurement adds to warm-up and window about 3 s: the wait for an
    idle target, the start on a whole second, and the tail second.  A
    production-size scenario counts :data:`LARGE_SECONDS`.
    """
    per_target = sum(LARGE_SECONDS if s.large else args.duration + args.warmup + 3
                     for s in scenarios)
    return args.runs * len(targets) * per_target


def server_starters(
    processes: procs.Processes, args: argparse.Namespace, scenarios: list[Scenario],
    targets: list[str], tools: dict[str, Any], workdir: Path, cuebot: str, secret: str,
) -> dict[str, Callable[[], HttpServer]]:
    """How to start each HTTP target: the like-for-like gateway, the fan-in one if needed, Envoy.

    Kept as functions so that a production-size measurement can start its
    target afresh (see :mod:`bench.large`).
    """
    catalog = MethodCatalog.default()
    starters: dict[str, Callable[[], HttpServer]] = {}
    if "gateway" in targets and any(not s.fan_in for s in scenarios):
        starters[GATEWAY_SERVER] = lambda: start_gateway(
            processes, workdir, cuebot, secret, workers=args.workers,
            extra_env=args.gateway_env)
    if "gateway" in targets and any(s.fan_in for s in scenarios):
        starters[FAN_IN_SERVER] = lambda: start_gateway(
            processes, workdir, cuebot, secret, workers=args.workers,
            extra_env={**args.gateway_env, **FAN_IN_ENV}, name=FAN_IN_SERVER)
    if "envoy" in targets:
        starters["envoy"] = lambda: start_envoy(processes, workdir, tools["envoy"], catalog,
                                                cuebot, secret)
    return starters


def run_session(
    args: argparse.Namespace, scenarios: list[Scenario], targets: list[str],
    tools: dict[str, Any], workdir: Path,
) -> tuple[list[runner.Measurement], list[large.LargeMeasurement], runner.Session]:
    """Start the servers, verify, measure; everything is stopped on the way out."""
    estimate = estimated_seconds(args, scenarios, targets) + SETUP_SECONDS
    secret = secrets.token_urlsafe(32)
    large_replies = sorted({s.reply for s in scenarios if s.large})
    with procs.Processes() as processes:
        say("starting the Cuebot stand-in"
            + (f" (building {', '.join(large_replies)}) ..." if large_replies else " ..."))
        cuebot = start_standin(processes, workdir, lifetime=estimate + 600, large=large_replies)
        starters = server_starters(processes, args, scenarios, targets, tools, workdir,
                                   cuebot.address, secret)
        servers = {}
        for name, start in starters.items():
            say(f"starting {name} ...")
            servers[name] = start()

        restarts = itertools.count(1)

        def restart(name: str) -> HttpServer:
            processes.stop(name)
            log = servers[name].log_path  # kept, under a number, for --keep-files
            log.rename(log.with_name(f"{log.stem}.{next(restarts)}{log.suffix}"))
            servers[name] = starters[name]()
            return servers[name]

        session = runner.Session(
            workdir=workdir, token=make_token(secret, estimate + 3600),
            replies=build_replies(MethodCatalog.default(), large_replies), standin=cuebot,
            servers=servers, wrk=tools["wrk"], h2load=tools["h2load"], curl=tools["curl"],
            restart=restart,
        )
        runner.prepare_files(session, scenarios)
        say("verifying every target answers correctly ...")
        runner.verify(session, scenarios, targets)
        own = [os.getpid(), cuebot.pid, *(s.pid for s in servers.values())]
        background = procstat.background_cpu_percent(1.0, own)
        say(f"other processes on this machine use {background:.0f} % of a core now"
            + (" -- the figures will be low and noisy; see the 'other CPU %' column"
               if background >= report.NOISY_OTHER_PERCENT else ""))
        say(f"measuring: {args.runs} run(s) x {len(scenarios)} scenario(s) x "
            f"{len(targets)} target(s), {args.duration:g} s per load run "
            f"(~{estimated_seconds(args, scenarios, targets) / 60:.1f} min)")
        try:
            measurements, large_measurements = runner.run_rounds(
                session, scenarios, targets, args.runs, args.duration, args.warmup)
        finally:
            session.close()
    return measurements, large_measurements, session


def measure_gzip(args: argparse.Namespace, session: runner.Session) -> list[Any]:
    """gzip levels on the gateway's production-size answers, after every server has stopped."""
    figures = []
    for key, body in session.verification.bodies.items():
        say(f"gzip levels on the gateway's {key} answer ({len(body):,} bytes) ...")
        figures += gzip_levels.measure(key, body, args.gzip_levels)
    session.verification.bodies.clear()
    return figures


def print_table(title: str, rows: list[report.Row], table: str) -> None:
    """A table, headed by its title and the processes and settings that produced its rows."""
    print(f"\n{title}")
    seen = {}
    for row in rows:
        if row.target != "grpc":
            seen.setdefault(row.server, row.settings)
    for server, settings in seen.items():
        label = "Envoy --concurrency 1 (one worker)" if server == "envoy" else \
            f"{server}: {settings}"
        print(f"  {label}")
    print()
    print(table)


def print_report(
    args: argparse.Namespace, rows: list[report.Row], large_rows: list[report.Row],
    gzip_figures: list[Any], session: runner.Session, versions: dict[str, str],
    skipped: dict[str, str], fan_in: set[str],
) -> None:
    """The tables on stdout, each headed by the settings that produced it."""
    windows = f", {args.duration:g} s each, warm-up {args.warmup:g} s" if rows else ""
    print(f"\nopencue-gateway benchmark: medians of {args.runs} run(s){windows}; "
          "all on 127.0.0.1")
    print("tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for target, reason in skipped.items():
        print(f"skipped {target}: {reason}")
    main_rows = [r for r in rows if r.scenario not in fan_in]
    fan_in_rows = [r for r in rows if r.scenario in fan_in]
    if main_rows:
        print_table("Like for like (each client request makes its own Cuebot call, through "
                    "every target):", main_rows, report.format_results(main_rows))
        print("\nreq/s counts good answers (2xx, body of the verified size; gRPC: HTTP 200) "
              "completed inside the measured\nwindow; p50/p99 are those answers' latencies: "
              "the warm-up's requests and failed answers are in no\npercentile. errors: "
              "answers that failed at the client (status, body size, reset, timeout), over "
              "the whole\nrun. gRPC errors: calls the Cuebot stand-in ended with a status other "
              "than OK (gRPC core's count),\nwarm-up and window: for direct gRPC the errors an "
              "HTTP 200 hides, through a gateway the failed\nCuebot calls. CPU µs/req and CPU % "
              "are the target process's (all its threads) over the window.\nStand-in CPU % is "
              "the Cuebot stand-in's (* = near a full core: the stand-in, not the target, may\n"
              "set the pace); load CPU % is wrk's or h2load's; other CPU % is what processes "
              "outside the benchmark\ntook (! = 10 % or more of a core: the machine was shared, "
              "figures are low).")
        print("\nRatios (ours ÷ other, same session): above 1 is more req/s, or more latency, "
              "CPU and memory.\n")
        print(report.format_ratios(report.ratios(main_rows)))
    if fan_in_rows:
        print_table("Fan-in (identical concurrent requests; the gateway shares one Cuebot call "
                    "between them):", fan_in_rows, report.format_fan_in(fan_in_rows))
    if large_rows:
        print_large(large_rows, session)
    if gzip_figures:
        print("\ngzip of the gateway's production-size answers, in the benchmark process "
              "(CPU: one compression,\nmedian of 3; chunks: 64 KiB pieces, each "
              "sync-flushed, as a streaming encoder would):\n")
        print(report.format_gzip(gzip_figures))
    if session.verification.differences:
        print("\nEnvoy's JSON compared with ours (same replies):")
        print(report.format_differences(session.verification.differences))
    errors = sum(r.errors + r.grpc_errors for r in rows + large_rows)
    if errors:
        print(f"\nWARNING: {errors} requests or Cuebot calls failed during measurement (errors "
              "and gRPC errors columns): their\nfigures are not comparable. Rerun with "
              "--keep-files and read the target's log for the statuses.")


def print_large(rows: list[report.Row], session: runner.Session) -> None:
    """The production-size table, its settings, and what failed."""
    print_table("Production-size replies (whole requests timed by curl from the moment each "
                "was sent, each target\nstarted afresh):", rows, report.format_large(rows))
    print("\nc1: 3 requests one after the other; c10: 10 started together. first byte / "
          "total: good answers only\n(status 200, verified body size, gRPC status OK). CPU "
          "ms/req: the target's CPU for the requests until\nit was idle again, per request. "
          "extra peak RSS: the target's peak (VmHWM) over its idle RSS just\nbefore, the "
          "highest of the runs. gRPC errors: the stand-in's failed calls.")
    failures = [c for c in session.verification.checked if c.error]
    for checked in failures:
        print(f"  verification: {checked.target} on {checked.reply}: {checked.error}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    args = parse_args(argv)
    try:
        scenarios = select_scenarios(args.scenarios, smoke=args.smoke)
        wanted = select_targets(args.targets)
    except ValueError as error:
        say(f"python -m bench: {error}")
        return 2
    targets, skipped, tools = available_targets(wanted, scenarios)
    for target, reason in skipped.items():
        say(f"skipping target {target} ({TARGET_LABELS[target]}): {reason}")
    if not targets:
        say("python -m bench: no target can run here; install the tools named above")
        return 2
    versions = tool_versions(tools)
    workdir = Path(tempfile.mkdtemp(prefix="opencue-bench-"))
    started = time.time()
    try:
        measurements, large_measurements, session = run_session(args, scenarios, targets,
                                                                tools, workdir)
    except KeyboardInterrupt:
        say("interrupted: every process the benchmark started has been stopped")
        return 130
    except RuntimeError as error:
        say(f"python -m bench: {error}")
        return 1
    finally:
        if args.keep_files:
            say(f"work files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    gzip_figures = measure_gzip(args, session)
    rows = report.summarize(measurements)
    large_rows = report.summarize_large(large_measurements)
    fan_in = {s.name for s in scenarios if s.fan_in}
    print_report(args, rows, large_rows, gzip_figures, session, versions, skipped, fan_in)
    if args.json_path:
        report.write_json(args.json_path, {
            "meta": {
                "started": started, "finished": time.time(), "duration": args.duration,
                "warmup": args.warmup, "runs": args.runs, "smoke": args.smoke,
                "workers": args.workers, "gateway_env": args.gateway_env,
                "settings": {name: server.settings for name, server in session.servers.items()},
                "targets": targets, "skipped": skipped,
                "tools": versions, "environment": report.environment(), "root": str(ROOT),
            },
            "scenarios": [{"name": s.name, "reply": s.reply, "connections": s.connections,
                           "description": s.description, "fan_in": s.fan_in, "large": s.large,
                           "requests": s.requests}
                          for s in scenarios],
            "verification": {
                "checked": [{k: getattr(c, k) for k in ("target", "reply", "status",
                                                         "body_bytes", "content_type", "error")}
                            for c in session.verification.checked],
                "envoy_differences": session.verification.differences,
            },
            "measurements": [m.as_dict() for m in measurements],
            "summary": [_summary(r) for r in rows],
            "ratios": report.ratios([r for r in rows if r.scenario not in fan_in]),
            "large_measurements": [m.as_dict() for m in large_measurements],
            "large_summary": [_summary(r) for r in large_rows],
            "gzip": [f.as_dict() for f in gzip_figures],
        })
        say(f"results written to {args.json_path}")
    return 0


def _summary(row: report.Row) -> dict[str, Any]:
    """One summary row for the JSON file."""
    return {"scenario": row.scenario, "target": row.target, "server": row.server,
            "settings": row.settings, "runs": row.runs, "errors": row.errors,
            "grpc_errors": row.grpc_errors, **row.values}


if __name__ == "__main__":
    sys.exit(main())
