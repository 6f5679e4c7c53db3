"""Sending part of a file to a client's socket with os.sendfile(), reading ahead of it.

The bytes go from the page cache to the socket without passing through Python. An
image that is not in the page cache (uploads bypass it) is read from disk in windows
of READAHEAD bytes that the kernel is asked for ahead of the loop, instead of with the
kernel's own 128-256 KiB readahead inside sendfile().
"""

import os
import socket
from collections.abc import Callable

import eventlet
import eventlet.hubs

SENDFILE_YIELD_EVERY = 16 << 20  # bytes a sendfile loop sends before letting others run
READAHEAD = 8 << 20  # bytes a sendfile loop asks the kernel to read ahead at a time


def send(sock: socket.socket, filelike, count: int, on_sent: Callable[[int], None]) -> None:
    """Send `count` bytes of `filelike` from where it stands; `on_sent(n)` after each
    piece. A file shorter than `count` raises OSError: the connection must then end,
    as the client was promised more."""
    out_fd, in_fd = sock.fileno(), filelike.fileno()
    since_yield = 0
    ahead = ReadAhead(in_fd, count)
    while count > 0:
        try:
            sent = os.sendfile(out_fd, in_fd, None, ahead.sendable(count))
        except BlockingIOError:
            eventlet.hubs.trampoline(
                sock,
                write=True,
                timeout=sock.gettimeout(),
                timeout_exc=TimeoutError("timed out"),
            )
            continue
        if not sent:  # the file is shorter than the length announced
            raise OSError(f"file ended {count} bytes before its Content-Length")
        count -= sent
        ahead.moved(sent)
        on_sent(sent)
        since_yield += sent
        if since_yield >= SENDFILE_YIELD_EVERY:
            since_yield = 0
            eventlet.sleep(0)


class ReadAhead:
    """Keeps the kernel reading a file READAHEAD bytes at a time ahead of a sendfile()
    loop, and each sendfile() within what it was asked to read. A window whose last
    page is already cached is taken as read; a descriptor that is not a plain file is
    not asked for anything."""

    def __init__(self, fd: int, count: int):
        self.fd = fd
        try:
            self.position: int | None = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            self.position = None
        self.end = (self.position or 0) + count
        self.asked = self.position or 0  # asked to be read up to here
        self._probe = bytearray(1)

    def sendable(self, count: int) -> int:
        """How much of `count` the next sendfile() should send: at most up to where the
        reading was asked for, after asking for more when it is less than a window."""
        if self.position is None:
            return count
        while self.asked - self.position < READAHEAD and self.asked < self.end:
            if not self._cached(min(self.asked + READAHEAD, self.end) - 1):
                try:
                    os.posix_fadvise(self.fd, self.asked, READAHEAD, os.POSIX_FADV_WILLNEED)
                except OSError:
                    self.position = None  # not a file to read ahead in: stop asking
                    return count
            self.asked += READAHEAD
        return max(1, min(count, self.asked - self.position))

    def _cached(self, offset: int) -> bool:
        """Whether the page holding byte `offset` is in the page cache: a one-byte read
        that may not wait (1 us) spares a window already read its WILLNEED, which walks
        the window's pages even when all are cached (120 us for 8 MiB). Where the page
        is not cached, the probe may start the kernel's own readahead from it: harmless,
        as that window is asked for next anyway."""
        try:
            return os.preadv(self.fd, [self._probe], offset, os.RWF_NOWAIT) > 0
        except (OSError, AttributeError):  # not cached, or no RWF_NOWAIT for this file
            return False

    def moved(self, sent: int) -> None:
        if self.position is not None:
            self.position += sent
