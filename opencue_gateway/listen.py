"""Where the gateway listens: Twisted endpoint strings, each served by one service.

``--listen``/``LISTEN`` take any Twisted server endpoint string: ``tcp:8448``,
``tcp6:8448``, ``unix:/run/opencue-gateway.sock``, ``ssl:8448:privateKey=...``
and ``systemd:domain=INET:index=0`` for socket activation (the socket arrives
as an inherited descriptor with LISTEN_FDS/LISTEN_PID).  Without them,
REST_HOST and REST_PORT make the one default endpoint, as they always have.
TLS_CERT_FILE/TLS_KEY_FILE make every listener that is not already ``ssl:``
speak HTTPS; METRICS_PORT adds a listener serving only ``/metrics``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import quoteStringArgument, serverFromString, wrapServerTLS
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.python.failure import Failure

from opencue_gateway.config import ConfigError, GatewayConfig
from opencue_gateway.logs import logger
from opencue_gateway.tls import ServerTLS, load_server_tls

log = logger(__name__)


# Endpoint types that take a backlog= argument (systemd's socket was listened on already).
_BACKLOG_TYPES = ("tcp:", "tcp6:", "unix:", "ssl:")


def tcp_endpoint(host: str, port: int) -> str:
    """The endpoint string for a TCP port on one interface (IPv6 when the host has a colon)."""
    kind = "tcp6" if ":" in host else "tcp"
    return f"{kind}:port={port}:interface={quoteStringArgument(host)}"


def with_backlog(spec: str, backlog: int) -> str:
    """The endpoint string with LISTEN_BACKLOG, unless it sets its own or takes none.

    Twisted's default is 50: a burst of connections (a dashboard wall
    reloading) would fall into SYN retries, a second each.
    """
    if not spec.startswith(_BACKLOG_TYPES) or ":backlog=" in spec:
        return spec
    return f"{spec}:backlog={backlog}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A listener to make: the setting it comes from, its endpoint string, how to name it."""

    setting: str
    spec: str
    shown: str


def http_endpoints(config: GatewayConfig) -> list[Endpoint]:
    """Every HTTP listener: those of LISTEN, else the one of REST_HOST:REST_PORT."""
    backlog = config.listen_backlog
    if config.listen:
        return [Endpoint("LISTEN", with_backlog(spec, backlog), spec) for spec in config.listen]
    return [Endpoint("REST_PORT",
                     with_backlog(tcp_endpoint(config.rest_host, config.rest_port), backlog),
                     f"{config.rest_host}:{config.rest_port}")]


def metrics_endpoint(config: GatewayConfig) -> Endpoint | None:
    """METRICS_PORT's listener (on REST_HOST), if one is configured."""
    if config.metrics_port is None:
        return None
    return Endpoint("METRICS_PORT", tcp_endpoint(config.rest_host, config.metrics_port),
                    f"{config.rest_host}:{config.metrics_port}")


def server_tls(config: GatewayConfig) -> ServerTLS | None:
    """The HTTPS certificate and key from TLS_CERT_FILE/TLS_KEY_FILE, checked now."""
    if not (config.tls_cert_file and config.tls_key_file):
        return None
    return load_server_tls(config.tls_cert_file, config.tls_key_file,
                           datetime.datetime.now(datetime.UTC))


class Listener(Service):
    """Listens on one endpoint string and serves a factory there.

    Binding happens in ``privilegedStartService`` (twistd calls it before
    dropping privileges), and a failure stops start-up with one line naming
    the setting and the endpoint.
    """

    def __init__(self, reactor: Any, where: Endpoint, factory: IProtocolFactory,
                 tls: ServerTLS | None = None) -> None:
        self.where = where
        self.secure = tls is not None or where.spec.startswith("ssl:")
        try:
            endpoint = serverFromString(reactor, where.spec)
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise ConfigError(where.setting,
                              f"cannot use the endpoint {where.spec!r}: {error}") from None
        if tls is not None and not where.spec.startswith("ssl:"):
            endpoint = wrapServerTLS(tls.options, endpoint)
        self._reactor = reactor
        self._endpoint = endpoint
        self._factory = factory
        self._failure: Failure | None = None
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        """Bind now, or exit with one line.

        Every endpoint type Twisted ships binds synchronously, so a failure
        is known before this returns; one that fails later (a plugin's) is
        logged and stops the process.
        """
        super().privilegedStartService()
        self._endpoint.listen(self._factory).addCallbacks(self._listening, self._failed)
        if self._failure is not None:
            raise SystemExit(f"opencue-gateway: {self._reason()}")

    def _listening(self, port: IListeningPort) -> None:
        self.port = port

    def _failed(self, failure: Failure) -> None:
        """Remember why binding failed; if start-up is already over, say so and stop."""
        self._failure = failure
        if self.running:
            log.error("{reason}", reason=self._reason())
            self._reactor.stop()

    def _reason(self) -> str:
        """One line: which setting, which endpoint, what the system said."""
        assert self._failure is not None
        error = self._failure.value
        detail = getattr(error, "socketError", None) or error
        return f"{self.where.setting}: cannot listen on {self.where.shown}: {detail}"

    def startService(self) -> None:
        """Bind if twistd has not (tests start services directly)."""
        if self.port is None:
            self.privilegedStartService()
        super().startService()

    def stopService(self) -> Any:
        """Stop accepting connections; those already open are the drain's to close."""
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None

    def address(self) -> str:
        """Where this listener serves, as a URL-like text for the start-up line."""
        scheme = "https" if self.secure else "http"
        host = self.port.getHost() if self.port is not None else None
        if isinstance(host, IPv4Address):
            return f"{scheme}://{host.host}:{host.port}"
        if isinstance(host, IPv6Address):
            return f"{scheme}://[{host.host}]:{host.port}"
        if isinstance(host, UNIXAddress):
            name = host.name.decode() if isinstance(host.name, bytes) else host.name
            return f"{scheme}+unix:{name}"
        return f"{scheme} on {self.where.spec}"
