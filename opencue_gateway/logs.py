"""The gateway's loggers, filtered by LOG_LEVEL, and the JSON log format.

twistd installs its log observer after the plugin's ``makeService`` has run,
so the level cannot be set on twistd's observer.  Instead every gateway
module logs through :func:`logger`, whose events pass one level filter on
their way to the global publisher; ``makeService`` sets that filter's level.

With LOG_FORMAT=json the gateway hands twistd a :class:`JsonLinesObserver`
(as the application's ILogObserver component), and every log event, the
gateway's and Twisted's, becomes one JSON object per line on stdout.
"""

from __future__ import annotations

import datetime
from typing import IO, Any

import orjson
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogPublisher,
)
from zope.interface import implementer

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


def escape(value: str) -> str:
    """A value as it may appear in a text log line: nothing in it can start another line.

    Control characters (C0, DEL, C1), other unprintable ones (line and
    paragraph separators, bidi overrides) become ``\\xNN``/``\\uNNNN``
    escapes, and backslash and double quote are escaped so that an escape
    or a quoted field cannot be faked either.  Printable text, accented
    letters and other scripts included, stays as it is.  JSON lines need
    none of this: their encoder escapes what JSON must.
    """
    if value.isprintable() and "\\" not in value and '"' not in value:
        return value
    return "".join(_escape_char(c) for c in value)


def _escape_char(char: str) -> str:
    """One character of :func:`escape`."""
    if char in '\\"':
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def logger(namespace: str) -> Logger:
    """A Logger for one gateway module, subject to LOG_LEVEL."""
    return Logger(namespace=namespace, observer=_observer)


def is_enabled(namespace: str, level: LogLevel) -> bool:
    """Would an event of this level in this namespace be logged (to skip building it)?"""
    return level >= _levels.logLevelForNamespace(namespace)


def set_level(level: str) -> None:
    """Apply LOG_LEVEL (debug, info, warn, error) to every gateway logger but the audit log.

    The audit log is a record of who changed what, not diagnostics: a quieter
    LOG_LEVEL must not drop it.
    """
    _levels.setLogLevelForNamespace(NAMESPACE, LEVELS[level])
    _levels.setLogLevelForNamespace(AUDIT_NAMESPACE, LogLevel.info)


@implementer(ILogObserver)
class JsonLinesObserver:
    """Writes each event as one JSON object: time, level, logger, message, and its fields.

    Structured records (``access``, ``audit``) are inlined as they are, so a
    log shipper gets typed fields rather than text to parse.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        """Serialise and write one event."""
        level = event.get("log_level")
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(
                event.get("log_time", 0), datetime.UTC).isoformat(timespec="milliseconds"),
            "level": level.name if level is not None else "info",
            "logger": event.get("log_namespace", "-"),
            "message": formatEvent(event),
        }
        for key in ("access", "audit"):
            if key in event:
                line[key] = event[key]
        failure = event.get("log_failure")
        if failure is not None:
            line["traceback"] = failure.getTraceback()
        self._stream.write(orjson.dumps(line, default=str) + b"\n")
        self._stream.flush()
