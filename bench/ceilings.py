"""Ceilings measured in the bench process itself: md5 in Python and disk writes.

A v1 upload must md5 every byte in Python, so reading the same file (from the page cache,
as an upload reads its socket) and hashing it is the fastest an upload can go. The disk
figure writes and fsyncs a file of the given size, as the store does before it answers.
"""

import hashlib
import os
import time
from pathlib import Path

CHUNK = 1 << 20
MIB = 1 << 20


def md5_file(path: Path) -> tuple[float, str]:
    """MiB/s of reading and hashing `path` in one Python thread, and the hex digest."""
    md5 = hashlib.md5(usedforsecurity=False)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            md5.update(view[:n])
            size += n
    seconds = time.perf_counter() - started
    return size / MIB / seconds, md5.hexdigest()


def fsync_write(path: Path, size: int) -> float:
    """MiB/s of writing `size` fresh bytes to a new file and fsyncing it; the file is removed."""
    block = os.urandom(CHUNK)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < size:
            written += os.write(fd, block[: min(CHUNK, size - written)])
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    path.unlink()
    return size / MIB / seconds


def make_image_file(path: Path, size: int) -> None:
    """`size` random bytes (incompressible), written once and left in the page cache."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(4 * CHUNK, left)
            f.write(os.urandom(n))
            left -= n


def into_page_cache(path: Path) -> None:
    """Read `path` once, untimed, so that every system downloads it from the page cache
    (an upload with O_DIRECT leaves it on disk only)."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def out_of_page_cache(path: Path) -> None:
    """Drop `path`'s pages from the page cache (they are clean: nothing to write back)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
