"""Child processes of the harness: started in their own session, always stopped.

Every server the harness runs (stand-in, gateway, Envoy) goes through
:class:`Processes`, a context manager that stops them in reverse order on
any exit: normal end, an exception, Ctrl-C or SIGTERM.  Children run in a new
session so a Ctrl-C in the terminal reaches only the harness, which then
stops them in order (SIGTERM, a bounded wait, then SIGKILL); and each child
asks the kernel for SIGKILL if the harness itself dies without cleaning up.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType

PR_SET_PDEATHSIG = 1
STOP_SECONDS = 10.0


def _die_with_parent() -> None:
    """In the child before exec: be killed when the harness dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def spawn(
    argv: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start one server with stdout and stderr in ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent,
        )


def stop_all(processes: list[subprocess.Popen[bytes]], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM to every process at once, one shared deadline, then SIGKILL the rest.

    The gateway drains for up to its SHUTDOWN_GRACE on SIGTERM; stopping the
    servers together keeps a Ctrl-C from waiting for each drain in turn.
    """
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(seconds)


def wait_for(
    condition: Callable[[], object], seconds: float, what: str,
    process: subprocess.Popen[bytes] | None = None, log_path: Path | None = None,
) -> object:
    """Poll ``condition`` until it returns something truthy, for at most ``seconds``.

    If ``process`` exits meanwhile the wait ends at once with the tail of its
    log, so a server that fails to start says why instead of timing out.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: exited with {process.returncode}{_tail(log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready after {seconds:g}s{_tail(log_path)}")


def _tail(log_path: Path | None, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    if log_path is None or not log_path.exists():
        return ""
    text = log_path.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log_path) + " ---\n" + "\n".join(text)


class Processes:
    """The servers of one benchmark; stops all of them, last started first, on exit."""

    def __init__(self) -> None:
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def add(self, name: str, process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Track a started process so that it is stopped on exit."""
        self._running.append((name, process))
        return process

    def stop(self, name: str) -> None:
        """Stop the processes started under ``name`` now (to start a fresh one)."""
        stopping = [process for known, process in self._running if known == name]
        self._running = [(known, p) for known, p in self._running if known != name]
        stop_all(stopping)

    def __enter__(self) -> Processes:
        # Ctrl-C must stop the benchmark even where SIGINT was ignored at start
        # (a background job of a non-interactive shell); SIGTERM unwinds the same way.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A second Ctrl-C during cleanup must not leave servers behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_all([process for _, process in reversed(self._running)])
            self._running.clear()
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM to the harness unwinds like Ctrl-C, so ``finally`` blocks stop the children."""
    raise KeyboardInterrupt(f"signal {signum}")

