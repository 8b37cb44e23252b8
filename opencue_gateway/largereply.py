"""A large reply's JSON, produced a bounded piece at a time from its serialized bytes.

Cuebot's big answers are lists: GetJobs prints as ``{"jobs":{"jobs":[...]}}``,
GetFrames as ``{"frames":{"frames":[...]}}``.  Encoded whole, such a reply is
held several times over at once (the parsed message, a dict per element, the
JSON, its gzip), about fifteen times its protobuf size.  Here the reply stays
the bytes Cuebot sent; only where its list is, is it read: what surrounds the
list is decoded and printed by the ordinary encoder, and the list's elements
are parsed and printed a batch at a time.  What is held is the protobuf bytes,
the offsets of the elements and one batch.

The bytes are exactly the whole encoding's.  The text around the list is the
ordinary encoder's output for the reply without its list, cut where the list
goes (a marker byte that JSON text cannot contain stands in for it), and a
list's JSON is its elements' JSON joined by commas (see
:func:`~opencue_gateway.transcode.json_bytes`).

Which list: the first repeated message field, shallowest first, reachable
from the reply type through singular message fields (the reply's "spine");
GetJobs' is ``jobs.jobs``.  Types without one are encoded whole.  Protobuf's
rules for repeated occurrences hold: occurrences of a singular message merge
(their bytes are read as one message), elements append.  A reply this module
cannot walk (a wire type it does not follow) is encoded whole, as before.
Nothing here imports Twisted: this runs in the worker threads.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import grpc
import orjson
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from opencue_gateway.compression import GzipStream
from opencue_gateway.errors import GatewayError
from opencue_gateway.transcode import Encoder, Transcoder, json_bytes
from opencue_gateway.wire import Kind, Presence, Shape, WireField, WireMessage

# Replies from this many serialized bytes on are streamed (see README, Performance).
STREAM_MIN_BYTES = 256 * 1024
# JSON bytes per piece handed to the reactor, before gzip: the unit of the bounded buffer.
PIECE_BYTES = 64 * 1024
# How deep the list may sit under singular messages (GetJobs: 2).
MAX_DEPTH = 4
# Elements parsed and printed together at first, before their size is known.
FIRST_BATCH = 16
MAX_BATCH = 4096
_LENGTH_DELIMITED = 2
# Stands for the list in the surrounding text: JSON text never holds a raw NUL.
_MARK = b"\x00"


class _UnwalkableError(Exception):
    """The bytes hold something the walk does not follow; the reply is encoded whole."""


def parse_reply(message_class: type[Message], data: bytes) -> Message:
    """A reply message from Cuebot's bytes; INTERNAL (500) if they are not one."""
    try:
        return message_class.FromString(data)
    except DecodeError:
        raise GatewayError(
            grpc.StatusCode.INTERNAL,
            f"Cuebot's reply is not a valid {message_class.DESCRIPTOR.full_name} message",
        ) from None


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise _UnwalkableError


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Each field of the message in ``data[start:end]``: (tag, its start, value start, end).

    The tag is the field number shifted left by 3 plus the wire type.  Groups
    (wire types 3 and 4, absent from proto3) are not followed.
    """
    pos = start
    while pos < end:
        field_start = pos
        byte = data[pos]
        if byte < 0x80:
            tag, pos = byte, pos + 1
        else:
            tag, pos = _varint(data, pos, end)
        wire_type = tag & 7
        value_start = pos
        if wire_type == _LENGTH_DELIMITED:
            length, value_start = _varint(data, pos, end)
            pos = value_start + length
        elif wire_type == 0:
            _, pos = _varint(data, pos, end)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise _UnwalkableError
        if pos > end:
            raise _UnwalkableError
        yield tag, field_start, value_start, pos


@dataclass(frozen=True, slots=True)
class _Level:
    """One message on the way down to the list, and the field leading on from it."""

    message_class: type[Message]
    encoder: Encoder
    tag: int
    """The next field's number and wire type (length-delimited), as it is tagged."""
    json_name: str


@dataclass(frozen=True, slots=True)
class ListPlan:
    """How to stream one reply type: the messages down to its list, and its elements."""

    levels: tuple[_Level, ...]
    """The reply, then each singular message on the spine; the last one holds the list."""
    list_attr: str
    element_encoder: Encoder

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The reply's JSON in pieces of about PIECE_BYTES; joined, the whole encoding."""
        try:
            head, tail, starts, ends = self._split(data)
        except _UnwalkableError:
            reply = parse_reply(self.levels[0].message_class, data)
            yield json_bytes(self.levels[0].encoder(reply))
            return
        yield head
        yield from self._elements(data, starts, ends)
        yield tail

    def _split(self, data: bytes) -> tuple[bytes, bytes, array, array]:
        """The text before and after the list's elements, and where each element is.

        Each level's fields off the spine are gathered in order and decoded as
        that level's message; its JSON, with the marker for the spine field, is
        cut in two around the marker.  A spine message that is absent prints as
        null, and nothing is streamed.
        """
        spans = [(0, len(data))]
        heads: list[bytes] = []
        tails: list[bytes] = []
        starts, ends = array("q"), array("q")
        last = len(self.levels) - 1
        for depth, level in enumerate(self.levels):
            rest = bytearray()
            inner: list[tuple[int, int]] = []
            for start, end in spans:
                for tag, field_start, value_start, field_end in _fields(data, start, end):
                    if tag != level.tag:
                        rest += data[field_start:field_end]
                    elif depth == last:
                        starts.append(field_start)
                        ends.append(field_end)
                    else:
                        inner.append((value_start, field_end))
            value = level.encoder(parse_reply(level.message_class, bytes(rest)))
            if depth < last and not inner:
                heads.append(json_bytes(value))
                return b"".join(heads), b"".join(reversed(tails)), array("q"), array("q")
            value[level.json_name] = orjson.Fragment(_MARK)
            head, tail = json_bytes(value).split(_MARK)
            heads.append(head)
            tails.append(tail)
            spans = inner
        return b"".join(heads) + b"[", b"]" + b"".join(reversed(tails)), starts, ends

    def _elements(self, data: bytes, starts: array, ends: array) -> Iterator[bytes]:
        """The list's elements' JSON, comma-separated, a batch of about PIECE_BYTES at a time.

        A batch is a run of adjacent elements, parsed in one call as the list's
        parent message; its size adapts to the elements' printed size.
        """
        parent = self.levels[-1].message_class
        encode = self.element_encoder
        count, index, total = FIRST_BATCH, 0, len(starts)
        separator = b""
        while index < total:
            stop = index + 1
            limit = min(total, index + count)
            while stop < limit and starts[stop] == ends[stop - 1]:
                stop += 1
            run = parse_reply(parent, data[starts[index]:ends[stop - 1]])
            printed = json_bytes([encode(element) for element in getattr(run, self.list_attr)])
            yield separator + printed[1:-1]
            separator = b","
            count = max(1, min(MAX_BATCH, PIECE_BYTES * (stop - index) // len(printed)))
            index = stop


@dataclass(frozen=True, slots=True)
class LargeReply:
    """A reply to send in pieces: Cuebot's bytes, how to read them, and gzip or not.

    It holds no state of its own: every :meth:`chunks` reads the bytes anew,
    so requests sharing one Cuebot call (fan-in, the read cache) each send
    their own copy of the answer.
    """

    data: bytes
    plan: ListPlan
    gzip: bool

    def chunks(self) -> Iterator[bytes]:
        """The body to write: bounded pieces, gzipped as one stream when ``gzip``."""
        pieces = _coalesced(self.plan.pieces(self.data))
        if not self.gzip:
            yield from pieces
            return
        stream = GzipStream()
        previous = next(pieces, b"")
        for piece in pieces:
            yield stream.compress(previous)
            previous = piece
        yield stream.finish(previous)


def _coalesced(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Join small pieces (the text around the list) to their neighbours, up to PIECE_BYTES."""
    pending: list[bytes] = []
    size = 0
    for piece in pieces:
        if size and size + len(piece) > PIECE_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
        pending.append(piece)
        size += len(piece)
    if pending:
        yield b"".join(pending)


class LargeReplies:
    """Decides which replies stream, and how, per reply type (read once, then shared)."""

    def __init__(self, transcoder: Transcoder, min_bytes: int = STREAM_MIN_BYTES) -> None:
        self._transcoder = transcoder
        self._min_bytes = min_bytes
        self._plans: dict[str, ListPlan | None] = {}

    def reply(self, message_class: type[Message], data: bytes, gzip: bool) -> LargeReply | None:
        """A LargeReply for a reply this large with a list to stream; None to encode it whole."""
        if len(data) < self._min_bytes:
            return None
        plan = self.plan(message_class.DESCRIPTOR)
        return None if plan is None else LargeReply(data, plan, gzip)

    def plan(self, descriptor: Descriptor) -> ListPlan | None:
        """The streaming plan of a reply type, or None when it has no list to stream."""
        name = descriptor.full_name
        if name not in self._plans:
            self._plans[name] = self._make_plan(descriptor)
        return self._plans[name]

    def _make_plan(self, descriptor: Descriptor) -> ListPlan | None:
        """Find the spine breadth first, so the shallowest list wins; None without one."""
        contract = self._transcoder.contract
        paths: list[list[tuple[Descriptor, WireField | None]]] = [[(descriptor, None)]]
        for _ in range(MAX_DEPTH):
            deeper = []
            for path in paths:
                here = path[-1][0]
                for field in _message_fields(contract.message(here)):
                    child = here.fields_by_name[field.name].message_type
                    if field.shape is Shape.LIST:
                        return self._plan_along([*path, (child, field)])
                    if field.presence is Presence.NULL and all(child is not d for d, _ in path):
                        deeper.append([*path, (child, field)])
            paths = deeper
        return None

    def _plan_along(self, path: list[tuple[Descriptor, WireField | None]]) -> ListPlan:
        """The plan for a spine: each message on it with the field leading on, then the list."""
        encoder_for = self._transcoder.encoder_for
        levels = tuple(
            _Level(GetMessageClass(descriptor), encoder_for(descriptor),
                   descriptor.fields_by_name[field.name].number << 3 | _LENGTH_DELIMITED,
                   field.json_name)
            for (descriptor, _), (_, field) in pairwise(path)
        )
        element, list_field = path[-1]
        return ListPlan(levels, list_field.name, encoder_for(element))


def _message_fields(message: WireMessage) -> Iterator[WireField]:
    """A message's fields holding messages (not well-known types, not maps), in order."""
    for field in message.fields:
        value = field.value
        if (value.kind is Kind.MESSAGE and value.message.well_known is None
                and field.shape is not Shape.MAP):
            yield field
