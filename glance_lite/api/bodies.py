"""Reading image data from a request body.

A refused upload is not this module's concern: the server module (server/protocol.py)
sees the body the app left unread and, when it is large, closes the connection after
the answer instead of reading it.
"""

import contextlib
import logging
from collections.abc import Iterator

import webob

from glance_lite.api.repository import ClientDisconnected

LOG = logging.getLogger(__name__)


class BodyReader:
    def __init__(self, *, chunk_size: int):
        self.chunk_size = chunk_size

    def chunks(self, req: webob.Request) -> "RequestBody":
        return RequestBody(req.environ["wsgi.input"], req.content_length, self.chunk_size)


class RequestBody:
    """An upload's body: pieces of at most chunk_size when iterated, or read straight into
    a store's buffer with readinto() where the server's input can do that (glance-lite's
    server's can; any other WSGI server's input is read in pieces). Either way it raises
    ClientDisconnected where the body ends early or its framing is bad."""

    def __init__(self, stream, length: int | None, chunk_size: int):
        self._stream = stream
        self._remaining = length  # None: chunked, read to its end
        self._chunk_size = chunk_size
        if hasattr(stream, "readinto"):
            self.readinto = self._readinto

    def __iter__(self) -> Iterator[bytes]:
        stream = self._stream
        chunk_size = self._chunk_size
        with _disconnects():
            while self._remaining is None or self._remaining > 0:
                remaining = self._remaining
                chunk = stream.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not chunk:
                    if remaining:
                        raise ClientDisconnected()
                    return
                if remaining is not None:
                    self._remaining = remaining - len(chunk)
                yield chunk

    def _readinto(self, buffer) -> int:
        remaining = self._remaining
        if remaining == 0:
            return 0
        view = memoryview(buffer)
        if remaining is not None and remaining < len(view):
            view = view[:remaining]
        with _disconnects():
            got = self._stream.readinto(view)
        if remaining is not None:
            if not got:
                raise ClientDisconnected()
            self._remaining = remaining - got
        return got


@contextlib.contextmanager
def _disconnects() -> Iterator[None]:
    """OSError or ValueError from the input (eventlet's, for a connection lost mid-body
    or bad chunked framing) as ClientDisconnected."""
    try:
        yield
    except (OSError, ValueError) as err:
        LOG.info("upload body ended early: %s", err)
        raise ClientDisconnected() from None
