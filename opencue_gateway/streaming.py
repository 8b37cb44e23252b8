"""Writing a streamed body: encoded in pool threads, written by the reactor, paced by the client.

A :class:`StreamedBody` is the request's push producer (``IPushProducer``;
the request is its ``IConsumer``).  A pool thread takes chunks from the
body's iterator, which does the encoding and the gzip, and hands each one to
the reactor, which writes it.  At most :data:`WINDOW` chunks are encoded and
not yet written; when that many wait, the thread returns to the pool instead
of waiting, and the reactor starts it again once one has been written.  When
the transport's buffer fills (a client reading slowly), Twisted pauses the
producer: chunks stop being written, so the thread stops once the window is
full, until Twisted resumes it.  What the gateway holds for a streamed answer
is therefore the reply itself, the window and the transport's buffer, however
slowly the client reads, and a slow client holds no thread.

A client that leaves, or HTTP_TIMEOUT cutting the answer, stops the body:
nothing more is written, and the thread stops at the chunk it is on.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer, IReactorFromThreads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.iweb import IRequest
from zope.interface import implementer

# Chunks encoded ahead of the transport: one being written while the next is encoded.
WINDOW = 2


@implementer(IPushProducer)
class StreamedBody:
    """One streamed answer: chunks from pool threads, written on the reactor as the client reads.

    ``ahead``, ``encoding``, ``exhausted`` and ``stopped`` are shared with the
    pool thread and change under the lock; the rest is the reactor's.
    """

    def __init__(self, request: IRequest, chunks: Iterator[bytes], pool: ThreadPool,
                 reactor: IReactorFromThreads) -> None:
        self._request = request
        self._chunks = chunks
        self._pool = pool
        self._reactor = reactor
        self._lock = threading.Lock()
        self.ahead = 0
        self._encoding = False
        self._exhausted = False
        self._stopped = False
        self._paused = False
        self._registered = False
        self._ready: deque[bytes | None] = deque()
        self.done: Deferred[None] = Deferred(lambda _: self._stop())

    def start(self) -> Deferred[None]:
        """Start encoding; fires once the last chunk is written.

        Cancelling it (the client left, the request timed out) stops the body.
        The producer is registered with the first chunk: until then nothing is
        written, and HTTP_TIMEOUT may still answer 504 on its own.
        """
        self._request.notifyFinish().addBoth(lambda _: self.done.cancel())
        self._encode_more()
        return self.done

    @property
    def encoding(self) -> bool:
        """Is a pool thread encoding chunks of this body now?"""
        with self._lock:
            return self._encoding

    # -- the pool thread --------------------------------------------------------

    def _encode(self) -> None:
        """Take chunks from the iterator while the window has room; ``None`` marks the end."""
        while True:
            with self._lock:
                if self._stopped or self.ahead >= WINDOW:
                    self._encoding = False
                    return
                self.ahead += 1
            chunk = next(self._chunks, None)
            if chunk is None:
                with self._lock:
                    self._exhausted = True
                    self._encoding = False
            self._reactor.callFromThread(self._arrived, chunk)
            if chunk is None:
                return

    def _encoded(self, success: bool, value: Any) -> None:
        """A pool job ended (in its thread); a failure ends the body, on the reactor."""
        if not success:
            self._reactor.callFromThread(self._failed, value)

    # -- the reactor ------------------------------------------------------------

    def _encode_more(self) -> None:
        """Start a pool job unless one runs, the window is full, or the body is over."""
        with self._lock:
            start = not (self._encoding or self._exhausted or self._stopped) \
                and self.ahead < WINDOW
            if start:
                self._encoding = True
        if start:
            self._pool.callInThreadWithCallback(self._encoded, self._encode)

    def _arrived(self, chunk: bytes | None) -> None:
        """A chunk is encoded: write it now unless the transport asked for a pause."""
        if self.done.called:
            return
        self._ready.append(chunk)
        self._write_ready()

    def _write_ready(self) -> None:
        """Write what is ready while the transport takes it; finish after the last chunk."""
        while self._ready and not self._paused:
            chunk = self._ready.popleft()
            with self._lock:
                self.ahead -= 1
            if chunk is None:
                self._unregister()
                self.done.callback(None)
                return
            if not self._registered:
                self._registered = True
                self._request.registerProducer(self, True)
            self._request.write(chunk)
        self._encode_more()

    def _failed(self, failure: Failure) -> None:
        """Encoding failed: the body ends with the error (the app decides what the client sees)."""
        if not self.done.called:
            self._stop()
            self.done.errback(failure)

    def _stop(self) -> None:
        """No more chunks: the thread stops at the one it is on; nothing more is written."""
        with self._lock:
            self._stopped = True
        self._ready.clear()
        if getattr(self._request, "channel", None) is not None:
            self._unregister()

    def _unregister(self) -> None:
        """Leave the request, as it must be left before it finishes."""
        if self._registered:
            self._registered = False
            self._request.unregisterProducer()

    def pauseProducing(self) -> None:
        """The transport's buffer is full: hold chunks until it drains."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The transport drained: write what is ready and encode more."""
        self._paused = False
        if not self.done.called:
            self._write_ready()

    def stopProducing(self) -> None:
        """The connection is going away: stop encoding now.

        ``done`` is left alone: the request's own connectionLost follows and
        cancels it through the request's notifications, once the request
        (and Klein) know the client is gone.
        """
        self._stop()
