"""What a starting gateway says, and how the process answers SIGTERM and SIGHUP.

The start-up lines name the effective configuration (secrets redacted),
warn about short secrets and certificates close to expiry, say where the
gateway listens, where Cuebot is and which protos it serves (the installed
opencue-proto or PROTO_DESCRIPTOR_SET's file), and in sandbox mode print a token that
makes the README's curl lines work as written.
"""

from __future__ import annotations

import datetime
import signal
from collections.abc import Callable, Sequence
from typing import Any

from opencue_gateway.auth import sign_token
from opencue_gateway.config import MIN_SECRET_BYTES, SANDBOX_HOST, short_secrets
from opencue_gateway.logs import logger
from opencue_gateway.tls import ServerTLS
from opencue_gateway.wiring import Gateway

log = logger(__name__)

SANDBOX_TOKEN_LIFETIME = 24 * 3600


def log_start(gateway: Gateway, addresses: Sequence[str], tls: ServerTLS | None) -> None:
    """The start-up lines: configuration, warnings, where it listens, the sandbox token."""
    config = gateway.config
    log.info("effective configuration: {config}", config=gateway.effective_config())
    for name in short_secrets(config):
        log.warn("{name} is shorter than {size} bytes; use a long random secret "
                 "(openssl rand -base64 32)", name=name, size=MIN_SECRET_BYTES)
    if tls is not None and tls.expires_soon(datetime.datetime.now(datetime.UTC)):
        log.warn("the TLS certificate expires on {date}", date=f"{tls.not_after:%Y-%m-%d}")
    protos = gateway.catalog.describe()
    log.info("opencue-gateway listening on {addresses}, Cuebot at {endpoint} ({methods} methods "
             "in {services} services from {source})",
             addresses=" and ".join(addresses), endpoint=gateway.cuebot.endpoint, **protos)
    if config.sandbox.enabled and config.rest_host == SANDBOX_HOST and not config.listen:
        log.info("sandbox mode listens on {host} only, since anyone may sign its tokens; set "
                 "REST_HOST (or LISTEN) to serve other machines", host=SANDBOX_HOST)
    if config.sandbox.enabled and config.jwt_secret is not None:
        token = sign_token(config, "sandbox-user", "admin", SANDBOX_TOKEN_LIFETIME)
        log.info("sandbox mode: Cuebot is in-memory at {endpoint}. A token valid for 24h:\n"
                 "export JWT_TOKEN={token}", endpoint=gateway.cuebot.endpoint, token=token)


def install_signal_handlers(reactor: Any, reload: Callable[[], None],
                            ignore_interrupt: bool = False) -> None:
    """SIGTERM: a clean stop that exits 0.  SIGHUP: ``reload`` (re-read secret and policy).

    twistd re-raises the terminating signal after shutdown, so a drained
    gateway would still die "by SIGTERM"; systemd and Kubernetes stop services
    with SIGTERM, and a completed drain is a successful exit.  Installed once
    the reactor runs, after Twisted's own handlers.  A worker ignores SIGINT:
    Ctrl-C reaches the whole process group, and the supervisor decides, then
    sends SIGTERM so that every worker drains in step.
    """
    if ignore_interrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_sigterm(signum: int, frame: object) -> None:
        log.info("SIGTERM received: draining")
        reactor.callFromThread(reactor.stop)

    def on_sighup(signum: int, frame: object) -> None:
        reactor.callFromThread(reload)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sighup)
