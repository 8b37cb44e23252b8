"""The gRPC channel to Cuebot: its arguments (keepalive, limits, backoff) and credentials.

One long-lived channel per Cuebot serves every call (cuebots.py);
:func:`channel_factory` makes them (plain or TLS, mutual TLS with a client
certificate) when the gateway starts, never before, because grpc's threads
must not exist before twistd has finished forking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from opencue_gateway.config import GatewayConfig
from opencue_gateway.tls import cuebot_credentials

ROUND_ROBIN = '{"loadBalancingConfig": [{"round_robin": {}}]}'
RECONNECT_BACKOFF_MS = 250
MAX_RECONNECT_BACKOFF_MS = 1000


def channel_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """gRPC channel arguments for talking to Cuebot.

    Keepalive: Cuebot is a grpc-java server with default settings, which
    tolerates a ping at most every 5 minutes and hangs up (GOAWAY
    "too_many_pings") after more than 2 early pings without data in between.
    So the gateway never pings an idle connection and sends at most 2 pings
    between data frames; pings then only watch connections that have calls
    in flight, at KEEPALIVE_TIME intervals, and Cuebot never counts a third
    strike.  Reconnect attempts come at most a second apart (grpc's default
    backoff grows to 120 s), so a restarted Cuebot is used again within a
    second, and /readyz follows as fast.
    """
    return [
        ("grpc.max_receive_message_length", config.grpc_max_recv_msg_mb * 1024 * 1024),
        ("grpc.max_send_message_length", -1),
        ("grpc.keepalive_time_ms", int(config.keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 2),
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
        ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ("grpc.primary_user_agent", "opencue-gateway"),
        # A name with several addresses (dns:///cuebots:8443) spreads calls over all of them.
        ("grpc.service_config", ROUND_ROBIN),
    ]


def channel_factory(config: GatewayConfig) -> Callable[[str], grpc.Channel]:
    """A function opening the channel to an endpoint with the configured arguments and TLS.

    The TLS files are read here, at start-up, so an unreadable one stops
    the gateway with one line rather than failing the first call.
    """
    credentials = (
        cuebot_credentials(config.cuebot_tls_ca_file, config.cuebot_tls_cert_file,
                           config.cuebot_tls_key_file)
        if config.uses_cuebot_tls else None
    )

    def open_channel(endpoint: str) -> grpc.Channel:
        options = channel_options(config)
        if credentials is None:
            return grpc.insecure_channel(endpoint, options=options)
        if config.cuebot_tls_server_name:
            options.append(("grpc.ssl_target_name_override", config.cuebot_tls_server_name))
        return grpc.secure_channel(endpoint, credentials, options=options)

    return open_channel
