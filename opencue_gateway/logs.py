"""The gateway's loggers, filtered by LOG_LEVEL.

twistd installs its log observer after the plugin's ``makeService`` has run,
so the level cannot be set on twistd's observer.  Instead every gateway
module logs through :func:`logger`, whose events pass one level filter on
their way to the global publisher; ``makeService`` sets that filter's level.
"""

from __future__ import annotations

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

NAMESPACE = "opencue_gateway"
AUDIT_NAMESPACE = "opencue_gateway.audit"
LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}

_levels = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_observer = FilteringLogObserver(globalLogPublisher, [_levels])


def logger(namespace: str) -> Logger:
    """A Logger for one gateway module, subject to LOG_LEVEL."""
    return Logger(namespace=namespace, observer=_observer)


def set_level(level: str) -> None:
    """Apply LOG_LEVEL (debug, info, warn, error) to every gateway logger but the audit log.

    The audit log is a record of who changed what, not diagnostics: a quieter
    LOG_LEVEL must not drop it.
    """
    _levels.setLogLevelForNamespace(NAMESPACE, LEVELS[level])
    _levels.setLogLevelForNamespace(AUDIT_NAMESPACE, LogLevel.info)
