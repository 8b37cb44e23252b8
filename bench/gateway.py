"""Our gateway as the benchmark runs it: the real daemon, ``twistd -n opencue-gateway``.

It is started exactly as in production (a twistd subprocess configured by
environment variables), so the figures include twistd, the reactor, the
worker pool and logging as deployed.  ``REST_PORT=0`` lets the OS pick the
port; the harness reads it from the process's listening socket (see
:func:`bench.procstat.listening_ports`) because at ``LOG_LEVEL=warn`` the
"listening on" line is not logged.

Like for like by default: ``FAN_IN=false``, so that every client request
makes its own Cuebot call, as it does through Envoy.  The fan-in scenario
runs a second gateway process with ``FAN_IN=true`` (see
:data:`FAN_IN_SERVER`); each measurement names the process it measured, and
the report prints the settings of each (:func:`settings`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.procstat import listening_ports

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
STARTUP_SECONDS = 60.0
# Variables of the gateway that the harness sets itself; inherited values would skew a run.
_OWN_PREFIXES = ("JWT_", "CUEBOT_", "REST_", "LOG_LEVEL", "WORKERS", "SHUTDOWN_GRACE",
                 "DRAIN_DELAY", "RATE_LIMIT_", "FAN_IN")
# The server names of the two gateway processes a session may run.
GATEWAY_SERVER = "gateway"
FAN_IN_SERVER = "gateway-fanin"
FAN_IN_ENV = {"FAN_IN": "true"}
# Variables the harness sets that change what is measured; the report prints them and
# every variable given with --gateway-env (addresses, the secret and the stop delays
# are left out).
_REPORTED = ("FAN_IN", "LOG_LEVEL", "RATE_LIMIT_RPS", "WORKERS")
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY")


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A started HTTP target: where to send requests, which process to measure, its settings."""

    name: str
    pid: int
    url: str
    log_path: Path
    settings: str = ""


def gateway_env(
    cuebot: str, secret: str, workers: int | None, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The gateway's environment: loopback only, quiet logs, a quick stop (no drain delay).

    The per-principal rate limit is off (``RATE_LIMIT_RPS=0``): every request
    of a load generator carries the same token, and Envoy is configured
    without one, so a limit would measure 429 pages.  Fan-in is off
    (``FAN_IN=false``): Envoy forwards every request.  ``extra`` (from
    ``--gateway-env``, then a scenario's own settings) can switch either back
    on, or set any other variable.  Variables a gateway version does not know
    are ignored by it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update({
        "CUEBOT_ENDPOINT": cuebot,
        "REST_HOST": "127.0.0.1",
        "REST_PORT": "0",
        "JWT_SECRET": secret,
        "LOG_LEVEL": "warn",
        "SHUTDOWN_GRACE": "2s",
        "DRAIN_DELAY": "0s",
        "RATE_LIMIT_RPS": "0",
        "FAN_IN": "false",
    })
    if workers is not None:
        # A later feature (several reactor processes); harmless while ignored.
        env["WORKERS"] = str(workers)
    env.update(extra or {})
    return env


def settings(env: dict[str, str], extra: dict[str, str] | None = None) -> str:
    """The variables that shape a gateway's figures, for the report (secret values masked)."""
    chosen = sorted({*(n for n in _REPORTED if n in env), *(extra or {})})
    return " ".join(f"{name}={'***' if any(w in name for w in _SECRET_WORDS) else env[name]}"
                    for name in chosen)


def start_gateway(
    processes: procs.Processes, workdir: Path, cuebot: str, secret: str,
    workers: int | None = None, extra_env: dict[str, str] | None = None,
    name: str = GATEWAY_SERVER,
) -> HttpServer:
    """Start ``twistd -n --pidfile= opencue-gateway`` and wait until it listens."""
    log_path = workdir / f"{name}.log"
    env = gateway_env(cuebot, secret, workers, extra_env)
    process = processes.add(name, procs.spawn(
        [*TWISTD, "-n", "--pidfile=", "opencue-gateway"], log_path, env=env, cwd=workdir,
    ))
    ports = procs.wait_for(
        lambda: listening_ports(process.pid), STARTUP_SECONDS, "the gateway (twistd)",
        process, log_path,
    )
    assert isinstance(ports, list)
    return HttpServer(name, process.pid, f"http://127.0.0.1:{ports[0]}", log_path,
                      settings(env, extra_env))
