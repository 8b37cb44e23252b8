"""``python -m bench``: the gateway against Envoy and direct gRPC, all on 127.0.0.1.

Starts a Cuebot stand-in, our gateway (twistd), Envoy and the load
generators; checks that each target answers correctly; measures every
scenario on every target; prints medians and ratios; stops everything, also
on Ctrl-C.  Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt

from bench import ROOT, load, procs, procstat, report, runner
from bench.data import build_replies
from bench.envoy import INSTALL_HINT as ENVOY_HINT
from bench.envoy import find_envoy, start_envoy
from bench.envoy import version as envoy_version
from bench.gateway import start_gateway
from bench.scenarios import TARGET_LABELS, Scenario, select_scenarios, select_targets
from bench.standin import start_standin
from opencue_gateway.catalog import MethodCatalog

# wrk takes whole seconds only, so durations are whole seconds everywhere.
SMOKE_SECONDS = 1
SMOKE_WARMUP = 0
# Time to start everything and verify, per session, for the time estimate and bounds.
SETUP_SECONDS = 60


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see ``python -m bench --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        epilog="Scenarios: shows.c1 shows.c32 jobs100.c1 jobs100.c32 frames1k.c1 "
               "frames1k.c32 frames10k.c1 frames10k.c32 fanin.c200. Targets: gateway envoy grpc.",
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
    return args


def say(text: str) -> None:
    """Progress and warnings, on stderr so stdout holds only the report."""
    print(text, file=sys.stderr, flush=True)


def available_targets(wanted: list[str]) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The targets whose tools exist here; the rest with how to install what they lack."""
    tools = {"wrk": load.find_tool("wrk"), "h2load": load.find_tool("h2load"),
             "envoy": find_envoy()}
    hints = {"wrk": f"wrk is not installed: {load.INSTALL_HINTS['wrk']}",
             "h2load": f"h2load is not installed: {load.INSTALL_HINTS['h2load']}",
             "envoy": f"Envoy is not installed: {ENVOY_HINT}, or set ENVOY_BIN"}
    needs = {"gateway": ["wrk"], "envoy": ["envoy", "wrk"], "grpc": ["h2load"]}
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
    for name, argv in (("wrk", ["-v"]), ("h2load", ["--version"])):
        if tools.get(name):
            out = subprocess.run([tools[name], *argv], capture_output=True, text=True,
                                 timeout=30, check=False)
            versions[name] = (out.stdout or out.stderr).splitlines()[0].strip()
    if tools.get("envoy"):
        versions["envoy"] = f"{envoy_version(tools['envoy'])} ({tools['envoy'].source})"
    return versions


def make_token(secret: str, lifetime: float) -> str:
    """An HS256 token with ``exp``, accepted by both gateways for the whole session."""
    now = int(time.time())
    return jwt.encode({"sub": "bench", "iat": now, "exp": now + int(lifetime)}, secret,
                      algorithm="HS256")


def estimated_seconds(args: argparse.Namespace, scenarios: list[Scenario],
                      targets: list[str]) -> float:
    """How long the measuring will take, for the plan line and the processes' bounds.

    Each measurement adds to warm-up and window about 3 s: the wait for an
    idle target, the start on a whole second, and the tail second.
    """
    return args.runs * len(scenarios) * len(targets) * (args.duration + args.warmup + 3)


def run_session(args: argparse.Namespace, scenarios: list[Scenario], targets: list[str],
                tools: dict[str, Any], workdir: Path) -> tuple[list[runner.Measurement],
                                                               runner.Session]:
    """Start the servers, verify, measure; everything is stopped on the way out."""
    estimate = estimated_seconds(args, scenarios, targets) + SETUP_SECONDS
    secret = secrets.token_urlsafe(32)
    catalog = MethodCatalog.default()
    with procs.Processes() as processes:
        say("starting the Cuebot stand-in ...")
        cuebot = start_standin(processes, workdir, lifetime=estimate + 600)
        servers = {}
        if "gateway" in targets:
            say("starting the gateway (twistd) ...")
            servers["gateway"] = start_gateway(processes, workdir, cuebot.address, secret,
                                               workers=args.workers,
                                               extra_env=args.gateway_env)
        if "envoy" in targets:
            say("starting Envoy ...")
            servers["envoy"] = start_envoy(processes, workdir, tools["envoy"], catalog,
                                           cuebot.address, secret)
        session = runner.Session(
            workdir=workdir, token=make_token(secret, estimate + 3600),
            replies=build_replies(catalog), standin=cuebot, servers=servers,
            wrk=tools["wrk"], h2load=tools["h2load"],
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
            f"{len(targets)} target(s), {args.duration:g} s each "
            f"(~{estimated_seconds(args, scenarios, targets) / 60:.1f} min)")
        try:
            measurements = runner.run_rounds(session, scenarios, targets, args.runs,
                                             args.duration, args.warmup)
        finally:
            session.close()
    return measurements, session


def print_report(args: argparse.Namespace, rows: list[report.Row],
                 ratios: dict[str, dict[str, float | None]], scenarios: list[Scenario],
                 session: runner.Session, versions: dict[str, str],
                 skipped: dict[str, str]) -> None:
    """The tables on stdout."""
    print(f"\nopencue-gateway benchmark: medians of {args.runs} run(s), {args.duration:g} s each, "
          f"warm-up {args.warmup:g} s; all on 127.0.0.1")
    print("tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for target, reason in skipped.items():
        print(f"skipped {target}: {reason}")
    print()
    print(report.format_results(rows))
    print("\nCPU µs/req and CPU % are the target process's (all its threads), over the "
          "measured window. Cuebot calls/req below 1:\nthe gateway shared one Cuebot call "
          "between identical concurrent requests (FAN_IN). Stand-in CPU % is the\nCuebot "
          "stand-in's (* = near a full core: "
          "the stand-in, not the target, may set the pace); load CPU % is wrk's\nor h2load's; "
          "other CPU % is what processes outside the benchmark took (! = 10 % or more of a "
          "core:\nthe machine was shared, figures are low). Latency percentiles cover the whole "
          "run, warm-up included.")
    print("\nRatios (ours ÷ other, same session): above 1 is more req/s, or more latency, "
          "CPU and memory.\n")
    print(report.format_ratios(ratios))
    fan_in = {s.name for s in scenarios if s.fan_in}
    if fan_in:
        print("\nFan-in\n")
        print(report.format_fan_in(rows, fan_in))
    if session.verification.differences:
        print("\nEnvoy's JSON compared with ours (same replies):")
        print(report.format_differences(session.verification.differences))
    errors = sum(r.errors for r in rows)
    if errors:
        print(f"\nWARNING: {errors} requests failed during measurement (errors column): their "
              "figures are not comparable.\nRerun with --keep-files and read the target's log "
              "for the statuses.")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    args = parse_args(argv)
    try:
        scenarios = select_scenarios(args.scenarios, smoke=args.smoke)
        wanted = select_targets(args.targets)
    except ValueError as error:
        say(f"python -m bench: {error}")
        return 2
    targets, skipped, tools = available_targets(wanted)
    for target, reason in skipped.items():
        say(f"skipping target {target} ({TARGET_LABELS[target]}): {reason}")
    if not targets:
        say("python -m bench: no target can run here; install the tools named above")
        return 2
    versions = tool_versions(tools)
    workdir = Path(tempfile.mkdtemp(prefix="opencue-bench-"))
    started = time.time()
    try:
        measurements, session = run_session(args, scenarios, targets, tools, workdir)
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
    rows = report.summarize(measurements)
    ratios = report.ratios(rows)
    print_report(args, rows, ratios, scenarios, session, versions, skipped)
    if args.json_path:
        report.write_json(args.json_path, {
            "meta": {
                "started": started, "finished": time.time(), "duration": args.duration,
                "warmup": args.warmup, "runs": args.runs, "smoke": args.smoke,
                "workers": args.workers, "gateway_env": args.gateway_env,
                "targets": targets, "skipped": skipped,
                "tools": versions, "environment": report.environment(), "root": str(ROOT),
            },
            "scenarios": [{"name": s.name, "reply": s.reply, "connections": s.connections,
                           "description": s.description, "fan_in": s.fan_in}
                          for s in scenarios],
            "verification": {
                "checked": [{k: getattr(c, k) for k in ("target", "reply", "status",
                                                         "body_bytes", "content_type")}
                            for c in session.verification.checked],
                "envoy_differences": session.verification.differences,
            },
            "measurements": [m.as_dict() for m in measurements],
            "summary": [{"scenario": r.scenario, "target": r.target, "runs": r.runs,
                         "errors": r.errors, **r.values} for r in rows],
            "ratios": ratios,
        })
        say(f"results written to {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
