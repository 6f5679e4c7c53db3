"""Reading image data from a request body.

A refused upload is not this module's concern: the server module (server/protocol.py)
sees the body the app left unread and, when it is large, closes the connection after
the answer instead of reading it.
"""

import logging
from collections.abc import Iterator

import webob

from glance_lite.api.repository import ClientDisconnected

LOG = logging.getLogger(__name__)


class BodyReader:
    def __init__(self, *, chunk_size: int):
        self.chunk_size = chunk_size

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
