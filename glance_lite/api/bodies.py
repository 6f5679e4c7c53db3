"""Reading image data from a request body, and walking away from one that is refused.

A refused upload (413, 400, ...) must not make the server read a huge body to its end:
the reader takes at most `discard_limit` more bytes, so that a client that is still
sending gets to read the answer, then asks the server to close the connection through
the environ hook the server module provides (wsgi.CLOSE_CONNECTION_HOOK).
"""

import contextlib
import logging
from collections.abc import Iterator

import webob

from glance_lite import wsgi
from glance_lite.api.repository import ClientDisconnected

LOG = logging.getLogger(__name__)


class BodyReader:
    def __init__(self, *, chunk_size: int, discard_limit: int):
        self.chunk_size = chunk_size
        self.discard_limit = discard_limit

    def chunks(self, req: webob.Request) -> Iterator[bytes]:
        """The body in pieces of at most chunk_size; ClientDisconnected if it ends early."""
        stream = req.environ["wsgi.input"]
        remaining = req.content_length
        chunk_size = self.chunk_size
        try:
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = stream.read(want)
                if not chunk:
                    if remaining:
                        raise ClientDisconnected()
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        except (OSError, ValueError) as err:
            # eventlet raises these for a connection lost mid-body or bad chunked framing
            LOG.info("upload body ended early: %s", err)
            raise ClientDisconnected() from None

    @contextlib.contextmanager
    def abandoning_body_on_error(self, req: webob.Request):
        """On an error, read at most discard_limit more body bytes, then close."""
        try:
            yield
        except BaseException:
            self.abandon(req)
            raise

    def abandon(self, req: webob.Request) -> None:
        environ = req.environ
        stream = environ.get("wsgi.input")
        if getattr(stream, "should_send_hundred_continue", False):
            # The client waits for "100 Continue" before sending the body: never read it
            # (the server then closes the connection after the answer by itself).
            stream = None
        left = self.discard_limit
        with contextlib.suppress(OSError, ValueError):
            while stream is not None and left > 0:
                chunk = stream.read(min(left, self.chunk_size))
                if not chunk:
                    return  # all read: the connection can stay open
                left -= len(chunk)
        hook = environ.get(wsgi.CLOSE_CONNECTION_HOOK)
        if hook is not None:
            hook()
