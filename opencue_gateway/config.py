"""The gateway's configuration: each setting declared once, read from flags and the environment.

A setting is a field of :class:`GatewayConfig` (or of :class:`SandboxConfig`,
the sandbox's own) declared with :func:`setting`: its environment variable,
twistd flag, parser, default, help text and whether it is secret.  Everything
else is derived from those declarations: the twistd options (service.py),
``GET /config`` and the start-up line (:meth:`GatewayConfig.describe`), and
the README's table and the environment file example (:mod:`.settings_doc`).

A flag wins over the variable, which wins over the default.  Values are
validated once, at start-up; a bad one raises :class:`ConfigError` naming the
variable (or flag) and the accepted form, which the service turns into one
line on stderr and a non-zero exit.  This is the only module that reads
``os.environ``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from opencue_gateway.parsers import (
    HMAC_ALGORITHMS,
    PUBLIC_KEY_ALGORITHMS,
    float_parser,
    int_parser,
    parse_algorithms,
    parse_bool,
    parse_claim_paths,
    parse_duration,
    parse_endpoints,
    parse_host,
    parse_list,
    parse_listen,
    parse_log_format,
    parse_log_level,
    parse_port,
    parse_positive_duration,
    parse_rate,
    parse_size,
    parse_text,
    parse_url,
)
from opencue_gateway.proxies import Network, parse_networks

SANDBOX_SECRET = b"default-secret-key"
# The sandbox's signing secret is public, so unless told otherwise it listens on loopback only.
SANDBOX_HOST = "127.0.0.1"
# RFC 7518 section 3.2: an HMAC key should be at least as long as the hash.
MIN_SECRET_BYTES = 32
REDACTED = "<redacted>"
_SETTING = "setting"


class ConfigError(Exception):
    """A setting has a value the gateway cannot run with; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable value: where it comes from, its default, how to read and show it."""

    variable: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    secret: bool = False
    # An empty value is a value (an empty list: "none"), not a request for the default.
    # Where "none" means "deny", falling back to a permissive default would invert it.
    empty_is_value: bool = False
    # A flag without a value (--sandbox); its variable takes true/false.
    switch: bool = False
    # The flag may be given several times; the variable is then comma-separated.
    repeatable: bool = False
    # The twistd flag, when it is not derived from the variable (GRPC_TIMEOUT -> grpc-timeout).
    flag_name: str = ""
    # A value the environment file example shows uncommented, as a starting point.
    example: str | None = None
    # The field this setting fills, set from the dataclass field.
    attribute: str = ""

    @property
    def flag(self) -> str:
        """The twistd flag without dashes: ``GRPC_TIMEOUT`` -> ``grpc-timeout``."""
        return self.flag_name or self.variable.lower().replace("_", "-")


def setting(variable: str, default: str | None, parse: Callable[[str], Any], help: str,
            **options: Any) -> Any:
    """Declare a configuration field: a dataclass field carrying its :class:`Setting`."""
    return field(metadata={_SETTING: Setting(variable, default, parse, help, **options)})


def _settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings declared on a config dataclass, each knowing its field name."""
    return tuple(replace(f.metadata[_SETTING], attribute=f.name)
                 for f in fields(cls) if _SETTING in f.metadata)


_count = int_parser(0, 1_000_000)


def parse_preset(text: str) -> str:
    """The sandbox's starting farm: lively or readme."""
    preset = text.strip().lower()
    if preset not in ("lively", "readme"):
        raise ValueError("expected lively or readme")
    return preset


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The embedded sandbox Cuebot (``--sandbox``): farm size, randomness, simulation."""

    enabled: bool = setting(
        "SANDBOX", "false", parse_bool,
        "run an in-memory sandbox Cuebot inside the gateway and use it (no OpenCue needed; the "
        "JWT secret defaults to default-secret-key, REST_HOST to 127.0.0.1)",
        switch=True, flag_name="sandbox")
    preset: str = setting(
        "SANDBOX_PRESET", "lively", parse_preset,
        "sandbox: the farm to start with: `lively`, the README's entities in a simulated studio "
        "with a few hours of history (always simulating), or `readme`, the README's entities "
        "alone, still", flag_name="preset")
    simulate: bool = setting(
        "SANDBOX_SIMULATE", "false", parse_bool,
        "sandbox: advance time (dispatch, run and finish frames)", switch=True,
        flag_name="simulate")
    log_root: str | None = setting(
        "SANDBOX_LOG_ROOT", None, parse_text,
        "sandbox: put the jobs' log directories under this directory and write each simulated "
        "frame's rqlog there, as RQD would (default: no logs)", flag_name="log-root")
    shows: int | None = setting(
        "SANDBOX_SHOWS", None, _count, "sandbox: generate a farm with this many shows (default 1 "
        "when another size is given; none: the README's seed farm)", flag_name="shows")
    jobs_per_show: int | None = setting(
        "SANDBOX_JOBS_PER_SHOW", None, _count, "sandbox: generated farm's jobs per show "
        "(default 10)", flag_name="jobs-per-show")
    layers_per_job: int | None = setting(
        "SANDBOX_LAYERS_PER_JOB", None, _count, "sandbox: generated farm's layers per job "
        "(default 3)", flag_name="layers-per-job")
    frames_per_layer: int | None = setting(
        "SANDBOX_FRAMES_PER_LAYER", None, _count, "sandbox: generated farm's frames per layer "
        "(default 100)", flag_name="frames-per-layer")
    hosts: int | None = setting(
        "SANDBOX_HOSTS", None, _count, "sandbox: generated farm's render hosts (default 10)",
        flag_name="hosts")
    seed: int = setting(
        "SANDBOX_SEED", "0", int_parser(0, 2**32 - 1),
        "sandbox: makes the generated farm and the simulation reproducible", flag_name="seed")
    tick_seconds: float = setting(
        "SANDBOX_TICK_SECONDS", "1", float_parser(0.001, 3600, "seconds"),
        "sandbox: simulated seconds per tick", flag_name="tick-seconds")
    speed: float = setting(
        "SANDBOX_SPEED", "1", float_parser(0.001, 1_000_000, "a factor"),
        "sandbox: simulated seconds per real second", flag_name="speed")
    failure_rate: float = setting(
        "SANDBOX_FAILURE_RATE", "0.05", float_parser(0, 1, "a share"),
        "sandbox: share of simulated frames that fail", flag_name="failure-rate")

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments of the sandbox factory: the sizes given, and the run options."""
        sizes = {name: getattr(self, name) for name in SANDBOX_SIZES
                 if getattr(self, name) is not None}
        return {"preset": self.preset, "sizes": sizes, "seed": self.seed,
                "simulate": self.simulate, "tick_seconds": self.tick_seconds,
                "speed": self.speed, "failure_rate": self.failure_rate,
                "log_root": self.log_root}


SANDBOX_SIZES = ("shows", "jobs_per_show", "layers_per_job", "frames_per_layer", "hosts")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The validated configuration of one gateway process."""

    cuebot_endpoints: tuple[str, ...] = setting(
        "CUEBOT_ENDPOINT", "localhost:8443", parse_endpoints,
        "Cuebot gRPC address (host:port); several, comma-separated, spread calls over a "
        "facility's Cuebots; `dns:///name:port` spreads over every address of a name",
        example="cuebot:8443")
    listen: tuple[str, ...] = setting(
        "LISTEN", None, parse_listen,
        "where to serve HTTP: Twisted endpoint strings, comma-separated (tcp:8448, "
        "tcp6:8448, unix:/run/opencue-gateway.sock, ssl:..., systemd:domain=INET:index=0); "
        "default: REST_HOST and REST_PORT", repeatable=True)
    listen_backlog: int = setting(
        "LISTEN_BACKLOG", "511", int_parser(1, 65535),
        "connections the kernel may queue for each listener before accepting them "
        "(nginx's default; applies to endpoint strings without their own backlog=)")
    trusted_proxies: tuple[Network, ...] = setting(
        "TRUSTED_PROXIES", None, parse_networks,
        "reverse proxies (addresses or CIDR blocks, comma-separated) whose `Forwarded` or "
        "`X-Forwarded-For` names the client; from other peers those headers are ignored")
    rest_port: int = setting("REST_PORT", "8448", parse_port,
                             "HTTP port (0: any free port, logged)", example="8448")
    rest_host: str = setting(
        "REST_HOST", "0.0.0.0", parse_host,
        "interface to listen on (127.0.0.1 with --sandbox unless set)", example="0.0.0.0")
    jwt_secret: bytes | None = setting(
        "JWT_SECRET", None, parse_text,
        "HMAC secret that signs client tokens (required for HS256/HS384/HS512 unless "
        "--sandbox); prefer JWT_SECRET_FILE", secret=True)
    jwt_secret_file: str | None = setting(
        "JWT_SECRET_FILE", None, parse_text,
        "file holding the secret (Docker/Kubernetes secrets); whitespace stripped; re-read on "
        "SIGHUP", example="/etc/opencue-gateway/jwt-secret")
    jwt_previous_secrets: tuple[bytes, ...] = setting(
        "JWT_PREVIOUS_SECRETS", None, parse_list,
        "comma-separated former secrets, still accepted while tokens rotate", secret=True)
    jwt_algorithms: tuple[str, ...] = setting(
        "JWT_ALGORITHMS", ",".join(HMAC_ALGORITHMS), parse_algorithms,
        "accepted token algorithms: HS256/384/512 with `JWT_SECRET`; RS256/384/512, "
        "PS256/384/512, ES256/384/512, EdDSA with public keys")
    jwt_public_key_file: str | None = setting(
        "JWT_PUBLIC_KEY_FILE", None, parse_text,
        "PEM file of one or more public keys or certificates that sign tokens; re-read on "
        "SIGHUP")
    jwt_jwks_url: str | None = setting(
        "JWT_JWKS_URL", None, parse_url,
        "the identity provider's JWKS URL, fetched in the background")
    jwt_jwks_refresh: float = setting(
        "JWT_JWKS_REFRESH", "5m", parse_positive_duration,
        "how often the JWKS is fetched again (sooner when its Cache-Control max-age is "
        "shorter); also the least time between two fetches for an unknown `kid`")
    jwt_issuer: str | None = setting("JWT_ISSUER", None, parse_text,
                                     "when set, tokens must carry this `iss`")
    jwt_audience: tuple[str, ...] | None = setting(
        "JWT_AUDIENCE", None, parse_list,
        "when set, tokens must carry one of these `aud` values (comma-separated); when unset "
        "`aud` is ignored")
    jwt_idp_issuer: str | None = setting(
        "JWT_IDP_ISSUER", None, parse_text,
        "the `iss` tokens verified with a public key must carry, instead of `JWT_ISSUER` (so "
        "CueWeb's tokens, which carry none, still verify)")
    jwt_idp_audience: tuple[str, ...] | None = setting(
        "JWT_IDP_AUDIENCE", None, parse_list,
        "the `aud` values (one of them) tokens verified with a public key must carry, "
        "instead of `JWT_AUDIENCE`")
    jwt_leeway: float = setting("JWT_LEEWAY", "30s", parse_duration,
                                "clock skew tolerated for `exp`, `nbf`, `iat`")
    jwt_role_claim: str = setting(
        "JWT_ROLE_CLAIM", "role", parse_claim_paths,
        "the claim holding the caller's role or list of roles; a dotted path reaches into "
        "nested claims (`realm_access.roles`); with several, comma-separated, the first the "
        "token carries")
    auth_policy_file: str | None = setting(
        "AUTH_POLICY_FILE", None, parse_text,
        "TOML or JSON file mapping roles to methods (see Security); re-read on SIGHUP")
    audit_log_file: str | None = setting(
        "AUDIT_LOG_FILE", None, parse_text,
        "also write the audit log of mutating calls to this file, as JSON lines")
    log_level: str = setting("LOG_LEVEL", "info", parse_log_level,
                             "`debug`, `info`, `warn` or `error` (the audit log is never silenced)")
    log_format: str = setting(
        "LOG_FORMAT", "text", parse_log_format,
        "`text` (twistd's lines) or `json` (one JSON object per line on stdout)")
    metrics_require_auth: bool = setting("METRICS_REQUIRE_AUTH", "false", parse_bool,
                                         "require a token for `GET /metrics`")
    metrics_port: int | None = setting(
        "METRICS_PORT", None, parse_port,
        "serve `/metrics` on this port (on `REST_HOST`) instead of the main listener")
    otel_exporter_otlp_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT", None, parse_text,
        "OTLP/HTTP collector for OpenTelemetry spans (needs the `otel` extra)")
    otel_service_name: str = setting("OTEL_SERVICE_NAME", "opencue-gateway", parse_text,
                                     "`service.name` of the spans")
    grpc_timeout: float = setting("GRPC_TIMEOUT", "30s", parse_positive_duration,
                                  "deadline of each Cuebot call")
    max_concurrent_streams: int = setting(
        "MAX_CONCURRENT_STREAMS", "100", int_parser(1, 10000),
        "Cuebot calls in flight at once (worker threads)")
    max_queued_requests: int = setting(
        "MAX_QUEUED_REQUESTS", "500", int_parser(0, 1000000),
        "requests allowed to wait for a worker; beyond, 503")
    keepalive_time: float = setting("KEEPALIVE_TIME", "30s", parse_positive_duration,
                                    "keepalive ping interval while calls are in flight")
    keepalive_timeout: float = setting(
        "KEEPALIVE_TIMEOUT", "5s", parse_positive_duration,
        "unanswered ping time before the connection is dropped")
    grpc_max_recv_msg_mb: int = setting("GRPC_MAX_RECV_MSG_MB", "256", int_parser(1, 2047),
                                        "largest Cuebot reply, MiB")
    max_request_bytes: int = setting("MAX_REQUEST_BYTES", "4MiB", parse_size,
                                     "largest request body; beyond, 413")
    strict_json: bool = setting("STRICT_JSON", "false", parse_bool,
                                "reject unknown request fields and enum names with 400")
    proto_descriptor_set: str | None = setting(
        "PROTO_DESCRIPTOR_SET", None, parse_text,
        "serve the services of this FileDescriptorSet (a studio's protos, built with `python -m "
        "proto_gen`) instead of the installed opencue-proto's")
    shutdown_grace: float = setting("SHUTDOWN_GRACE", "20s", parse_duration,
                                    "on SIGTERM, how long in-flight calls may take to finish")
    drain_delay: float = setting(
        "DRAIN_DELAY", "5s", parse_duration,
        "on SIGTERM, how long `/readyz` fails while requests are still served, before the "
        "listener closes")
    http_timeout: float = setting(
        "HTTP_TIMEOUT", "60s", parse_positive_duration,
        "the longest a request may take, first byte in to last byte out (408 while arriving, "
        "504 while processing)")
    http_idle_timeout: float = setting("HTTP_IDLE_TIMEOUT", "60s", parse_positive_duration,
                                       "idle keep-alive connections are closed after this")
    tls_cert_file: str | None = setting(
        "TLS_CERT_FILE", None, parse_text,
        "PEM certificate (chain): with `TLS_KEY_FILE`, the listeners speak HTTPS")
    tls_key_file: str | None = setting("TLS_KEY_FILE", None, parse_text,
                                       "PEM private key (unencrypted)")
    cuebot_tls: bool = setting("CUEBOT_TLS", "false", parse_bool,
                               "talk TLS to Cuebot, trusting the system's CAs")
    cuebot_tls_ca_file: str | None = setting(
        "CUEBOT_TLS_CA_FILE", None, parse_text,
        "CA that signs Cuebot's certificate (implies `CUEBOT_TLS`)")
    cuebot_tls_cert_file: str | None = setting(
        "CUEBOT_TLS_CERT_FILE", None, parse_text, "client certificate for mutual TLS with Cuebot")
    cuebot_tls_key_file: str | None = setting("CUEBOT_TLS_KEY_FILE", None, parse_text,
                                              "client key for mutual TLS with Cuebot")
    cuebot_tls_server_name: str | None = setting(
        "CUEBOT_TLS_SERVER_NAME", None, parse_text,
        "name to verify in Cuebot's certificate, when it differs from the endpoint's host")
    cors_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS", "*", parse_list,
        "origins allowed to call from browsers, comma-separated; empty disables CORS",
        empty_is_value=True)
    cors_headers: tuple[str, ...] = setting(
        "CORS_HEADERS", "*", parse_list,
        "request headers browsers may send (`*` echoes what is asked; `Authorization` and "
        "`Content-Type` always, so empty allows only those)", empty_is_value=True)
    cors_max_age: float = setting("CORS_MAX_AGE", "10m", parse_duration,
                                  "how long browsers may cache a preflight")
    rate_limit_rps: float = setting(
        "RATE_LIMIT_RPS", "100", parse_rate,
        "requests per second per principal (per address for failed logins); `0` disables")
    rate_limit_burst: int = setting(
        "RATE_LIMIT_BURST", None, int_parser(1, 1_000_000),
        "requests allowed in a burst (default: twice `RATE_LIMIT_RPS`)")
    health_endpoints: bool = setting("HEALTH_ENDPOINTS", "true", parse_bool,
                                     "serve `GET /healthz` and `GET /readyz` without a token")
    workers: int = setting("WORKERS", "1", int_parser(1, 64),
                           "gateway processes serving the port; set it to the number of cores")
    fan_in: bool = setting(
        "FAN_IN", "true", parse_bool,
        "identical concurrent reads share one Cuebot call (never older than the request)")
    read_cache_ttl: float = setting(
        "READ_CACHE_TTL", "0", parse_duration,
        "reuse read answers for this long (`0`: off; answers may then be this old)")
    watch_interval: float = setting(
        "WATCH_INTERVAL", "5s", parse_positive_duration,
        "how often a watch asks Cuebot again, unless its `?interval=` says otherwise")
    watch_min_interval: float = setting(
        "WATCH_MIN_INTERVAL", "1s", parse_positive_duration,
        "the shortest interval a watch may ask for (a shorter one is raised to it)")
    watch_heartbeat: float = setting(
        "WATCH_HEARTBEAT", "15s", parse_positive_duration,
        "a comment line goes down every watch stream this often, so proxies keep it open")
    watch_max_per_principal: int = setting(
        "WATCH_MAX_PER_PRINCIPAL", "100", int_parser(1, 1_000_000),
        "watches one caller (token `sub`) may hold open at once; beyond, 429")
    watch_max_total: int = setting(
        "WATCH_MAX_TOTAL", "10000", int_parser(1, 1_000_000),
        "watches the gateway holds open at once; beyond, 503")
    watch_max_duration: float = setting(
        "WATCH_MAX_DURATION", "1h", parse_duration,
        "a watch stream ends after this (reason `time_limit`) and its client reconnects, which "
        "spreads streams over restarted or added gateways; `0`: never")
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)

    @property
    def jwt_secrets(self) -> tuple[bytes, ...]:
        """The HMAC secrets, current first; none when only public keys verify tokens."""
        if self.jwt_secret is None:
            return ()
        return (self.jwt_secret, *self.jwt_previous_secrets)

    @property
    def rest_family(self) -> socket.AddressFamily:
        """The listening socket's address family: IPv6 for an IPv6 REST_HOST."""
        return socket.AF_INET6 if ":" in self.rest_host else socket.AF_INET

    @property
    def uses_cuebot_tls(self) -> bool:
        """TLS towards Cuebot: asked for, or implied by a CA or client certificate."""
        return self.cuebot_tls or any(
            (self.cuebot_tls_ca_file, self.cuebot_tls_cert_file, self.cuebot_tls_key_file)
        )

    def describe(self) -> dict[str, Any]:
        """The effective configuration for the start-up log and GET /config, secrets redacted."""
        described: dict[str, Any] = {}
        for owner, settings in ((self, GATEWAY_SETTINGS), (self.sandbox, SANDBOX_SETTINGS)):
            for item in settings:
                value = getattr(owner, item.attribute)
                hidden = item.secret and value not in (None, ())
                described[item.variable] = REDACTED if hidden else value
        return described


GATEWAY_SETTINGS = _settings_of(GatewayConfig)
SANDBOX_SETTINGS = _settings_of(SandboxConfig)
SETTINGS = GATEWAY_SETTINGS + SANDBOX_SETTINGS
# Flags are looked up by attribute, so no two settings may share one.
assert len({s.attribute for s in SETTINGS}) == len(SETTINGS)


def _read_values(settings: tuple[Setting, ...], environ: Mapping[str, str],
                 flags: Mapping[str, str | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse each setting from its flag, else its variable, else its default.

    Returns the values by attribute, and for the settings that were given
    (not defaulted) the flag or variable that gave them.
    """
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    for item in settings:
        source, raw = f"--{item.flag}", flags.get(item.attribute)
        if raw is None:
            source, raw = item.variable, environ.get(item.variable)
        # An empty value means "the default" where there is one (REST_PORT= in an env file).
        if raw is None or (raw == "" and item.default is not None and not item.empty_is_value):
            raw = item.default
        else:
            given[item.attribute] = source
        if raw is None:
            values[item.attribute] = None
            continue
        try:
            values[item.attribute] = item.parse(raw)
        except ValueError as error:
            shown = REDACTED if item.secret else repr(raw)
            raise ConfigError(source, f"{error}, got {shown}") from None
    return values, given


def sandbox_config(flags: Mapping[str, str | None],
                   environ: Mapping[str, str] | None = None) -> SandboxConfig:
    """The sandbox's settings (flags over ``environ``, by default this process's).

    A sandbox flag without --sandbox is a mistake worth naming.

    (Variables are not: an environment file may hold sandbox settings for when it is on.)
    """
    values, given = _read_values(SANDBOX_SETTINGS, os.environ if environ is None else environ,
                                 flags)
    stray = [source for attribute, source in given.items()
             if attribute != "enabled" and source.startswith("--")]
    if stray and not values["enabled"]:
        raise ConfigError(stray[0], "only applies with --sandbox")
    return SandboxConfig(**values)


def load_config(environ: Mapping[str, str], flags: Mapping[str, str | None]) -> GatewayConfig:
    """Build the configuration from flags (by attribute name) over environment variables.

    In sandbox mode the JWT secret may be omitted: the README's development
    default ``default-secret-key`` applies, which is only acceptable because
    the sandbox holds no real farm; for the same reason it listens on
    loopback unless REST_HOST (or LISTEN) says otherwise.
    """
    sandbox = sandbox_config(flags, environ)
    values, given = _read_values(GATEWAY_SETTINGS, environ, flags)
    _check_key_sources(values, sandbox.enabled)
    values["listen"] = values["listen"] or ()
    values["trusted_proxies"] = values["trusted_proxies"] or ()
    if sandbox.enabled and "rest_host" not in given:
        values["rest_host"] = SANDBOX_HOST
    if (values["tls_cert_file"] is None) != (values["tls_key_file"] is None):
        raise ConfigError("TLS_CERT_FILE", "set TLS_CERT_FILE and TLS_KEY_FILE together")
    if values["workers"] > 1 and values["metrics_port"] is not None:
        raise ConfigError("METRICS_PORT", "cannot be combined with WORKERS > 1 (each worker "
                          "would need the port); scrape /metrics on the main port")
    if values["workers"] > 1 and values["listen"]:
        raise ConfigError("LISTEN", "cannot be combined with WORKERS > 1: the supervisor binds "
                          "REST_HOST:REST_PORT for its workers")
    if values["rate_limit_burst"] is None:
        values["rate_limit_burst"] = max(1, round(2 * values["rate_limit_rps"]))
    return GatewayConfig(sandbox=sandbox, **values)


def _check_key_sources(values: dict[str, Any], sandbox: bool) -> None:
    """Load the secrets and check every accepted algorithm has keys and every key an algorithm.

    HMAC algorithms need JWT_SECRET (or its file); public-key algorithms need
    JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL.  A secret nothing may use, or public
    keys with no public-key algorithm accepted, are configuration mistakes
    that would otherwise show up as every token failing.
    """
    algorithms = values["jwt_algorithms"]
    hmac = [a for a in algorithms if a in HMAC_ALGORITHMS]
    public = [a for a in algorithms if a in PUBLIC_KEY_ALGORITHMS]
    sources = [name for name, attribute in (("JWT_PUBLIC_KEY_FILE", "jwt_public_key_file"),
                                            ("JWT_JWKS_URL", "jwt_jwks_url"))
               if values[attribute] is not None]
    hint = (f" (or leave {', '.join(hmac)} out of JWT_ALGORITHMS to accept only tokens "
            f"signed with the keys of {' and '.join(sources)})") if sources else ""
    values["jwt_secret"] = _load_secret(values["jwt_secret"], values["jwt_secret_file"],
                                        sandbox, required=bool(hmac), hint=hint)
    previous = values["jwt_previous_secrets"] or ()
    values["jwt_previous_secrets"] = tuple(s.encode("utf-8") for s in previous)
    if values["jwt_secret"] is None and previous:
        raise ConfigError("JWT_PREVIOUS_SECRETS", "needs JWT_SECRET or JWT_SECRET_FILE, the "
                          "current secret")
    if values["jwt_secret"] is not None and not hmac:
        raise ConfigError("JWT_ALGORITHMS", "a JWT secret is set but no HMAC algorithm "
                          f"({', '.join(HMAC_ALGORITHMS)}) is accepted")
    if public and not sources:
        raise ConfigError("JWT_ALGORITHMS", f"{', '.join(public)} needs public keys: set "
                          "JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL")
    if sources and not public:
        raise ConfigError("JWT_ALGORITHMS", f"accepts no public-key algorithm, so the keys of "
                          f"{' and '.join(sources)} would verify nothing; add the identity "
                          "provider's (RS256 for most)")
    for name in ("jwt_idp_issuer", "jwt_idp_audience"):
        if values[name] is not None and not sources:
            raise ConfigError(name.upper(), "applies to tokens verified with a public key: "
                              "set JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL")


def reload_secret(config: GatewayConfig) -> bytes:
    """Read JWT_SECRET_FILE again (SIGHUP), with the same checks as at start-up."""
    secret = _load_secret(None, config.jwt_secret_file, config.sandbox.enabled, required=True)
    assert secret is not None
    return secret


def short_secrets(config: GatewayConfig) -> list[str]:
    """Which configured secrets are shorter than MIN_SECRET_BYTES, for a start-up warning."""
    named = [("JWT_SECRET", config.jwt_secret)] if config.jwt_secret is not None else []
    named += [
        (f"JWT_PREVIOUS_SECRETS[{i}]", s) for i, s in enumerate(config.jwt_previous_secrets)
    ]
    return [name for name, secret in named if len(secret) < MIN_SECRET_BYTES]


def _load_secret(secret: str | None, secret_file: str | None, sandbox: bool, required: bool,
                 hint: str = "") -> bytes | None:
    """The JWT secret from JWT_SECRET or JWT_SECRET_FILE; at most one of them.

    None when neither is set and no HMAC algorithm needs one; in sandbox mode
    an HMAC algorithm gets the development secret instead.
    """
    if secret is not None and secret_file is not None:
        raise ConfigError("JWT_SECRET", "set JWT_SECRET or JWT_SECRET_FILE, not both")
    if secret_file is not None:
        try:
            secret = Path(secret_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ConfigError("JWT_SECRET_FILE", f"cannot read {secret_file!r}: {reason}") from None
        if not secret:
            raise ConfigError("JWT_SECRET_FILE", f"{secret_file!r} is empty")
    if secret is None:
        if not required:
            return None
        if sandbox:
            return SANDBOX_SECRET
        raise ConfigError(
            "JWT_SECRET",
            "required: set JWT_SECRET or JWT_SECRET_FILE to the secret that signs client "
            "tokens" + hint,
        )
    if not secret:
        raise ConfigError("JWT_SECRET", "must not be empty")
    return secret.encode("utf-8")


def config_from_process(flags: Mapping[str, str | None]) -> GatewayConfig:
    """The configuration of this process: its flags over its environment."""
    return load_config(os.environ, flags)


def setting_from_process(variable: str, flag: str | None = None) -> Any:
    """One setting of this process, parsed: ``flag`` if given, else its variable or default.

    For the tools (``opencue-gateway openapi``) that need one setting and not
    the whole configuration, whose checks (a JWT secret) do not concern them.
    """
    [item] = [s for s in SETTINGS if s.variable == variable]
    values, _ = _read_values((item,), os.environ, {item.attribute: flag})
    return values[item.attribute]


def process_environment(flags: Mapping[str, str | None], overrides: Mapping[str, str],
                        drop: Collection[str] = ()) -> dict[str, str]:
    """This process's environment with its flags turned into the variables they stand for.

    A worker process (WORKERS > 1) reads its configuration from the
    environment alone, so every flag given to the supervisor is passed on
    this way; ``overrides`` are what the supervisor sets for its workers and
    ``drop`` the variables they must not see.
    """
    environment = dict(os.environ)
    for item in SETTINGS:
        value = flags.get(item.attribute)
        if value is not None:
            environment[item.variable] = value
    environment.update(overrides)
    for variable in drop:
        environment.pop(variable, None)
    return environment
