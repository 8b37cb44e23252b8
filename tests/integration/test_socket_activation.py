"""etc/opencue-gateway.socket's hand-over, without systemd.

The test plays systemd's part of socket activation (sd_listen_fds(3)): it holds a listening
socket, passes it as descriptor 3 with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, and starts
the gateway with the service unit's LISTEN. Because the socket outlives the gateway, a
connection made while no gateway runs waits in its queue and is answered by the next one:
what lets `systemctl restart` refuse nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_deploy_install import wait_for_port
from tests.unit.test_deploy_files import SERVICE, SOCKET, tool, unit_values

EXIT_SECONDS = 60
# Moves the socket to descriptor 3 and sets LISTEN_PID to its own pid, then becomes twistd
# (exec keeps the pid), as systemd does for the service's main process.
HAND_OVER = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
             "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])")


def start(listener: socket.socket, log: Path, cwd: Path) -> subprocess.Popen:
    """The gateway (sandbox) on the inherited socket, environment as systemd sets it."""
    (listen,) = [value.partition("=")[2] for value in unit_values(SERVICE)["Environment"]
                 if value.startswith("LISTEN=")]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JWT_", "CUEBOT_", "LISTEN", "REST_"))}
    env.update({"LISTEN": listen, "LISTEN_FDS": "1", "LISTEN_FDNAMES": SOCKET.name,
                "DRAIN_DELAY": "0s"})
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-c", HAND_OVER, str(listener.fileno()), tool("twistd"), "-n",
             "--pidfile=", "opencue-gateway", "--sandbox"],
            pass_fds=(listener.fileno(),), stdout=output, stderr=subprocess.STDOUT, env=env,
            cwd=cwd)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, as systemd stops the service; the exit status."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=EXIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def get_healthz(connection: socket.socket) -> bytes:
    """Send GET /healthz on a connected socket and read the whole answer (bounded)."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
    answer = b""
    deadline = time.monotonic() + EXIT_SECONDS
    while time.monotonic() < deadline:
        chunk = connection.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_the_gateway_serves_the_socket_systemd_passes_and_a_restart_refuses_nothing(tmp_path):
    """With the unit's LISTEN, the gateway serves the inherited socket; after it exits 0, a
    connection still gets in (queued on the socket) and the next gateway answers it."""
    log = tmp_path / "twistd.log"
    log.touch()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        first = start(listener, log, tmp_path)
        try:
            assert wait_for_port(first, log) == port
            with socket.create_connection(("127.0.0.1", port), timeout=EXIT_SECONDS) as served:
                assert get_healthz(served).startswith(b"HTTP/1.1 200")
        finally:
            assert stop(first) == 0, log.read_text()
        with socket.create_connection(("127.0.0.1", port), timeout=EXIT_SECONDS) as waiting:
            second = start(listener, log, tmp_path)
            try:
                assert get_healthz(waiting).startswith(b"HTTP/1.1 200")
            finally:
                assert stop(second) == 0, log.read_text()
