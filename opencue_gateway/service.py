"""The composition root: twistd's Options and makeService.

``twistd -n --pidfile= opencue-gateway`` imports this module through the
plugin in ``twisted/plugins/``.  :func:`makeService` reads the configuration
(a bad value exits with one line naming it) and returns the service tree:
one small service per resource, started in the order they are added and
stopped in reverse (see services.py and drain.py).  Nothing that starts
threads or opens gRPC channels runs before ``startService``, so the process
may still fork (daemonize) safely before that.  This is the only module that
uses the global reactor.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import grpc
from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.python import usage
from twisted.python.threadpool import ThreadPool

from opencue_gateway import __version__
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import (
    SANDBOX_SETTINGS,
    SETTINGS,
    ConfigError,
    GatewayConfig,
    config_from_process,
    process_environment,
)
from opencue_gateway.drain import DrainNotice, InFlight, WatchDrain
from opencue_gateway.grpc_channel import channel_factory
from opencue_gateway.keys import load_public_key_file
from opencue_gateway.listen import Listener, http_endpoints, metrics_endpoint, server_tls
from opencue_gateway.logs import set_level
from opencue_gateway.process import GatewayProcess
from opencue_gateway.services import (
    AuditFileService,
    CuebotChannelService,
    SandboxService,
    SequentialMultiService,
    ThreadPoolService,
    TracingService,
)
from opencue_gateway.startup import install_signal_handlers
from opencue_gateway.tracing import OtelTracing
from opencue_gateway.wiring import build, policy_of
from opencue_gateway.workers import SupervisorWatch, WorkerSupervisor, worker_overrides

# How often buckets of idle callers are dropped from the rate limiter.
HOUSEKEEPING_SECONDS = 60


class Options(usage.Options):
    """Every setting is a flag (``GRPC_TIMEOUT`` -> ``--grpc-timeout``); see config.py.

    Values are validated by config.py, not here, so a bad flag and a bad
    variable get the same one-line error.
    """

    synopsis = "[options]"
    longdesc = (
        "HTTP/JSON gateway in front of OpenCue's Cuebot gRPC API. Every option can also be "
        "set through its environment variable, shown in brackets; a flag wins over the "
        "variable."
    )
    optFlags = [[s.flag, None, f"{s.help} [{s.variable}]"] for s in SETTINGS if s.switch] + [
        ["supervised", None, "run as a worker of WORKERS' supervisor: stop when stdin closes"],
    ]
    optParameters = [[s.flag, None, None, f"{s.help} [{s.variable}]"]
                     for s in SETTINGS if not s.switch and not s.repeatable]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Serve HTTP on this Twisted endpoint string (repeatable) [LISTEN]."""
        self["listen"].append(endpoint)

    def flags(self) -> dict[str, str | None]:
        """Given flags by setting attribute, as text; None where the flag was not used."""
        given: dict[str, str | None] = {}
        for item in SETTINGS:
            value = self.get(item.flag)
            if item.switch:
                value = "true" if value else None
            elif item.repeatable:
                value = ",".join(value) if value else None
            given[item.attribute] = value
        return given


def makeService(options: Options) -> MultiService:
    """Read the configuration and build the process's service tree; exit with one line if bad."""
    from twisted.internet import reactor

    try:
        config = config_from_process(options.flags())
        if config.workers > 1:
            root, reload = supervisor_tree(config, reactor, options.flags())
        else:
            root = gateway_tree(config, reactor, supervised=bool(options["supervised"]))
            reload = root.reload
    except ConfigError as error:
        raise SystemExit(f"opencue-gateway: {error}") from None
    reactor.callWhenRunning(install_signal_handlers, reactor, reload,
                            ignore_interrupt=bool(options["supervised"]))
    return root


def gateway_tree(config: GatewayConfig, reactor: Any, supervised: bool = False,
                 catalog: MethodCatalog | None = None,
                 open_channel: Callable[[str], grpc.Channel] | None = None) -> GatewayProcess:
    """One gateway process; its children start in this order and stop in reverse.

    ``catalog`` and ``open_channel`` default to the configured protos
    (PROTO_DESCRIPTOR_SET, else the installed ones) and a real gRPC channel
    (see wiring.build); tests pass their own.
    """
    # LOG_LEVEL filters every gateway logger of the process (logs.py): process-wide, so here.
    set_level(config.log_level)
    pool = ThreadPool(minthreads=0, maxthreads=config.max_concurrent_streams,
                      name="cuebot-calls")
    tracing = tracing_of(config)
    gateway = build(config, reactor, pool, catalog, open_channel, tracing)
    tls = server_tls(config)
    root = GatewayProcess(gateway, tls)
    ThreadPoolService(pool).setServiceParent(root)
    sandbox = _sandbox(config)
    if sandbox is not None:
        sandbox.setServiceParent(root)
    CuebotChannelService(gateway.cuebot, lambda: [sandbox.server.address] if sandbox
                         else config.cuebot_endpoints, reactor).setServiceParent(root)
    if gateway.jwks is not None:
        gateway.jwks.setServiceParent(root)
    if config.audit_log_file:
        AuditFileService(config.audit_log_file).setServiceParent(root)
    if tracing is not None:
        TracingService(tracing).setServiceParent(root)
    if gateway.limiter is not None:
        housekeeping = TimerService(HOUSEKEEPING_SECONDS, gateway.limiter.forget_idle)
        housekeeping.clock = reactor
        housekeeping.setServiceParent(root)
    InFlight(gateway.site, reactor, config.shutdown_grace).setServiceParent(root)
    for where in http_endpoints(config):
        Listener(reactor, where, gateway.site, tls).setServiceParent(root)
    metrics = metrics_endpoint(config)
    if metrics is not None:
        Listener(reactor, metrics, gateway.metrics_site()).setServiceParent(root)
    if supervised:
        SupervisorWatch(reactor).setServiceParent(root)
    DrainNotice(gateway.health, gateway.site, reactor, config.drain_delay).setServiceParent(root)
    WatchDrain(gateway.watches).setServiceParent(root)
    return root


def supervisor_tree(config: GatewayConfig, reactor: Any, flags: dict[str, str | None]
                    ) -> tuple[MultiService, Any]:
    """WORKERS > 1: the sandbox (if any) and the supervisor of single-worker gateways.

    The configuration is checked here with the same functions a gateway
    uses (protos, policy, certificates, Cuebot TLS files) without building one, so a
    mistake still stops start-up with one line instead of N crashing workers.
    """
    set_level(config.log_level)
    policy_of(config, MethodCatalog.configured(config.proto_descriptor_set))
    load_public_key_file(config)
    server_tls(config)
    channel_factory(config)
    if config.otel_exporter_otlp_endpoint:
        _require_otel()
    root = SequentialMultiService()
    sandbox = _sandbox(config)
    if sandbox is not None:
        sandbox.setServiceParent(root)
    overrides = worker_overrides(config)
    drop: set[str] = set()
    if sandbox is not None:
        # Workers call the supervisor's sandbox, with its (default) secret; they run none.
        drop = {s.variable for s in SANDBOX_SETTINGS}
        if config.jwt_secret is not None:
            overrides["JWT_SECRET"] = config.jwt_secret.decode("utf-8")
            drop.add("JWT_SECRET_FILE")
    supervisor = WorkerSupervisor(
        config, reactor, process_environment(flags, overrides, drop),
        lambda: sandbox.server.address if sandbox else ",".join(config.cuebot_endpoints))
    supervisor.setServiceParent(root)
    return root, supervisor.reload


def tracing_of(config: GatewayConfig) -> OtelTracing | None:
    """OpenTelemetry spans when a collector is configured; then the otel extra is needed."""
    if not config.otel_exporter_otlp_endpoint:
        return None
    _require_otel()
    return OtelTracing(config.otel_exporter_otlp_endpoint, config.otel_service_name,
                       __version__)


def _require_otel() -> None:
    """Tracing needs the otel extra; say so at start-up rather than at the first span."""
    modules = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    try:
        missing = any(importlib.util.find_spec(name) is None for name in modules)
    except ModuleNotFoundError:
        missing = True
    if missing:
        raise ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT",
                          "tracing needs the otel extra: pip install 'opencue-gateway[otel]'")


def _sandbox(config: GatewayConfig) -> SandboxService | None:
    """The embedded sandbox Cuebot, imported only in sandbox mode (production never is)."""
    if not config.sandbox.enabled:
        return None
    from opencue_gateway.sandbox.factory import sandbox_server

    try:
        return SandboxService(sandbox_server(**config.sandbox.server_options()))
    except ValueError as error:
        raise ConfigError("SANDBOX_LOG_ROOT", str(error)) from None

