"""A Server-Sent Events reader for tests (WHATWG HTML section 9.2.6): bytes in, events out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    """One dispatched event: its type, id and data."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseReader:
    """Feeds on a stream's bytes as they come; keeps the events and comments seen so far."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    _buffer: bytes = b""
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, data: bytes) -> list[Event]:
        """Read more of the stream; returns the events it completed.

        Lines end with LF or CRLF (the gateway writes LF; a lone CR, which the
        standard also allows, never comes from it).
        """
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        before = len(self.events)
        for line in lines:
            self._line(line.removesuffix(b"\r").decode("utf-8"))
        return self.events[before:]

    def _line(self, line: str) -> None:
        if not line:
            if self._data:
                self.events.append(Event(self._event or "message", "\n".join(self._data),
                                         self._id))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value

    def kinds(self) -> list[str]:
        """The event types seen so far, in order."""
        return [event.event for event in self.events]
