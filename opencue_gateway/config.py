"""The gateway's configuration: one table of settings, read from flags and the environment.

Every setting has an environment variable (the README's names) and a twistd
flag; a flag wins over the variable, which wins over the default.  Values are
validated once, at start-up, into a frozen :class:`GatewayConfig`; a bad value
raises :class:`ConfigError` naming the variable and the accepted form, which
the service turns into one line on stderr and a non-zero exit.  This is the
only module that reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SANDBOX_SECRET = b"default-secret-key"
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
# Verified with a public key (JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL): RSA, RSA-PSS, ECDSA, EdDSA.
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512", "EdDSA")
# RFC 7518 section 3.2: an HMAC key should be at least as long as the hash.
MIN_SECRET_BYTES = 32
REDACTED = "<redacted>"


class ConfigError(Exception):
    """A setting has a value the gateway cannot run with; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


# --------------------------------------------------------------------------
# Value parsers: each takes the raw text and returns the typed value or raises
# ValueError with the accepted form.
# --------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|K|M|G)?\Z", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2,
               "g": 1024**3, "gib": 1024**3}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = ("debug", "info", "warn", "error")


def parse_duration(text: str) -> float:
    """Seconds from Go-style durations: ``500ms``, ``30s``, ``5m``, ``1h``, ``1m30s``."""
    compact = text.strip()
    if compact == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(compact):
        raise ValueError("expected a duration like 500ms, 30s, 5m or 1h")
    return total


def parse_positive_duration(text: str) -> float:
    """A duration that must be longer than zero (timeouts, intervals)."""
    value = parse_duration(text)
    if value <= 0:
        raise ValueError("expected a duration longer than zero, like 500ms, 30s, 5m or 1h")
    return value


def parse_bool(text: str) -> bool:
    """``true``/``false`` and the usual synonyms."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def _int_parser(low: int, high: int) -> Callable[[str], int]:
    """A parser for whole numbers in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def parse_port(text: str) -> int:
    """A TCP port; 0 asks the OS for a free one (tests, side-by-side runs), logged at start."""
    return _int_parser(0, 65535)(text)


def parse_size(text: str) -> int:
    """Byte sizes: ``4194304``, ``512KiB``, ``4MiB``."""
    match = _SIZE.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError("expected a size in bytes like 4194304, 512KiB or 4MiB")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]


def parse_endpoint(text: str) -> str:
    """A gRPC target: ``host:port``, ``[v6]:port``, or a URI such as ``dns:///host:port``."""
    target = text.strip()
    if re.match(r"[a-z][a-z0-9+.-]*:", target) and not re.match(r"[^:/]+:\d+\Z", target):
        return target
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected host:port, like cuebot:8443")
    return target


def parse_log_level(text: str) -> str:
    """One of the README's levels; ``warning`` is accepted as ``warn``."""
    lowered = text.strip().lower()
    lowered = "warn" if lowered == "warning" else lowered
    if lowered not in _LOG_LEVELS:
        raise ValueError("expected one of " + ", ".join(_LOG_LEVELS))
    return lowered


def parse_log_format(text: str) -> str:
    """text or json."""
    lowered = text.strip().lower()
    if lowered not in ("text", "json"):
        raise ValueError("expected text or json")
    return lowered


def parse_host(text: str) -> str:
    """An interface address to listen on."""
    host = text.strip()
    if not host or any(c.isspace() for c in host):
        raise ValueError("expected an interface address like 0.0.0.0 or 127.0.0.1")
    return host


def parse_text(text: str) -> str:
    """Free text, kept as given."""
    return text


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_rate(text: str) -> float:
    """Requests per second, 0 meaning no limit."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected requests per second, like 100 or 0.5 (0 disables)") from None
    if value < 0 or value != value or value == float("inf"):
        raise ValueError("expected requests per second, like 100 or 0.5 (0 disables)")
    return value


def parse_algorithms(text: str) -> tuple[str, ...]:
    """JWT algorithms to accept, spelt as RFC 7518 does (case does not matter)."""
    known = {a.upper(): a for a in HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS}
    given = [a.upper() for a in parse_list(text)]
    if not given or any(a not in known for a in given):
        raise ValueError("expected a comma-separated list of "
                         + ", ".join(HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS))
    return tuple(dict.fromkeys(known[a] for a in given))


def parse_url(text: str) -> str:
    """An http(s) URL with a host and no credentials (it is shown in GET /config and the log)."""
    url = text.strip()
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment
            or parts.username is not None or not url.isprintable() or " " in url):
        raise ValueError("expected an http:// or https:// URL without user or password, like "
                         "https://idp.example.com/realms/studio/protocol/openid-connect/certs")
    return url


def parse_claim_paths(text: str) -> str:
    """Claim names or dotted paths into nested claims (``role,realm_access.roles``)."""
    paths = parse_list(text)
    if not paths or any(not p.isprintable() or "" in p.split(".") for p in paths):
        raise ValueError("expected claim names or dotted paths like role,realm_access.roles")
    return ",".join(paths)


# --------------------------------------------------------------------------
# The settings table
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable value: where it comes from, its default and how to read it."""

    attribute: str
    variable: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    secret: bool = False
    # An empty value is a value (an empty list: "none"), not a request for the default.
    # Where "none" means "deny", falling back to a permissive default would invert it.
    empty_is_value: bool = False

    @property
    def flag(self) -> str:
        """The twistd flag: ``GRPC_TIMEOUT`` -> ``--grpc-timeout``."""
        return self.variable.lower().replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("cuebot_endpoint", "CUEBOT_ENDPOINT", "localhost:8443", parse_endpoint,
            "Cuebot gRPC address (host:port)"),
    Setting("rest_port", "REST_PORT", "8448", parse_port, "HTTP port to listen on"),
    Setting("rest_host", "REST_HOST", "0.0.0.0", parse_host,
            "interface to listen on (0.0.0.0: all IPv4 interfaces)"),
    Setting("jwt_secret", "JWT_SECRET", None, parse_text,
            "HMAC secret that signs client tokens (required for HS256/HS384/HS512 "
            "unless --sandbox)", secret=True),
    Setting("jwt_secret_file", "JWT_SECRET_FILE", None, parse_text,
            "file holding the JWT secret (Docker/Kubernetes secrets); surrounding "
            "whitespace is stripped"),
    Setting("jwt_previous_secrets", "JWT_PREVIOUS_SECRETS", None, parse_list,
            "comma-separated former secrets still accepted while tokens rotate", secret=True),
    Setting("jwt_algorithms", "JWT_ALGORITHMS", ",".join(HMAC_ALGORITHMS),
            parse_algorithms, "accepted token algorithms: HS256/384/512 with JWT_SECRET; "
            "RS*, PS*, ES256/384/512, EdDSA with public keys"),
    Setting("jwt_public_key_file", "JWT_PUBLIC_KEY_FILE", None, parse_text,
            "PEM file of one or more public keys or certificates that sign tokens; "
            "re-read on SIGHUP"),
    Setting("jwt_jwks_url", "JWT_JWKS_URL", None, parse_url,
            "the identity provider's JWKS URL, fetched in the background"),
    Setting("jwt_jwks_refresh", "JWT_JWKS_REFRESH", "5m", parse_positive_duration,
            "how often the JWKS is fetched again (sooner when its Cache-Control max-age is "
            "shorter); also the least time between two fetches for an unknown kid"),
    Setting("jwt_issuer", "JWT_ISSUER", None, parse_text,
            "when set, tokens must carry this iss claim"),
    Setting("jwt_audience", "JWT_AUDIENCE", None, parse_list,
            "when set, tokens must carry one of these aud values (comma-separated)"),
    Setting("jwt_idp_issuer", "JWT_IDP_ISSUER", None, parse_text,
            "the iss tokens verified with a public key must carry, instead of JWT_ISSUER "
            "(so CueWeb's tokens, which carry none, still verify)"),
    Setting("jwt_idp_audience", "JWT_IDP_AUDIENCE", None, parse_list,
            "the aud values (one of them) tokens verified with a public key must carry, "
            "instead of JWT_AUDIENCE"),
    Setting("jwt_leeway", "JWT_LEEWAY", "30s", parse_duration,
            "clock skew tolerated for the exp, nbf and iat claims"),
    Setting("jwt_role_claim", "JWT_ROLE_CLAIM", "role", parse_claim_paths,
            "the claim holding the caller's role or list of roles; a dotted path reaches "
            "into nested claims (realm_access.roles); with several, comma-separated, the "
            "first the token carries"),
    Setting("auth_policy_file", "AUTH_POLICY_FILE", None, parse_text,
            "TOML or JSON file mapping roles to the methods they may call (default: all)"),
    Setting("audit_log_file", "AUDIT_LOG_FILE", None, parse_text,
            "file receiving the audit log of mutating calls as JSON lines "
            "(default: the main log)"),
    Setting("log_level", "LOG_LEVEL", "info", parse_log_level,
            "debug, info, warn or error"),
    Setting("log_format", "LOG_FORMAT", "text", parse_log_format,
            "text (twistd's lines) or json (one JSON object per line on stdout)"),
    Setting("metrics_require_auth", "METRICS_REQUIRE_AUTH", "false", parse_bool,
            "require a token for GET /metrics"),
    Setting("metrics_port", "METRICS_PORT", None, parse_port,
            "serve /metrics on this port instead of the main listener"),
    Setting("otel_exporter_otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", None, parse_text,
            "OTLP/HTTP collector for OpenTelemetry spans (needs the otel extra)"),
    Setting("otel_service_name", "OTEL_SERVICE_NAME", "opencue-gateway", parse_text,
            "service.name of the spans"),
    Setting("grpc_timeout", "GRPC_TIMEOUT", "30s", parse_positive_duration,
            "deadline of each Cuebot call; a shorter Grpc-Timeout request header wins"),
    Setting("max_concurrent_streams", "MAX_CONCURRENT_STREAMS", "100",
            _int_parser(1, 10000), "Cuebot calls in flight at once (worker threads)"),
    Setting("max_queued_requests", "MAX_QUEUED_REQUESTS", "500", _int_parser(0, 1000000),
            "requests allowed to wait for a worker; beyond it requests get 503 at once"),
    Setting("keepalive_time", "KEEPALIVE_TIME", "30s", parse_positive_duration,
            "gRPC keepalive ping interval while calls are in flight"),
    Setting("keepalive_timeout", "KEEPALIVE_TIMEOUT", "5s", parse_positive_duration,
            "how long a keepalive ping may go unanswered before the connection is dropped"),
    Setting("grpc_max_recv_msg_mb", "GRPC_MAX_RECV_MSG_MB", "256", _int_parser(1, 2047),
            "largest Cuebot reply accepted, in MiB"),
    Setting("max_request_bytes", "MAX_REQUEST_BYTES", "4MiB", parse_size,
            "largest request body accepted; larger bodies get 413"),
    Setting("strict_json", "STRICT_JSON", "false", parse_bool,
            "reject unknown request fields and enum names with 400 instead of ignoring them"),
    Setting("shutdown_grace", "SHUTDOWN_GRACE", "20s", parse_duration,
            "on SIGTERM, how long in-flight calls may take to finish"),
    Setting("drain_delay", "DRAIN_DELAY", "5s", parse_duration,
            "on SIGTERM, how long /readyz fails while requests are still served, before the "
            "listener closes (lets load balancers stop sending)"),
    Setting("http_timeout", "HTTP_TIMEOUT", "60s", parse_positive_duration,
            "the longest a request may take, from its first byte to the last byte of the answer"),
    Setting("http_idle_timeout", "HTTP_IDLE_TIMEOUT", "60s", parse_positive_duration,
            "idle keep-alive connections are closed after this long"),
    Setting("tls_cert_file", "TLS_CERT_FILE", None, parse_text,
            "PEM certificate (chain) for HTTPS; with TLS_KEY_FILE the listener speaks HTTPS"),
    Setting("tls_key_file", "TLS_KEY_FILE", None, parse_text, "PEM private key for HTTPS"),
    Setting("cuebot_tls", "CUEBOT_TLS", "false", parse_bool,
            "talk TLS to Cuebot (implied by CUEBOT_TLS_CA_FILE)"),
    Setting("cuebot_tls_ca_file", "CUEBOT_TLS_CA_FILE", None, parse_text,
            "CA certificate(s) that sign Cuebot's certificate (default: the system's)"),
    Setting("cuebot_tls_cert_file", "CUEBOT_TLS_CERT_FILE", None, parse_text,
            "client certificate for Cuebot (mutual TLS)"),
    Setting("cuebot_tls_key_file", "CUEBOT_TLS_KEY_FILE", None, parse_text,
            "client key for Cuebot (mutual TLS)"),
    Setting("cuebot_tls_server_name", "CUEBOT_TLS_SERVER_NAME", None, parse_text,
            "name to verify in Cuebot's certificate when it differs from the endpoint's host"),
    Setting("cors_origins", "CORS_ORIGINS", "*", parse_list,
            "origins allowed to call from browsers, comma-separated (* for any, empty: "
            "CORS off)", empty_is_value=True),
    Setting("cors_headers", "CORS_HEADERS", "*", parse_list,
            "request headers browsers may send, comma-separated (* echoes what is asked; "
            "Authorization and Content-Type always)", empty_is_value=True),
    Setting("cors_max_age", "CORS_MAX_AGE", "10m", parse_duration,
            "how long browsers may cache a preflight answer"),
    Setting("rate_limit_rps", "RATE_LIMIT_RPS", "100", parse_rate,
            "requests per second per principal (per client address for failed logins); 0: off"),
    Setting("rate_limit_burst", "RATE_LIMIT_BURST", None, _int_parser(1, 1_000_000),
            "requests allowed in a burst (default: twice RATE_LIMIT_RPS)"),
    Setting("health_endpoints", "HEALTH_ENDPOINTS", "true", parse_bool,
            "serve GET /healthz and /readyz without authentication"),
    Setting("workers", "WORKERS", "1", _int_parser(1, 64),
            "gateway processes serving the port (one per core)"),
    Setting("fan_in", "FAN_IN", "true", parse_bool,
            "identical concurrent reads share one Cuebot call (never older than the request)"),
    Setting("read_cache_ttl", "READ_CACHE_TTL", "0", parse_duration,
            "reuse read answers for this long (0: off; answers may then be this old)"),
)

_BY_ATTRIBUTE = {s.attribute: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The validated configuration of one gateway process."""

    cuebot_endpoint: str
    rest_port: int
    rest_host: str
    jwt_secret: bytes | None
    jwt_previous_secrets: tuple[bytes, ...]
    jwt_algorithms: tuple[str, ...]
    jwt_public_key_file: str | None
    jwt_jwks_url: str | None
    jwt_jwks_refresh: float
    jwt_issuer: str | None
    jwt_audience: tuple[str, ...] | None
    jwt_idp_issuer: str | None
    jwt_idp_audience: tuple[str, ...] | None
    jwt_leeway: float
    jwt_role_claim: str
    log_format: str
    metrics_require_auth: bool
    metrics_port: int | None
    otel_exporter_otlp_endpoint: str | None
    otel_service_name: str
    auth_policy_file: str | None
    audit_log_file: str | None
    log_level: str
    grpc_timeout: float
    max_concurrent_streams: int
    max_queued_requests: int
    keepalive_time: float
    keepalive_timeout: float
    grpc_max_recv_msg_mb: int
    max_request_bytes: int
    strict_json: bool
    shutdown_grace: float
    drain_delay: float
    http_timeout: float
    http_idle_timeout: float
    tls_cert_file: str | None
    tls_key_file: str | None
    cuebot_tls: bool
    cuebot_tls_ca_file: str | None
    cuebot_tls_cert_file: str | None
    cuebot_tls_key_file: str | None
    cuebot_tls_server_name: str | None
    cors_origins: tuple[str, ...]
    cors_headers: tuple[str, ...]
    cors_max_age: float
    rate_limit_rps: float
    rate_limit_burst: int | None
    health_endpoints: bool
    workers: int
    fan_in: bool
    read_cache_ttl: float
    sandbox: bool = False
    jwt_secret_file: str | None = None

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
        """The effective configuration for the start-up log, with every secret redacted."""
        described: dict[str, Any] = {}
        for item in fields(self):
            setting = _BY_ATTRIBUTE.get(item.name)
            value = getattr(self, item.name)
            name = setting.variable if setting else item.name.upper()
            hidden = setting is not None and setting.secret and value not in (None, ())
            described[name] = REDACTED if hidden else value
        return described


def load_config(
    environ: Mapping[str, str],
    flags: Mapping[str, str | None],
    sandbox: bool = False,
) -> GatewayConfig:
    """Build the configuration from flags (by attribute name) over environment variables.

    In sandbox mode the JWT secret may be omitted: the README's development
    default ``default-secret-key`` applies, which is only acceptable because
    the sandbox holds no real farm.
    """
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        source, raw = f"--{setting.flag}", flags.get(setting.attribute)
        if raw is None:
            source, raw = setting.variable, environ.get(setting.variable)
        if raw is None or (raw == "" and setting.default is not None
                           and not setting.empty_is_value):
            raw = setting.default
        if raw is None:
            values[setting.attribute] = None
            continue
        try:
            values[setting.attribute] = setting.parse(raw)
        except ValueError as error:
            shown = REDACTED if setting.secret else repr(raw)
            raise ConfigError(source, f"{error}, got {shown}") from None
    _check_key_sources(values, sandbox)
    if (values["tls_cert_file"] is None) != (values["tls_key_file"] is None):
        raise ConfigError("TLS_CERT_FILE", "set TLS_CERT_FILE and TLS_KEY_FILE together")
    if values["workers"] > 1 and values["metrics_port"] is not None:
        raise ConfigError("METRICS_PORT", "cannot be combined with WORKERS > 1 (each worker "
                          "would need the port); scrape /metrics on the main port")
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
    public = [a for a in algorithms if a not in HMAC_ALGORITHMS]
    sources = [name for name, attribute in (("JWT_PUBLIC_KEY_FILE", "jwt_public_key_file"),
                                            ("JWT_JWKS_URL", "jwt_jwks_url"))
               if values[attribute] is not None]
    hint = (f" (or leave {', '.join(hmac)} out of JWT_ALGORITHMS to accept only tokens "
            f"signed with the keys of {' and '.join(sources)})") if sources else ""
    values["jwt_secret"] = _load_secret(values.pop("jwt_secret"), values["jwt_secret_file"],
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
    secret = _load_secret(None, config.jwt_secret_file, config.sandbox, required=True)
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


def config_from_process(flags: Mapping[str, str | None], sandbox: bool = False) -> GatewayConfig:
    """The configuration of this process: its flags over its environment."""
    return load_config(os.environ, flags, sandbox=sandbox)


def worker_environment(
    flags: Mapping[str, str | None], overrides: Mapping[str, str]
) -> dict[str, str]:
    """The environment of a worker process: this process's, with its flags as variables.

    Workers read their configuration from the environment alone, so every
    flag given to the supervisor becomes the variable it stands for.
    """
    environment = dict(os.environ)
    for setting in SETTINGS:
        value = flags.get(setting.attribute)
        if value is not None:
            environment[setting.variable] = value
    environment.update(overrides)
    return environment
