"""The root of a gateway process's service tree.

Its children (service.py adds them) own one resource each; this root adds
what concerns the process as a whole: the log format twistd should use, the
start-up lines once every child runs, and SIGHUP's reload.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.logger import ILogObserver

from opencue_gateway.listen import Listener
from opencue_gateway.logs import JsonLinesObserver, logger
from opencue_gateway.services import SandboxService, SequentialMultiService
from opencue_gateway.startup import log_start
from opencue_gateway.tls import ServerTLS
from opencue_gateway.wiring import Gateway

log = logger(__name__)


class GatewayProcess(SequentialMultiService):
    """One gateway: its wiring, and the services that start, serve and drain it."""

    def __init__(self, gateway: Gateway, tls: ServerTLS | None) -> None:
        super().__init__()
        self.gateway = gateway
        self.tls = tls

    @property
    def listeners(self) -> list[Listener]:
        """The HTTP (and metrics) listeners, in the order they were added."""
        return [child for child in self if isinstance(child, Listener)]

    @property
    def sandbox(self) -> SandboxService | None:
        """The embedded sandbox Cuebot's service, in sandbox mode."""
        return next((child for child in self if isinstance(child, SandboxService)), None)

    def setServiceParent(self, parent: Any) -> None:
        """With LOG_FORMAT=json, give twistd's application the JSON log observer.

        twistd looks for an ILogObserver component on the application after
        makeService and before it starts logging, which is the one way a
        plugin can choose the log format of everything, Twisted's lines too.
        """
        super().setServiceParent(parent)
        if self.gateway.config.log_format == "json" and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, JsonLinesObserver(sys.stdout.buffer))

    def startService(self) -> None:
        """Start every child in order, then say what is running."""
        super().startService()
        log_start(self.gateway, [listener.address() for listener in self.listeners], self.tls)

    @inlineCallbacks
    def stopService(self) -> Any:
        """Stop every child in reverse order (the drain), then say so."""
        yield super().stopService()
        log.info("stopped")

    def reload(self) -> None:
        """SIGHUP: re-read the secret file and the policy."""
        self.gateway.reload()
