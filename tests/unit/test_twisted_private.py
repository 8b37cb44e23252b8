"""The private parts of twisted.web the gateway relies on still behave as it expects.

If a Twisted upgrade renames or changes one of them, these tests fail by name
(see opencue_gateway/twisted_private.py), instead of requests in production.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, _ChunkedTransferDecoder

from opencue_gateway.twisted_private import (
    PRIVATE_NAMES,
    BadRequestHook,
    pending_chunk_bytes,
    reading_request_line,
    request_line,
)


class RecordingChannel(BadRequestHook):
    """A channel that notes each request Twisted calls unparseable."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def bad_request(self) -> None:
        self.refused += 1
        self.transport.loseConnection()


def connected() -> RecordingChannel:
    channel = RecordingChannel()
    channel.makeConnection(StringTransport())
    return channel


def test_every_private_name_is_where_the_gateway_expects_it():
    """Each listed private name exists on the installed Twisted (class or live instance)."""
    channel = connected()
    channel.dataReceived(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n")
    live = {HTTPChannel: channel, _ChunkedTransferDecoder: channel._transferDecoder}
    for owner, name in PRIVATE_NAMES:
        assert hasattr(owner, name) or hasattr(live[owner], name), f"{owner.__name__}.{name}"


def test_an_announced_chunk_size_is_visible_before_its_bytes():
    """After a chunk-size line, the bytes still due of that chunk can be read."""
    channel = connected()
    channel.dataReceived(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert pending_chunk_bytes(channel) is None
    channel.dataReceived(b"ffff\r\n")
    assert pending_chunk_bytes(channel) == 0xFFFF
    channel.dataReceived(b"x" * 16)
    assert pending_chunk_bytes(channel) == 0xFFFF - 16


def test_twisted_hands_an_unparseable_request_line_to_the_hook():
    """A request line without an HTTP version reaches bad_request, once."""
    channel = connected()
    channel.dataReceived(b"GARBAGE\r\n")
    assert channel.refused == 1


def test_twisted_hands_bad_framing_to_the_hook():
    """Two different Content-Length headers reach bad_request."""
    channel = connected()
    channel.dataReceived(b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert channel.refused == 1


def test_the_request_line_is_known_before_the_headers_end():
    """After the first line, its method and target can be read; header lines follow it."""
    channel = connected()
    assert reading_request_line(channel)
    channel.dataReceived(b"POST /show.ShowInterface/GetShows HTTP/1.1\r\n")
    assert request_line(channel) == (b"POST", b"/show.ShowInterface/GetShows")
    channel.dataReceived(b"Host: gw\r\n")
    assert not reading_request_line(channel)


def test_a_channel_with_no_request_yet_has_no_request_line():
    """Before any byte the request line is unknown, not an error."""
    assert request_line(connected()) == (b"-", b"-")
    assert request_line(None) == (b"-", b"-")
