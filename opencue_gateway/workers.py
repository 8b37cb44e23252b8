"""Several gateway processes serving one port (WORKERS), to use every core.

One Python process serves requests on one core (the GIL).  With WORKERS=N the
twistd process becomes a supervisor: it binds the listening sockets, starts N
worker processes, restarts a worker that dies, forwards SIGHUP, and on
SIGTERM asks every worker to drain and waits for all of them before it exits 0.

A worker is a plain ``twistd -n --pidfile= opencue-gateway`` handed its
socket the way systemd's socket activation hands one over: as descriptor 3,
with LISTEN_FDS=1 and LISTEN_PID set to the worker's own pid (the shell that
starts it sets that, then replaces itself with twistd), so the worker listens
on ``systemd:domain=INET:index=0`` like any socket-activated gateway.

Each worker gets its own socket, all bound to the one port with SO_REUSEPORT,
so the kernel deals connections out evenly (by a hash of their addresses), as
Envoy and nginx do for their workers.  One socket shared by every worker would
let whichever worker woke first accept a whole burst of connections and keep
them, while the other workers idle.  The supervisor keeps every socket open,
so a restarted worker takes over the connections that queued for its
predecessor; in a stop it closes them when the workers stop listening.

A worker's stdin is a pipe from the supervisor (``--supervised``).  However the
supervisor ends (SIGKILL, the OOM killer, a crash), the kernel closes that
pipe, and a worker that reads end-of-file drains and exits as on SIGTERM: no
orphan keeps serving the port with nobody to stop it.

Each worker is a full gateway with its own metrics and rate-limit buckets:
a scrape of /metrics shows the worker that answered it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol, Protocol, connectionDone
from twisted.internet.stdio import StandardIO
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from opencue_gateway.config import GatewayConfig
from opencue_gateway.logs import logger

log = logger(__name__)

# Where a worker finds its socket (systemd's first inherited descriptor).
LISTEN_FD = 3
WORKER_LISTEN = "systemd:domain={domain}:index=0"
RESTART_DELAY = 1.0
# A stop waits for the workers' own drain, plus this margin, then kills them.
STOP_MARGIN = 10.0
# Sets LISTEN_PID to the pid twistd will have, then becomes twistd (as systemd does
# between fork and exec).
_SHELL = 'LISTEN_PID=$$ exec "$@"'


def twistd_command() -> list[str]:
    """How to run this installation's twistd: its script beside the interpreter, if any."""
    script = Path(sys.executable).with_name("twistd")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def worker_overrides(config: GatewayConfig) -> dict[str, str]:
    """What a worker's environment says beyond the supervisor's: one worker, the socket."""
    domain = "INET6" if config.rest_family == socket.AF_INET6 else "INET"
    return {"WORKERS": "1", "LISTEN": WORKER_LISTEN.format(domain=domain),
            "LISTEN_FDS": "1", "LISTEN_FDNAMES": "gateway"}


class _Worker(ProcessProtocol):
    """One worker process, and a Deferred that fires when it has ended."""

    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self._supervisor = supervisor
        self.index = index
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        """Tell the supervisor, which restarts the worker unless it is stopping."""
        self.ended.callback(None)
        self._supervisor.worker_ended(self, reason)


class WorkerSupervisor(Service):
    """Binds the sockets, runs and restarts the workers, and stops them together."""

    def __init__(self, config: GatewayConfig, reactor: Any, environment: Mapping[str, str],
                 endpoint: Callable[[], str]) -> None:
        self.config = config
        self._reactor = reactor
        self._environment = dict(environment)
        self._endpoint = endpoint
        self._sockets: list[socket.socket] = []
        self.workers: dict[int, _Worker] = {}
        self._stopping = False

    def privilegedStartService(self) -> None:
        """Bind the workers' sockets now, so a port in use stops start-up with one line."""
        super().privilegedStartService()
        port = self.config.rest_port
        for _ in range(self.config.workers):
            self._sockets.append(self._bind(port))
            # REST_PORT=0: the first socket picks the port, the others join it.
            port = self.port

    def _bind(self, port: int) -> socket.socket:
        """One listening socket of the SO_REUSEPORT group on ``port``."""
        host = self.config.rest_host
        listener = socket.socket(self.config.rest_family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            listener.bind((host, port))
        except OSError as error:
            listener.close()
            self._close_sockets()
            raise SystemExit(
                f"opencue-gateway: REST_PORT: cannot listen on {host}:{port}: {error}"
            ) from None
        listener.listen(self.config.listen_backlog)
        listener.setblocking(False)
        return listener

    def _close_sockets(self) -> None:
        """Close every listening socket: the port refuses connections from then on."""
        for listener in self._sockets:
            listener.close()
        self._sockets.clear()

    @property
    def port(self) -> int:
        """The port the workers serve (useful with REST_PORT=0)."""
        return self._sockets[0].getsockname()[1]

    def startService(self) -> None:
        """Start the workers (the sandbox, if any, runs already)."""
        if not self._sockets:
            self.privilegedStartService()
        super().startService()
        self._environment["CUEBOT_ENDPOINT"] = self._endpoint()
        for index in range(self.config.workers):
            self._spawn(index)
        log.info(
            "opencue-gateway supervising {count} workers on http://{host}:{port}, "
            "Cuebot at {endpoint}",
            count=self.config.workers, host=self.config.rest_host, port=self.port,
            endpoint=self._environment["CUEBOT_ENDPOINT"],
        )

    def _spawn(self, index: int) -> None:
        """Start worker ``index``: twistd with its listening socket as descriptor 3."""
        worker = _Worker(self, index)
        self.workers[index] = worker
        argv = ["/bin/sh", "-c", _SHELL, "sh", *twistd_command(),
                "-n", "--pidfile=", "opencue-gateway", "--supervised"]
        self._reactor.spawnProcess(
            worker, argv[0], argv, env=self._environment,
            childFDs={0: "w", 1: 1, 2: 2, LISTEN_FD: self._sockets[index].fileno()},
        )

    def worker_ended(self, worker: _Worker, reason: Failure) -> None:
        """A worker exited: expected during a stop, otherwise restart it after a pause."""
        if self._stopping or self.workers.get(worker.index) is not worker:
            return
        log.error("worker {index} exited unexpectedly ({reason}); restarting it",
                  index=worker.index, reason=reason.getErrorMessage())
        self._reactor.callLater(RESTART_DELAY, self._restart, worker.index)

    def _restart(self, index: int) -> None:
        if not self._stopping:
            self._spawn(index)

    def reload(self) -> None:
        """SIGHUP: every worker re-reads its secret and policy files."""
        self.signal_workers("HUP")

    def signal_workers(self, signal_name: str) -> None:
        """Pass a signal (HUP to reload, TERM to drain) to every running worker."""
        for worker in self.workers.values():
            if not worker.ended.called and worker.transport is not None:
                # ProcessExitedAlready/OSError: it exited between the check and the signal.
                with contextlib.suppress(OSError, ProcessExitedAlready):
                    worker.transport.signalProcess(signal_name)

    @inlineCallbacks
    def stopService(self) -> Any:
        """Drain every worker (SIGTERM), close the sockets when they stop listening, kill
        stragglers after the grace.

        The workers stop listening after DRAIN_DELAY; the supervisor closes its
        copies of their sockets then too, so from that moment the kernel refuses
        new connections instead of queueing them where no one will accept them.
        """
        super().stopService()
        self._stopping = True
        log.info("stopping: draining {count} workers", count=len(self.workers))
        self.signal_workers("TERM")
        ended = DeferredList([w.ended for w in self.workers.values()])
        closing = self._reactor.callLater(self.config.drain_delay, self._close_sockets)
        limit = self.config.drain_delay + self.config.shutdown_grace + STOP_MARGIN
        timer = deferLater(self._reactor, limit, lambda: None)
        yield DeferredList([ended, timer], fireOnOneCallback=True, consumeErrors=True)
        if not timer.called:
            timer.cancel()
        self.signal_workers("KILL")
        yield ended
        if closing.active():
            closing.cancel()
        self._close_sockets()


class _SupervisorPipe(Protocol):
    """A worker's stdin: its end is the end of the supervisor."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The supervisor is gone: drain and stop, as SIGTERM would.

        A worker's own shutdown closes the pipe too, once its reactor has
        stopped running; that is no news.
        """
        if self._reactor.running:
            log.error("the supervisor has exited; draining and stopping")
            self._reactor.stop()


class SupervisorWatch(Service):
    """In a worker (``--supervised``): stop when the pipe from the supervisor closes."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def startService(self) -> None:
        """Watch stdin.  Nothing is written back; the writing side is /dev/null so that
        closing the watch cannot close the log on stdout."""
        super().startService()
        StandardIO(_SupervisorPipe(self._reactor), stdout=os.open(os.devnull, os.O_WRONLY),
                   reactor=self._reactor)
