"""The only place the gateway touches private parts of Twisted's HTTP server.

twisted.web's HTTPChannel has no public hooks for a few things the gateway
must do at its edge: answering requests it cannot parse in the gateway's JSON
error shape (Twisted writes a bare status line), telling an over-long request
line (414) from an over-long header (431), naming the request line of a
request refused before it was parsed, and seeing the size of the chunk a
chunked body announced before its bytes arrive.  Those reads and the one override live
here, named in :data:`PRIVATE_NAMES`; tests/unit/test_twisted_private.py
checks each against the installed Twisted, so an upgrade that renames one
fails that test instead of a production request.
"""

from __future__ import annotations

from twisted.web.http import HTTPChannel, _ChunkedTransferDecoder

# (owner, attribute): every private name this module relies on.
PRIVATE_NAMES = (
    (HTTPChannel, "_respondToBadRequestAndDisconnect"),
    (HTTPChannel, "_receivedHeaderSize"),
    (HTTPChannel, "_command"),
    (HTTPChannel, "_path"),
    (HTTPChannel, "_transferDecoder"),
    (_ChunkedTransferDecoder, "state"),
    (_ChunkedTransferDecoder, "length"),
)


class BadRequestHook(HTTPChannel):
    """An HTTPChannel whose every "cannot parse this request" ends in :meth:`bad_request`.

    Twisted calls ``_respondToBadRequestAndDisconnect`` for an invalid request
    line, header, Content-Length or chunk framing, and for too many headers.
    """

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Twisted's hook, handed to the public method subclasses implement."""
        self.bad_request()

    def bad_request(self) -> None:
        """Answer a request that cannot be parsed, and disconnect."""
        raise NotImplementedError


def reading_request_line(channel: HTTPChannel) -> bool:
    """Is the channel still reading a request line (no header line received yet)?"""
    return channel._receivedHeaderSize == 0


def request_line(channel: HTTPChannel | None) -> tuple[bytes, bytes]:
    """The method and target of the request being read, as far as they are known."""
    return (getattr(channel, "_command", b"-") or b"-", getattr(channel, "_path", b"-") or b"-")


def pending_chunk_bytes(channel: HTTPChannel) -> int | None:
    """Bytes still due of the chunk a chunked request body is in, or None."""
    decoder = getattr(channel, "_transferDecoder", None)
    if isinstance(decoder, _ChunkedTransferDecoder) and decoder.state == "BODY":
        return decoder.length
    return None
