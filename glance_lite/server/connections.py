"""The bound on the connections one serving process holds.

eventlet's server gives each connection a green thread from a pool and, when the pool
is full, stops accepting until a thread ends: a crowd of idle connections (2,050 did it
to two workers of 1,000) made every other client wait for as long as the idle ones
stayed. ConnectionPool keeps the bound and keeps answering: a new connection that finds
the pool full takes the place of the longest-open idle connection (one between requests,
or not yet sending one), which is shut down; when none is idle, the new one gets a 503 at
once and is closed.
"""

import contextlib
import socket

import eventlet
import eventlet.wsgi
from eventlet import greenio

BUSY_TEXT = b"The server is at its connection limit; try again shortly.\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BUSY_TEXT), BUSY_TEXT)
)
BUSY_LINGER = 1.0  # seconds a refused connection is read from before it is closed


class ConnectionPool(eventlet.GreenPool):
    """A GreenPool of at most `size` connection threads, as eventlet.wsgi.server spawns
    them (`spawn(process_request, [address, socket, state])`), that never blocks the
    accepting loop for long when full (see the module's docstring)."""

    def __init__(self, size: int):
        super().__init__(size)
        self.open: dict[int, list] = {}  # id -> eventlet's connection state, oldest first

    def spawn(self, function, connection, *args, **kwargs):
        if not self.free() and not self._close_oldest_idle():
            return eventlet.spawn(refuse_busy, connection[1])
        thread = super().spawn(function, connection, *args, **kwargs)
        key = id(connection)
        self.open[key] = connection
        thread.link(self._forget, key)
        return thread

    def _forget(self, _thread, key: int) -> None:
        self.open.pop(key, None)

    def _close_oldest_idle(self) -> bool:
        """Shut down the longest-open idle connection: its thread then sees the end of
        the stream, ends, and frees its place (spawn() waits for that). False when no
        connection is idle."""
        for key, connection in self.open.items():
            if connection[2] == eventlet.wsgi.STATE_IDLE and not _request_waiting(connection[1]):
                connection[2] = eventlet.wsgi.STATE_CLOSE  # no further request on it
                del self.open[key]
                greenio.shutdown_safe(connection[1])
                return True
        return False


def _request_waiting(sock) -> bool:
    """Whether bytes of a request have arrived on an idle connection that its thread has
    not read yet: closing it then would lose a request its client has sent (a kept-alive
    client such as glance-api's registry client)."""
    try:
        return bool(sock.fd.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False  # broken already: as good as idle


def refuse_busy(sock) -> None:
    """Answer 503 on a connection there is no room for, then close it gently."""
    with contextlib.suppress(OSError), eventlet.Timeout(BUSY_LINGER, False):
        sock.sendall(BUSY)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
