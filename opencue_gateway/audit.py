"""The audit log: one record per mutating call, on its own logger.

Every call of a method that is not read-only is recorded once, whatever its
outcome (done, refused by policy, rejected as malformed, failed at Cuebot),
with the time, the principal's ``sub`` and role, the method, the result code
and the duration.  Records go to the ``opencue_gateway.audit`` logger, which
LOG_LEVEL does not silence; with AUDIT_LOG_FILE they are also written to that
file as JSON lines, ready for a log shipper.  ``role`` is recorded in the
token's shape: a string, or a list when the token lists roles.  The text line
escapes every value (:func:`opencue_gateway.logs.escape`), so no claim or
address can forge a record.
"""

from __future__ import annotations

import datetime
from typing import IO, Any

import grpc
import orjson
from twisted.logger import ILogObserver, globalLogPublisher
from zope.interface import implementer

from opencue_gateway.auth import Principal
from opencue_gateway.catalog import RpcMethod
from opencue_gateway.logs import AUDIT_NAMESPACE as NAMESPACE
from opencue_gateway.logs import escape, logger


class AuditLog:
    """Records mutating calls; read-only ones are the access log's business."""

    def __init__(self) -> None:
        self._log = logger(NAMESPACE)

    def record(
        self,
        principal: Principal,
        method: RpcMethod,
        code: grpc.StatusCode,
        duration: float,
        client: str | None,
    ) -> None:
        """Log one mutating call with its outcome."""
        role = principal.role
        self._log.info(
            "audit: {sub} ({roles}) from {client} called {method}: {code} in {duration_ms}ms",
            audit={
                "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "sub": principal.sub,
                "role": list(role) if isinstance(role, tuple) else role,
                "method": method.path.lstrip("/"),
                "code": code.name,
                "duration_ms": round(duration * 1000, 3),
                "client": client,
            },
            sub=escape(principal.sub) or "(no sub)",
            roles=_roles_text(principal.roles, listed=isinstance(role, tuple)),
            client=escape(str(client)),
            method=method.path.lstrip("/"),
            code=code.name,
            duration_ms=round(duration * 1000, 1),
        )


def _roles_text(roles: tuple[str, ...], listed: bool) -> str:
    """``role wrangler``, ``roles [admin, ops]`` or ``role (none)``, escaped for the text line."""
    if listed:
        return "roles [" + ", ".join(escape(r) for r in roles) + "]"
    return "role " + (escape(roles[0]) if roles else "(none)")


@implementer(ILogObserver)
class AuditFileObserver:
    """Appends audit records to a file as JSON lines, one flush per record."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    @classmethod
    def open(cls, path: str) -> AuditFileObserver:
        """Open (append) the audit file; OSError tells start-up what went wrong."""
        return cls(open(path, "ab"))

    def __call__(self, event: dict[str, Any]) -> None:
        """Write the event if it is an audit record."""
        record = event.get("audit")
        if event.get("log_namespace") != NAMESPACE or record is None:
            return
        self._stream.write(orjson.dumps(record) + b"\n")
        self._stream.flush()

    def close(self) -> None:
        """Close the file when the gateway stops."""
        self._stream.close()


def start_audit_file(path: str) -> AuditFileObserver:
    """Route audit records to ``path`` in addition to the main log."""
    observer = AuditFileObserver.open(path)
    globalLogPublisher.addObserver(observer)
    return observer


def stop_audit_file(observer: AuditFileObserver) -> None:
    """Stop writing the audit file."""
    globalLogPublisher.removeObserver(observer)
    observer.close()

