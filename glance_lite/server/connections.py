"""The bound on the connections one serving process holds.

eventlet's server gives each connection a green thread from a pool and, when the pool
is full, stops accepting until a thread ends: a crowd of idle connections (2,050 did it
to two workers of 1,000) made every other client wait for as long as the idle ones
stayed. ConnectionPool keeps the bound and keeps answering: a new connection that finds
the pool full takes the place of the longest-open idle connection (one between requests,
or not yet sending one), which is shut down; when none is idle, the new one gets a 503 at
once and is closed. When the worker goes away, retire() lets each connection finish
what it holds (Protocol.retire()).
"""

import contextlib
import socket

import eventlet

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
            # [address, socket, state], and the Protocol once its thread has started
            if len(connection) > 3 and connection[3].close_if_idle():
                del self.open[key]
                return True
        return False

    def retire(self, wait: float) -> None:
        """The worker is going away (it accepts no more): each connection finishes the
        request it has, and at most one more (Protocol.retire()); those waiting for a
        request of which nothing has come are closed after `wait` seconds if none comes.
        A connection whose thread has not started yet starts as the server's protocol,
        which the caller has made the retiring one."""
        waiting = [
            connection[3]
            for connection in list(self.open.values())
            if len(connection) > 3 and connection[3].retire()
        ]
        if waiting:
            eventlet.spawn_after(wait, _close_idle, waiting)


def _close_idle(protocols) -> None:
    for protocol in protocols:
        protocol.close_if_idle()


def refuse_busy(sock) -> None:
    """Answer 503 on a connection there is no room for, then close it gently."""
    with contextlib.suppress(OSError), eventlet.Timeout(BUSY_LINGER, False):
        sock.sendall(BUSY)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
