"""Fixtures and helpers for the tests that run the daemon itself under twistd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from twisted.internet import reactor
from twisted.internet.task import deferLater

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
STARTUP_SECONDS = 30


@pytest.fixture
def twistd(tmp_path: Path):
    """Start the gateway under twistd (output in tmp_path/twistd.log); kills leftovers."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str], *args: str) -> subprocess.Popen:
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("JWT_", "CUEBOT_"))}
        full_env.update({"DRAIN_DELAY": "0s", "RATE_LIMIT_RPS": "0",
                         "SANDBOX_PRESET": "readme"})
        full_env.update(env)
        with (tmp_path / "twistd.log").open("wb") as log:
            process = subprocess.Popen(
                [*TWISTD, "-n", "--pidfile=", "opencue-gateway", "--rest-host", "127.0.0.1",
                 "--rest-port", "0", *args],
                stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_path,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


async def wait_for_port(process: subprocess.Popen, tmp_path: Path) -> int:
    """Poll the log until the gateway says where it listens (bounded)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        match = LISTENING.search((tmp_path / "twistd.log").read_text(errors="replace"))
        if match:
            return int(match.group(1))
        assert process.poll() is None, (tmp_path / "twistd.log").read_text()
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("the gateway did not start in time")


async def wait_for_exit(process: subprocess.Popen, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        await deferLater(reactor, 0.05, lambda: None)
    if process.poll() is None:
        process.kill()
        process.wait()
        raise AssertionError("the gateway did not exit in time")
    return process.returncode


