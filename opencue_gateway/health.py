"""Liveness and readiness, for load balancers and Kubernetes probes.

``/healthz`` says the process is alive and serving HTTP.  ``/readyz`` says
whether it should get traffic: the Cuebot channel is connected, the worker
pool has room, the gateway is not draining, and every other check the
service adds (the identity provider's keys are loaded) passes.  Both answer
small JSON and nothing sensitive (no endpoint, no configuration).  They are
public because a probe has no token, and can be turned off with
HEALTH_ENDPOINTS=false.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from opencue_gateway.upstream import CuebotClient


@dataclass(frozen=True, slots=True)
class Probe:
    """A probe's answer: HTTP status and JSON-able body."""

    status: int
    body: dict[str, object]


class Health:
    """Answers the probes; the service flips ``draining`` on SIGTERM."""

    def __init__(self, cuebot: CuebotClient,
                 checks: Sequence[Callable[[], str | None]] = ()) -> None:
        self._cuebot = cuebot
        # More readiness conditions: each says why the gateway is not ready, or None.
        self._checks = tuple(checks)
        self.draining = False

    @staticmethod
    def live() -> Probe:
        """Alive whenever the reactor can answer at all."""
        return Probe(200, {"status": "ok"})

    def ready(self) -> Probe:
        """Ready to serve, or 503 with the reasons why not.

        With several Cuebots the gateway is ready while any one can be
        reached, and the answer names each endpoint's state.
        """
        reasons = []
        if self.draining:
            reasons.append("draining: the gateway is shutting down")
        state = self._cuebot.state
        if state != grpc.ChannelConnectivity.READY:
            # An idle or failed channel only reconnects when asked; a probe asks.
            self._cuebot.connect()
        # IDLE is a channel that closed its connection after a quiet spell (grpc's idle
        # timeout); the next call reconnects it, so it is no reason to take traffic away.
        if state not in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.IDLE):
            reasons.append("no Cuebot channel is connected" if self._cuebot.cuebots.several else
                           f"cuebot channel is {state.name if state else 'not started'}")
        if not self._cuebot.accepting:
            reasons.append("the worker queue is full")
        reasons.extend(reason for check in self._checks if (reason := check()) is not None)
        body: dict[str, object] = (
            {"status": "unavailable", "reasons": reasons} if reasons else {"status": "ready"})
        if self._cuebot.cuebots.several:
            body["cuebots"] = self._cuebot.cuebots.states()
        return Probe(503 if reasons else 200, body)
