"""A request body that can be read straight into the reader's own buffer.

eventlet's read() makes a bytes object of every piece it returns (and joins the pieces
of a chunked body into one more); an upload then copies each into the store's buffer.
readinto() puts the bytes where the reader wants them, with the socket's own reads. The
body's state (position, chunk_length, the "100 Continue" answer) is eventlet's, so
read() and readinto() may be mixed on one body, and the server reads what an app left
unread as it always does.
"""

import eventlet.wsgi
from eventlet import greenio


class Input(eventlet.wsgi.Input):
    def readinto(self, buffer) -> int:
        """Fill `buffer` from the body: the number of bytes put in, fewer than it holds
        only where the body ends (0 there). A chunked body is read across its chunks.
        OSError (eventlet.wsgi.ChunkReadError, a ValueError, for bad chunk framing) when
        the connection ends or fails within the body."""
        if self.should_send_hundred_continue:
            self.send_hundred_continue_response()
            self.is_hundred_continue_response_sent = True
        view = memoryview(buffer).cast("B")
        try:
            if self.chunked_input:
                return self._chunks_into(view)
            want = min(len(view), (self.content_length or 0) - self.position)
            if want <= 0:
                return 0
            got = self.rfile.readinto(view[:want]) or 0
        except greenio.SSL.ZeroReturnError:  # a TLS connection closed cleanly
            got = 0
        self.position += got
        return got

    def _chunks_into(self, view: memoryview) -> int:
        rfile = self.rfile
        filled = 0
        while filled < len(view) and self.chunk_length != 0:
            left = self.chunk_length - self.position
            if left <= 0:  # at the start, or after a chunk's data and its line end
                line = rfile.readline()
                try:
                    self.chunk_length = int(line.split(b";", 1)[0], 16)
                except ValueError as err:
                    raise eventlet.wsgi.ChunkReadError(err) from None
                self.position = 0
                if self.chunk_length == 0:
                    self._discard_trailers(rfile)
                continue
            got = rfile.readinto(view[filled : filled + min(left, len(view) - filled)])
            if not got:
                self.chunk_length = 0
                raise OSError("unexpected end of file while parsing chunked data")
            filled += got
            self.position += got
            if self.position == self.chunk_length:
                rfile.readline()  # the chunk's line end
        return filled
