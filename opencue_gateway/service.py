"""The composition root: twistd's Options and makeService, and the service that runs it all.

``twistd -n --pidfile= opencue-gateway`` imports this module through the
plugin in ``twisted/plugins/``.  :func:`makeService` validates the
configuration (a bad value exits with one line naming it) and returns a
:class:`GatewayService`.  Nothing that starts threads or opens gRPC channels
runs before ``startService``, so the process may still fork (daemonize)
safely before that.
"""

from __future__ import annotations

import datetime
import signal
import sys
from typing import Any

import grpc
import orjson
from prometheus_client.twisted import MetricsResource
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import ILogObserver
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import usage
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Site

from opencue_gateway import __version__
from opencue_gateway.accesslog import AccessLog, RequestRecord
from opencue_gateway.app import GatewayApp, Page, probe_page, static_page
from opencue_gateway.audit import AuditFileObserver, AuditLog, start_audit_file, stop_audit_file
from opencue_gateway.auth import (
    Authenticator,
    GatewayRealm,
    make_checker,
    make_portal,
    sign_token,
)
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import (
    MIN_SECRET_BYTES,
    SETTINGS,
    ConfigError,
    GatewayConfig,
    config_from_process,
    reload_secret,
    short_secrets,
    worker_environment,
)
from opencue_gateway.cors import CorsPolicy
from opencue_gateway.docs import docs_page, read_assets
from opencue_gateway.fanin import FanIn
from opencue_gateway.health import Health
from opencue_gateway.jwks import jwks_keys
from opencue_gateway.keys import load_public_key_file
from opencue_gateway.logs import JsonLinesObserver, logger, set_level
from opencue_gateway.metrics import CONTENT_TYPE, GatewayState, Metrics
from opencue_gateway.openapi import openapi_json
from opencue_gateway.policy import Policy, PolicyError, load_policy
from opencue_gateway.ratelimit import RateLimiter
from opencue_gateway.site import GatewaySite, HttpLimits
from opencue_gateway.tls import ServerTLS, cuebot_credentials, load_server_tls
from opencue_gateway.tracing import OtelTracing
from opencue_gateway.transcode import Transcoder
from opencue_gateway.upstream import CuebotClient, channel_options
from opencue_gateway.workers import WorkerSupervisor

log = logger(__name__)

# How often the drain checks for finished requests and closed connections.
DRAIN_POLL_SECONDS = 0.05
SANDBOX_TOKEN_LIFETIME = 24 * 3600
# The sandbox's own flags (with --sandbox): farm size, randomness, simulation.
SANDBOX_OPTIONS: dict[str, tuple[Any, str]] = {
    "shows": (int, "generate a farm with this many shows (default 1)"),
    "jobs-per-show": (int, "generated farm: jobs per show (default 10)"),
    "layers-per-job": (int, "generated farm: layers per job (default 3)"),
    "frames-per-layer": (int, "generated farm: frames per layer (default 100)"),
    "hosts": (int, "generated farm: render hosts (default 10)"),
    "seed": (int, "makes the generated farm and the simulation reproducible (default 0)"),
    "tick-seconds": (float, "simulated seconds per tick (default 1)"),
    "speed": (float, "simulated seconds per real second (default 1)"),
    "failure-rate": (float, "share of simulated frames that fail (default 0.05)"),
}
# Of those, the ones that do not size the farm.
RUN_OPTIONS = ("seed", "tick_seconds", "speed", "failure_rate")
# How often buckets of idle callers are dropped from the rate limiter.
HOUSEKEEPING_SECONDS = 60


class Options(usage.Options):
    """Flags mirror the environment variables (``GRPC_TIMEOUT`` -> ``--grpc-timeout``).

    Values are validated by config.py, not here, so a bad flag and a bad
    variable get the same one-line error.
    """

    synopsis = "[options]"
    longdesc = (
        "HTTP/JSON gateway in front of OpenCue's Cuebot gRPC API. Every option can also be "
        "set through the environment variable of the same name in upper case "
        "(--grpc-timeout / GRPC_TIMEOUT); a flag wins over the variable."
    )
    optFlags = [
        ["sandbox", None, "run an in-memory sandbox Cuebot inside the gateway and use it "
                          "(no OpenCue needed; the JWT secret defaults to default-secret-key)"],
        ["simulate", None, "sandbox: advance time (dispatch, run and finish frames)"],
    ]
    optParameters = [[s.flag, None, None, f"{s.help} [{s.variable}]"] for s in SETTINGS] + [
        [flag, None, None, f"sandbox: {text}"] for flag, (_, text) in SANDBOX_OPTIONS.items()
    ]

    def flags(self) -> dict[str, str | None]:
        """Given flags by setting attribute; None where the flag was not used."""
        return {s.attribute: self.get(s.flag) for s in SETTINGS}

    def sandbox_options(self) -> dict[str, Any]:
        """The sandbox's farm and simulation options, typed; only with --sandbox."""
        given = {flag: self[flag] for flag in SANDBOX_OPTIONS if self[flag] is not None}
        if (given or self["simulate"]) and not self["sandbox"]:
            raise ConfigError("--" + next(iter(given), "simulate"), "only applies with --sandbox")
        typed: dict[str, Any] = {}
        for flag, raw in given.items():
            parse, _ = SANDBOX_OPTIONS[flag]
            try:
                typed[flag.replace("-", "_")] = parse(raw)
            except ValueError:
                raise ConfigError(f"--{flag}", f"expected a number, got {raw!r}") from None
        sizes = {k: v for k, v in typed.items() if k not in RUN_OPTIONS}
        run = {k: v for k, v in typed.items() if k in RUN_OPTIONS}
        return {"sizes": sizes, "simulate": bool(self["simulate"]), **run}


def makeService(options: Options) -> GatewayService:
    """Validate the configuration and build the gateway; exit with one line if it is bad."""
    from twisted.internet import reactor

    try:
        config = config_from_process(options.flags(), sandbox=bool(options["sandbox"]))
        sandbox_options = options.sandbox_options()
        service: GatewayService | WorkerSupervisor
        if config.workers > 1:
            service = _supervisor(config, reactor, options.flags(), sandbox_options)
        else:
            service = GatewayService(config, reactor, sandbox_options=sandbox_options)
    except ConfigError as error:
        raise SystemExit(f"opencue-gateway: {error}") from None
    reactor.callWhenRunning(install_signal_handlers, reactor, service)
    return service


def _supervisor(config: GatewayConfig, reactor: Any, flags: dict[str, str | None],
                sandbox_options: dict[str, Any]) -> WorkerSupervisor:
    """WORKERS > 1: a supervisor of single-worker gateways sharing one socket.

    Each worker is checked now by building one gateway in this process, so
    a configuration error still stops start-up here, with one line.
    """
    GatewayService(config, reactor)
    overrides = {"WORKERS": "1"}
    if config.sandbox and config.jwt_secret is not None:
        overrides["JWT_SECRET"] = config.jwt_secret.decode("utf-8")
    return WorkerSupervisor(
        config, reactor, worker_environment(flags, overrides),
        sandbox=_sandbox_server(sandbox_options) if config.sandbox else None,
    )


def _sandbox_server(options: dict[str, Any]) -> Any:
    """The embedded sandbox Cuebot; imported only in sandbox mode, which production never uses."""
    from opencue_gateway.sandbox.factory import sandbox_server

    return sandbox_server(**options)


def install_signal_handlers(reactor: Any, service: GatewayService | WorkerSupervisor) -> None:
    """SIGTERM: a clean stop that exits 0.  SIGHUP: re-read the secret and policy files.

    twistd re-raises the terminating signal after shutdown, so a drained
    gateway would still die "by SIGTERM"; systemd and Kubernetes stop services
    with SIGTERM, and a completed drain is a successful exit.  Installed once
    the reactor runs, after Twisted's own handlers.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        log.info("SIGTERM received: draining")
        reactor.callFromThread(reactor.stop)

    def on_sighup(signum: int, frame: object) -> None:
        reactor.callFromThread(service.reload)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sighup)


class GatewayService(MultiService):
    """Runs the gateway: thread pool, Cuebot channel, optional sandbox, HTTP(S) listener.

    Stopping drains instead of dropping: /readyz fails first while requests
    are still served (DRAIN_DELAY, so load balancers stop sending), then the
    listener closes, calls in flight may finish (up to SHUTDOWN_GRACE), idle
    connections are closed after their responses are flushed, and only then
    do the channel, the pool and the sandbox stop.
    """

    def __init__(
        self, config: GatewayConfig, reactor: Any, sandbox_options: dict[str, Any] | None = None,
        listen_fd: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._reactor = reactor
        # A worker serves a socket its supervisor bound (WORKERS > 1).
        self._listen_fd = listen_fd
        set_level(config.log_level)
        self.catalog = MethodCatalog.default()
        transcoder = Transcoder(strict=config.strict_json)
        transcoder.prepare(
            [m.input_type for m in self.catalog] + [m.output_type for m in self.catalog]
        )
        self.tls = (
            load_server_tls(config.tls_cert_file, config.tls_key_file, _utc_now())
            if config.tls_cert_file and config.tls_key_file else None
        )
        self._cuebot_credentials = (
            cuebot_credentials(config.cuebot_tls_ca_file, config.cuebot_tls_cert_file,
                               config.cuebot_tls_key_file)
            if config.uses_cuebot_tls else None
        )
        self.sandbox = _sandbox_server(sandbox_options or {}) if config.sandbox else None
        self.pool = ThreadPool(
            minthreads=0, maxthreads=config.max_concurrent_streams, name="cuebot-calls"
        )
        self.metrics = Metrics(GatewayState(
            queue_depth=lambda: max(0, self.cuebot.pending - config.max_concurrent_streams),
            channel_state=lambda: self.cuebot.state,
        ))
        self.cuebot = CuebotClient(
            reactor=reactor,
            pool=self.pool,
            channel_factory=self._open_channel,
            catalog=self.catalog,
            transcoder=transcoder,
            default_timeout=config.grpc_timeout,
            max_pending=config.max_concurrent_streams + config.max_queued_requests,
            on_call=self.metrics.observe_cuebot_call,
        )
        self.tracing = _tracing(config)
        # The identity provider's keys: fetched while the service runs, held by the checker.
        self.jwks = jwks_keys(config, reactor)
        if self.jwks is not None:
            self.jwks.setServiceParent(self)
        self.checker = make_checker(config, load_public_key_file(config), self.jwks)
        portal = make_portal(self.checker, GatewayRealm(role_claim=config.jwt_role_claim))
        self.health = Health(self.cuebot, checks=[lambda: self.checker.problem])
        self.limiter = (
            RateLimiter(config.rate_limit_rps, config.rate_limit_burst, reactor.seconds)
            if config.rate_limit_rps > 0 else None
        )
        public, private = self._pages()
        self.app = GatewayApp(
            self.catalog, self.cuebot, Authenticator(portal), self._load_policy(), AuditLog(),
            reactor, limiter=self.limiter, public=public, private=private, tracing=self.tracing,
            fanin=FanIn(reactor.seconds, config.read_cache_ttl) if config.fan_in else None,
            on_shared=self._count_shared,
        )
        self.site = GatewaySite(
            self.app.resource(),
            HttpLimits(config.max_request_bytes, config.http_timeout, config.http_idle_timeout),
            cors=CorsPolicy(config.cors_origins, config.cors_headers, int(config.cors_max_age))
            if config.cors_origins else None,
            reactor=reactor,
            observer=RequestObservers(self.metrics, AccessLog()),
        )
        self.port: Any = None
        self.metrics_port: Any = None
        self._audit_file: AuditFileObserver | None = None
        self._housekeeping: LoopingCall | None = None

    def _pages(self) -> tuple[dict[bytes, Page], dict[bytes, Page]]:
        """The gateway's own GET pages: public ones, and ones that need a token."""
        public: dict[bytes, Page] = {}
        private = {b"/config": Page("config", b"application/json", lambda: (200, orjson.dumps(
            self.effective_config(), option=orjson.OPT_SORT_KEYS)))}
        if self.config.health_endpoints:
            public[b"/healthz"] = probe_page("healthz", self.health.live)
            public[b"/readyz"] = probe_page("readyz", self.health.ready)
        if self.config.metrics_port is None:
            metrics = Page("metrics", CONTENT_TYPE, lambda: (200, self.metrics.exposition()))
            (private if self.config.metrics_require_auth else public)[b"/metrics"] = metrics
        public.update(_api_pages(self.catalog, self.config.strict_json))
        return public, private

    def _count_shared(self, rpc: str, kind: str) -> None:
        """Count a read answered by a shared call ("joined") or the cache ("cached")."""
        (self.metrics.joined if kind == "joined" else self.metrics.cached).labels(rpc).inc()

    def setServiceParent(self, parent: Any) -> None:
        """With LOG_FORMAT=json, give twistd's application the JSON log observer.

        twistd looks for an ILogObserver component on the application after
        makeService and before it starts logging, which is the one way a
        plugin can choose the log format of everything, Twisted's lines too.
        """
        super().setServiceParent(parent)
        if self.config.log_format == "json" and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, JsonLinesObserver(sys.stdout.buffer))

    def _load_policy(self) -> Policy:
        """The authorization policy from AUTH_POLICY_FILE, or allow-all without one."""
        try:
            return load_policy(self.config.auth_policy_file, self.catalog)
        except PolicyError as error:
            raise ConfigError("AUTH_POLICY_FILE", str(error)) from None

    def reload(self) -> None:
        """SIGHUP: re-read JWT_SECRET_FILE, JWT_PUBLIC_KEY_FILE and AUTH_POLICY_FILE.

        On any error the previous ones are all kept.
        """
        try:
            secrets = ([reload_secret(self.config), *self.config.jwt_previous_secrets]
                       if self.config.jwt_secret_file else None)
            public_keys = load_public_key_file(self.config)
            policy = self._load_policy()
        except ConfigError as error:
            log.error("SIGHUP: kept the previous settings: {error}", error=str(error))
            return
        if secrets is not None:
            self.checker.set_secrets(secrets)
        self.checker.set_public_keys(public_keys)
        self.app.policy = policy
        log.info("SIGHUP: secret file, public key file and policy re-read")

    def effective_config(self) -> dict[str, Any]:
        """The configuration as running, secrets redacted (the start-up log, GET /config).

        With --sandbox, Cuebot is the embedded sandbox wherever it listens, not
        the CUEBOT_ENDPOINT default.
        """
        described = self.config.describe()
        described["CUEBOT_ENDPOINT"] = self.cuebot_endpoint
        described["JWT_KEYS"] = self.checker.describe_keys()
        if self.jwks is not None:
            described["JWT_JWKS"] = self.jwks.describe()
        return described

    @property
    def cuebot_endpoint(self) -> str:
        """Where Cuebot calls go: the embedded sandbox once started, else CUEBOT_ENDPOINT."""
        return self.sandbox.address if self.sandbox else self.config.cuebot_endpoint

    def _open_channel(self, endpoint: str) -> grpc.Channel:
        """The one long-lived channel to Cuebot, opened when the service starts."""
        options = channel_options(self.config)
        if self._cuebot_credentials is None:
            return grpc.insecure_channel(endpoint, options=options)
        if self.config.cuebot_tls_server_name:
            options.append(("grpc.ssl_target_name_override", self.config.cuebot_tls_server_name))
        return grpc.secure_channel(endpoint, self._cuebot_credentials, options=options)

    def privilegedStartService(self) -> None:
        """Bind the HTTP port and open the audit file first: failures stop start-up in one line."""
        if self.config.audit_log_file:
            try:
                self._audit_file = start_audit_file(self.config.audit_log_file)
            except OSError as error:
                raise SystemExit(
                    f"opencue-gateway: AUDIT_LOG_FILE: cannot open "
                    f"{self.config.audit_log_file!r}: {error.strerror}"
                ) from None
        if self._listen_fd is not None:
            self.port = self._adopt(self._listen_fd)
        else:
            self.port = self._listen("REST_PORT", self.config.rest_port, self.site, self.tls)
        if self.config.metrics_port is not None:
            self.metrics_port = self._listen("METRICS_PORT", self.config.metrics_port,
                                             Site(MetricsResource(self.metrics.registry)), None)
        super().privilegedStartService()

    def _adopt(self, fd: int) -> Any:
        """Serve a listening socket inherited from the supervisor (with TLS if configured)."""
        factory: Any = self.site
        if self.tls is not None:
            factory = TLSMemoryBIOFactory(self.tls.options, False, self.site)
        return self._reactor.adoptStreamPort(fd, self.config.rest_family, factory)

    def _listen(self, variable: str, port: int, site: Site, tls: ServerTLS | None) -> Any:
        """Bind one listener on REST_HOST, or stop start-up with one line naming the setting."""
        host = self.config.rest_host
        try:
            if tls is not None:
                return self._reactor.listenSSL(port, site, tls.options, interface=host)
            return self._reactor.listenTCP(port, site, interface=host)
        except CannotListenError as error:
            raise SystemExit(
                f"opencue-gateway: {variable}: cannot listen on {host}:{port}: "
                f"{error.socketError}"
            ) from None

    def startService(self) -> None:
        """Start the sandbox (if any), the pool and the channel; log what is running."""
        if self.port is None:
            self.privilegedStartService()
        super().startService()
        if self.sandbox is not None:
            self.sandbox.start()
        self.pool.start()
        self.cuebot.start(self.cuebot_endpoint)
        described = self.effective_config()
        if self.limiter is not None:
            self._housekeeping = LoopingCall(self.limiter.forget_idle)
            self._housekeeping.clock = self._reactor
            self._housekeeping.start(HOUSEKEEPING_SECONDS, now=False)
        self._log_start(described)

    def _log_start(self, described: dict[str, Any]) -> None:
        """The start-up lines: configuration, warnings, where it listens."""
        log.info("effective configuration: {config}", config=described)
        for name in short_secrets(self.config):
            log.warn("{name} is shorter than {size} bytes; use a long random secret "
                     "(openssl rand -base64 32)", name=name, size=MIN_SECRET_BYTES)
        if self.tls is not None and self.tls.expires_soon(_utc_now()):
            log.warn("the TLS certificate expires on {date}", date=f"{self.tls.not_after:%Y-%m-%d}")
        log.info(
            "opencue-gateway listening on {scheme}://{host}:{port}, Cuebot at {endpoint} "
            "({count} methods)",
            scheme="https" if self.tls else "http",
            host=self.config.rest_host, port=self.port.getHost().port,
            endpoint=self.cuebot_endpoint, count=len(self.catalog),
        )
        if self.sandbox is not None and self.config.jwt_secret is not None:
            self._log_sandbox_token()

    def _log_sandbox_token(self) -> None:
        """Sandbox only: print a ready-to-use token so the README's curl lines just work."""
        token = sign_token(self.config, "sandbox-user", "admin", SANDBOX_TOKEN_LIFETIME)
        log.info(
            "sandbox mode: Cuebot is in-memory at {endpoint}. A token valid for 24h:\n"
            "export JWT_TOKEN={token}",
            endpoint=self.cuebot_endpoint, token=token,
        )

    @inlineCallbacks
    def stopService(self) -> Any:
        """Drain: fail /readyz, keep serving for DRAIN_DELAY, stop accepting, finish, release."""
        self.health.draining = True
        if self.config.drain_delay > 0:
            log.info("draining: /readyz now fails; still serving for {delay}s",
                     delay=self.config.drain_delay)
            yield deferLater(self._reactor, self.config.drain_delay, lambda: None)
        log.info("stopping: no longer accepting connections")
        deadline = self._reactor.seconds() + self.config.shutdown_grace
        if self.port is not None:
            yield self.port.stopListening()
        if self.metrics_port is not None:
            yield self.metrics_port.stopListening()
        yield self._wait_until(lambda: self.site.active_requests == 0, deadline)
        self.site.close_idle_connections()
        yield self._wait_until(lambda: not self.site.channels, deadline)
        if self.site.active_requests:
            log.warn("{count} requests were still running after SHUTDOWN_GRACE",
                     count=self.site.active_requests)
        yield self._release()
        yield super().stopService()
        log.info("stopped")

    @inlineCallbacks
    def _release(self) -> Any:
        """Close the channel, stop the pool, the sandbox, the timers and the audit file."""
        if self._housekeeping is not None and self._housekeeping.running:
            self._housekeeping.stop()
        yield self.cuebot.stop()
        self.pool.stop()
        if self.sandbox is not None:
            self.sandbox.stop(grace=0)
        if self._audit_file is not None:
            stop_audit_file(self._audit_file)
        if self.tracing is not None:
            self.tracing.shutdown()

    def _wait_until(self, condition: Any, deadline: float) -> Deferred[None]:
        """Poll ``condition`` on the reactor clock until it holds or ``deadline`` passes."""

        @inlineCallbacks
        def poll() -> Any:
            while not condition() and self._reactor.seconds() < deadline:
                yield deferLater(self._reactor, DRAIN_POLL_SECONDS, lambda: None)

        return poll()


class RequestObservers:
    """What happens when a request starts and ends: the in-flight gauge, metrics, access log."""

    def __init__(self, metrics: Metrics, access: AccessLog) -> None:
        self._metrics = metrics
        self._access = access

    def started(self) -> None:
        """One more request in flight."""
        self._metrics.in_flight.inc()

    def finished(self, record: RequestRecord, was_processing: bool) -> None:
        """Count, time and log a finished request."""
        if was_processing:
            self._metrics.in_flight.dec()
        self._metrics.observe_request(record.rpc, record.status, record.duration_ms / 1000,
                                      record.bytes_in, record.bytes_out)
        if record.status in (401, 403):
            self._metrics.auth_failures.labels(record.failure or "other").inc()
        self._access.record(record)


def _api_pages(catalog: MethodCatalog, strict: bool) -> dict[bytes, Page]:
    """The OpenAPI document and the Swagger UI docs (page and assets), built once at start."""
    pages = {
        b"/openapi.json": static_page(
            "openapi", b"application/json", openapi_json(catalog, __version__, strict=strict)),
        b"/docs": static_page("docs", b"text/html; charset=utf-8",
                              docs_page("/openapi.json", "/docs")),
    }
    for name, (content_type, body) in read_assets().items():
        pages[f"/docs/{name}".encode()] = static_page(
            "docs", content_type.encode(), body, cache_control=b"public, max-age=86400")
    return pages


def _tracing(config: GatewayConfig) -> OtelTracing | None:
    """OpenTelemetry spans when a collector is configured; then the otel extra is needed."""
    if not config.otel_exporter_otlp_endpoint:
        return None
    try:
        return OtelTracing(config.otel_exporter_otlp_endpoint, config.otel_service_name,
                           __version__)
    except ImportError:
        raise ConfigError(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "tracing needs the otel extra: pip install 'opencue-gateway[otel]'") from None


def _utc_now() -> datetime.datetime:
    """Now, for certificate dates."""
    return datetime.datetime.now(datetime.UTC)
