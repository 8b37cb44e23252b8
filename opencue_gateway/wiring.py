"""Wiring: the gateway's request-serving objects, built from the configuration alone.

:func:`build` is a pure function of (configuration, reactor, pool): it makes
the catalog, the Cuebot client, authentication, the Klein app, the site, the
probes and the metrics, and starts nothing.  The process (service.py) wraps
what needs starting and stopping in services; tests call :func:`build` with a
fake clock, a threadless pool and an in-process channel to drive the whole
request path in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from prometheus_client.twisted import MetricsResource
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Site

from opencue_gateway import __version__
from opencue_gateway.accesslog import AccessLog, RequestRecord
from opencue_gateway.app import GatewayApp, Page, probe_page, static_page
from opencue_gateway.audit import AuditLog
from opencue_gateway.auth import (
    Authenticator,
    GatewayRealm,
    JWTChecker,
    make_checker,
    make_portal,
)
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import ConfigError, GatewayConfig, reload_secret
from opencue_gateway.cors import CorsPolicy
from opencue_gateway.docs import docs_page, read_assets
from opencue_gateway.fanin import FanIn
from opencue_gateway.grpc_channel import channel_factory
from opencue_gateway.health import Health
from opencue_gateway.jwks import JwksKeys, jwks_keys
from opencue_gateway.keys import load_public_key_file
from opencue_gateway.logs import logger
from opencue_gateway.metrics import CONTENT_TYPE, GatewayState, Metrics
from opencue_gateway.openapi import openapi_json
from opencue_gateway.policy import Policy, PolicyError, load_policy
from opencue_gateway.proxies import TrustedProxies
from opencue_gateway.ratelimit import RateLimiter
from opencue_gateway.site import GatewaySite, HttpLimits
from opencue_gateway.tracing import OtelTracing
from opencue_gateway.transcode import Transcoder
from opencue_gateway.upstream import CuebotClient
from opencue_gateway.watch import WatchHub, WatchLimits

log = logger(__name__)


@dataclass(eq=False)
class Gateway:
    """Everything that serves requests, as :func:`build` wired it."""

    config: GatewayConfig
    catalog: MethodCatalog
    cuebot: CuebotClient
    checker: JWTChecker
    app: GatewayApp
    site: GatewaySite
    health: Health
    metrics: Metrics
    limiter: RateLimiter | None
    tracing: OtelTracing | None
    jwks: JwksKeys | None
    watches: WatchHub

    def effective_config(self) -> dict[str, Any]:
        """The configuration as running, secrets redacted (the start-up log, GET /config).

        Cuebot is named where calls really go: in sandbox mode, the embedded
        sandbox's address once the channel is open, not the CUEBOT_ENDPOINT default.
        """
        described = self.config.describe()
        described["CUEBOT_ENDPOINT"] = (self.cuebot.endpoint
                                        or ",".join(self.config.cuebot_endpoints))
        described["PROTOS"] = self.catalog.describe()
        described["JWT_KEYS"] = self.checker.describe_keys()
        if self.jwks is not None:
            described["JWT_JWKS"] = self.jwks.describe()
        return described

    def metrics_site(self) -> Site:
        """A site serving only /metrics, for METRICS_PORT."""
        return Site(MetricsResource(self.metrics.registry))

    def reload(self) -> None:
        """SIGHUP: re-read JWT_SECRET_FILE, JWT_PUBLIC_KEY_FILE and AUTH_POLICY_FILE.

        All three are read before any is applied: on any error the previous
        ones are all kept.  Watches the new policy no longer allows end.
        """
        try:
            secrets = ([reload_secret(self.config), *self.config.jwt_previous_secrets]
                       if self.config.jwt_secret_file else None)
            public_keys = load_public_key_file(self.config)
            policy = policy_of(self.config, self.catalog)
        except ConfigError as error:
            log.error("SIGHUP: kept the previous settings: {error}", error=str(error))
            return
        if secrets is not None:
            self.checker.set_secrets(secrets)
        self.checker.set_public_keys(public_keys)
        self.app.policy = policy
        self.watches.recheck(policy)
        log.info("SIGHUP: secret file, public key file and policy re-read")


def build(
    config: GatewayConfig,
    reactor: Any,
    pool: ThreadPool,
    catalog: MethodCatalog | None = None,
    open_channel: Callable[[str], grpc.Channel] | None = None,
    tracing: OtelTracing | None = None,
) -> Gateway:
    """Wire a gateway: nothing is started, no socket is opened, no global is touched.

    ``catalog`` defaults to PROTO_DESCRIPTOR_SET's or the installed protos;
    ``open_channel`` to a real gRPC channel with the configured keepalive and TLS.
    """
    catalog = catalog or MethodCatalog.configured(config.proto_descriptor_set)
    transcoder = Transcoder(strict=config.strict_json)
    transcoder.prepare([m.input_type for m in catalog] + [m.output_type for m in catalog])
    metrics = Metrics()
    cuebot = CuebotClient(
        reactor=reactor, pool=pool, channel_factory=open_channel or channel_factory(config),
        catalog=catalog, transcoder=transcoder, default_timeout=config.grpc_timeout,
        max_pending=config.max_concurrent_streams + config.max_queued_requests,
        on_call=metrics.observe_cuebot_call, on_skip=metrics.count_skipped,
        clock=reactor.seconds, max_request_bytes=config.max_request_bytes,
    )
    metrics.watch(GatewayState(
        queue_depth=lambda: max(0, cuebot.pending - config.max_concurrent_streams),
        channel_states=lambda: {e.name: e.state for e in cuebot.cuebots.endpoints},
    ))
    # The identity provider's keys are fetched while the service runs (a service of the tree).
    jwks = jwks_keys(config, reactor)
    checker = make_checker(config, load_public_key_file(config), jwks)
    health = Health(cuebot, checks=[lambda: checker.problem])
    limiter = (RateLimiter(config.rate_limit_rps, config.rate_limit_burst, reactor.seconds)
               if config.rate_limit_rps > 0 else None)
    fanin = FanIn(reactor.seconds, config.read_cache_ttl) if config.fan_in else None
    watches = WatchHub(watch_limits(config), cuebot, reactor, fanin=fanin, observer=metrics,
                       on_shared=metrics.count_shared)
    app = GatewayApp(
        catalog, cuebot, Authenticator(make_portal(checker, GatewayRealm(config.jwt_role_claim))),
        policy_of(config, catalog), AuditLog(), reactor, watches, limiter=limiter,
        tracing=tracing, fanin=fanin, on_shared=metrics.count_shared,
        on_streamed=metrics.count_streamed,
    )
    site = GatewaySite(
        app.resource(),
        HttpLimits(config.max_request_bytes, config.http_timeout, config.http_idle_timeout),
        cors=CorsPolicy(config.cors_origins, config.cors_headers, int(config.cors_max_age))
        if config.cors_origins else None,
        reactor=reactor,
        observer=RequestObservers(metrics, AccessLog()),
        proxies=TrustedProxies(config.trusted_proxies),
    )
    gateway = Gateway(config, catalog, cuebot, checker, app, site, health, metrics, limiter,
                      tracing, jwks, watches)
    _add_pages(gateway)
    return gateway


def watch_limits(config: GatewayConfig) -> WatchLimits:
    """The WATCH_* settings; a token expires for a watch when it would for a call."""
    return WatchLimits(
        interval=config.watch_interval, min_interval=config.watch_min_interval,
        heartbeat=config.watch_heartbeat, max_per_principal=config.watch_max_per_principal,
        max_total=config.watch_max_total, max_duration=config.watch_max_duration,
        token_leeway=config.jwt_leeway)


def policy_of(config: GatewayConfig, catalog: MethodCatalog) -> Policy:
    """The authorization policy from AUTH_POLICY_FILE, or allow-all without one."""
    try:
        return load_policy(config.auth_policy_file, catalog)
    except PolicyError as error:
        raise ConfigError("AUTH_POLICY_FILE", str(error)) from None


def _add_pages(gateway: Gateway) -> None:
    """The gateway's own GET pages: public ones, and /config that needs a token."""
    config, app = gateway.config, gateway.app
    app.private[b"/config"] = Page("config", b"application/json", lambda: (
        200, orjson.dumps(gateway.effective_config(), option=orjson.OPT_SORT_KEYS)))
    if config.health_endpoints:
        app.public[b"/healthz"] = probe_page("healthz", gateway.health.live)
        app.public[b"/readyz"] = probe_page("readyz", gateway.health.ready)
    if config.metrics_port is None:
        metrics = Page("metrics", CONTENT_TYPE, lambda: (200, gateway.metrics.exposition()))
        (app.private if config.metrics_require_auth else app.public)[b"/metrics"] = metrics
    app.public.update(api_pages(gateway.catalog, config.strict_json))


def api_pages(catalog: MethodCatalog, strict: bool) -> dict[bytes, Page]:
    """The OpenAPI document and the Swagger UI docs (page and assets), built once."""
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


class RequestObservers:
    """What happens when a request starts and ends: the in-flight gauge, metrics, access log."""

    def __init__(self, metrics: Metrics, access: AccessLog) -> None:
        self._metrics = metrics
        self._access = access

    def started(self) -> None:
        """One more request in flight."""
        self._metrics.in_flight.inc()

    def finished(self, record: RequestRecord, was_processing: bool) -> None:
        """Count, time and log a finished request (a watch stream is counted, not timed)."""
        if was_processing:
            self._metrics.in_flight.dec()
        if record.events is not None:
            self._metrics.count_stream(record.rpc, record.status)
        else:
            self._metrics.observe_request(record.rpc, record.status, record.duration_ms / 1000,
                                          record.bytes_in, record.bytes_out)
        if record.status in (401, 403):
            self._metrics.auth_failures.labels(record.failure or "other").inc()
        self._access.record(record)
