"""The container image's install steps, run here without Docker.

The Dockerfile builds the gateway's wheel and a wheel of every dependency at the version
constraints.txt pins, installs them into a fresh virtualenv from those wheels alone, builds
the twistd plugin cache and serves; its HEALTHCHECK asks /healthz. This test does the same
in a temporary directory (from pip's cache: no network is needed once the suite's own
install has run) and then stops the gateway with SIGTERM as `docker stop` would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.integration.conftest import LISTENING
from tests.studio_protos import write_protos
from tests.unit.test_deploy_files import CONSTRAINTS, DOCKERFILE, ROOT, constraint_pins

PLUGIN_CACHE = "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
# pip's words when it cannot reach or find a package: the build is impossible here, not wrong.
UNREACHABLE = re.compile(r"No matching distribution|Could not find a version|"
                         r"NewConnectionError|Failed to establish|Temporary failure in name")
STEP_SECONDS = 600
START_SECONDS = 60


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run one install step, output captured, bounded in time.

    ``cwd`` is never the checkout, and PYTHON* variables (PYTHONPATH) are dropped, so that no
    other opencue_gateway shadows the installed one.
    """
    return subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          cwd=cwd, env=clean_environment(), timeout=STEP_SECONDS)


def clean_environment() -> dict[str, str]:
    """This environment without PYTHON* variables or the gateway's own settings."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("JWT_", "CUEBOT_", "PYTHON"))}


def build_step(*command: str | Path, cwd: Path) -> None:
    """A wheel-building step: skip when pip cannot get the packages, fail on any other error."""
    result = run(*command, cwd=cwd)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if UNREACHABLE.search(output):
            pytest.skip(f"the wheels cannot be built here: {output.strip().splitlines()[-1]}")
        pytest.fail(output)


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK, in exec form."""
    match = re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$", DOCKERFILE.read_text(),
                      re.MULTILINE)
    return json.loads(match.group(1))


def test_the_dockerfile_runs_these_steps():
    """The image installs with the constraints from wheels only and builds the plugin cache with
    the same command as the test below, so the test follows the image."""
    text = DOCKERFILE.read_text()
    assert "pip wheel --no-cache-dir --constraint constraints.txt" in text
    assert "--no-index --find-links /wheels" in text
    assert "--constraint /wheels/constraints.txt opencue-gateway" in text
    assert f'python -c "{PLUGIN_CACHE}"' in text
    assert healthcheck_command()[0] == "python"


def wait_for_port(process: subprocess.Popen, log: Path) -> int:
    """The port the gateway logs that it listens on (bounded wait)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        match = LISTENING.search(log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"the gateway did not start in {START_SECONDS}s")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_images_install_steps_serve_from_a_fresh_virtualenv(tmp_path):
    """Wheel, constrained install from wheels alone, proto_gen, plugin cache, serve: /healthz
    answers 200, the Dockerfile's HEALTHCHECK passes (and fails on a closed port), SIGTERM
    exits 0, and every installed distribution is one constraints.txt pins."""
    wheels = tmp_path / "wheels"
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    build_step(*pip, "wheel", "--no-deps", "--wheel-dir", wheels, ROOT, cwd=tmp_path)
    (gateway_wheel,) = wheels.glob("opencue_gateway-*.whl")
    build_step(*pip, "wheel", "--constraint", CONSTRAINTS, "--wheel-dir", wheels, gateway_wheel,
               cwd=tmp_path)

    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    install = run(python, "-m", "pip", "install", "--no-cache-dir", "--no-index",
                  "--find-links", wheels, "--constraint", CONSTRAINTS, "opencue-gateway",
                  cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    where = run(python, "-c", "import opencue_gateway; print(opencue_gateway.__file__)",
                cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    freeze = run(python, "-m", "pip", "freeze", "--exclude", "opencue-gateway",
                 "--exclude", "pip", cwd=tmp_path)
    installed = dict(line.split("==") for line in freeze.stdout.split())
    pins = constraint_pins()
    assert {canonicalize_name(name): version for name, version in installed.items()}.items() \
        <= pins.items()

    # proto_gen ships in the wheel, with grpcio-tools' protoc and well-known types.
    protos = write_protos(tmp_path / "protos")
    built = run(python, "-m", "proto_gen", protos, "-o", tmp_path / "studio.pb", cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "2 services and 4 methods to serve" in built.stdout

    assert run(python, "-c", PLUGIN_CACHE, cwd=tmp_path).returncode == 0
    (cache,) = venv.glob("lib/python*/site-packages/twisted/plugins/dropin.cache")
    cached = cache.read_bytes()

    log = tmp_path / "twistd.log"
    env = {**clean_environment(), "DRAIN_DELAY": "0s"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [venv / "bin" / "twistd", "-n", "--pidfile=", "opencue-gateway", "--sandbox",
             "--rest-host", "127.0.0.1", "--rest-port", "0"],
            stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        port = wait_for_port(process, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            assert reply.status == 200
            assert json.loads(reply.read()) == {"status": "ok"}
        check = [str(python), *healthcheck_command()[1:]]
        healthy = subprocess.run(check, env={**env, "REST_PORT": str(port)},
                                 capture_output=True, timeout=60)
        assert healthy.returncode == 0, healthy.stderr
        unhealthy = subprocess.run(check, env={**env, "REST_PORT": str(closed_port())},
                                   capture_output=True, timeout=60)
        assert unhealthy.returncode != 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=START_SECONDS) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The gateway found its plugin in the cache as built: it did not have to rewrite it
    # (which the image's unprivileged user could not).
    assert cache.read_bytes() == cached
    assert "opencue-gateway" in log.read_text() and "Traceback" not in log.read_text()
