"""The `file` store: one plain file per image, `<datadir>/<image_id>`.

An upload is written to a hidden temporary file in the same directory, synced, and only
then linked into place, so a reader never sees a partial image and a failed upload
leaves nothing behind. Blocking work (fsync, big writes) goes through an offload
(offload.py), which a server sets to its thread pool; this module never imports eventlet.

Uploads are written with O_DIRECT where the file system takes it: the bytes go from
our buffers to the disk without being copied into the page cache, which is where a
buffered upload spent the most time (more than on its md5), and an upload of many
gigabytes no longer pushes the images being served out of the cache. The first
download of a new image reads it from disk; the server reads ahead of sendfile().
"""

import collections
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import itertools
import logging
import mmap
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator

from oslo_config import cfg

from glance_lite import exceptions, opts
from glance_lite.offload import DIRECT, Offload
from glance_lite.store.base import (
    AddResult,
    BadStoreUri,
    Duplicate,
    ImageChunks,
    ShortData,
    StorageFull,
    StorageWriteDenied,
    Store,
    StoreNotFound,
    read_full,
    readinto_of,
)

LOG = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"  # an upload's file until it is complete: .<image id>.<16 hex>.tmp
_TEMP_NAME = re.compile(r"^\.[^/]+\.[0-9a-f]{16}\.tmp$")

# Bytes gathered from the incoming chunks before one write, and how many such buffers an
# upload fills in turn (one filling while the others are hashed and written).
WRITE_BUFFER = 4 * 1024 * 1024
BUFFERS = 2
# What O_DIRECT writes are aligned to (address, length, offset): the logical block size
# of any disk in use (512 or 4096 bytes). WRITE_BUFFER is a multiple of it.
DIRECT_ALIGN = 4096
SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>
MAX_ID_LENGTH = 200  # leaves room for the temporary name within NAME_MAX (255)

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# link() fails with these where the filesystem has no hard links; rename() instead.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


class FilesystemStore(Store):
    schemes = ("file", "filesystem")

    def __init__(
        self,
        datadir: str,
        chunk_size: int = 65536,
        *,
        file_perm: int = 0,
        offload: Offload = DIRECT,
    ):
        """`file_perm` is the mode given to new image files (e.g. 0o640); 0 keeps the
        default (0o666 less the umask)."""
        if chunk_size < 1:
            raise exceptions.ConfigError(f"filesystem store chunk size must be >= 1: {chunk_size}")
        if file_perm and not 0 < file_perm <= 0o7777:
            raise exceptions.ConfigError(f"Invalid file permission for images: {file_perm:o}")
        if file_perm and not file_perm & stat.S_IRUSR:
            raise exceptions.ConfigError(
                "Invalid 'filesystem_store_file_perm' option: image files would be "
                f"unreadable by glance itself ({file_perm:o})"
            )
        self._datadir = os.path.normpath(os.path.abspath(datadir))
        self._chunk_size = chunk_size
        self._file_perm = file_perm
        self._offload = offload
        self._start_after = offload.start_after

    def add(self, image_id: str, chunks: Iterable[bytes], size: int | None) -> AddResult:
        path = self._path_for(image_id)
        if os.path.lexists(path):
            raise Duplicate(image_id)
        tmp = os.path.join(self._datadir, f".{image_id}.{secrets.token_hex(8)}{TEMP_SUFFIX}")
        fd, nbytes, checksum = self._write_temp(tmp, chunks)
        try:
            self._publish(tmp, path, image_id)  # which removes the temporary name
        except BaseException:
            _remove_quietly(tmp)
            raise
        finally:
            _close_quietly(fd)  # only now: its lock told sweep_stale_temps() it is in use
        return AddResult(location=f"file://{path}", size=nbytes, checksum=checksum, metadata={})

    def get(
        self, location: str, offset: int = 0, chunk_size: int | None = None
    ) -> tuple[ImageChunks, int | None]:
        path = self._path_of(location)
        if offset < 0:
            raise exceptions.Invalid(f"Negative offset into image data: {offset}")
        fd, filesize = self._open_for_read(path, location)
        try:
            if offset:
                os.lseek(fd, offset, os.SEEK_SET)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except BaseException:
            os.close(fd)
            raise
        length = max(filesize - offset, 0)
        return _FileChunks(fd, chunk_size or self._chunk_size, length, location), length

    def delete(self, location: str) -> None:
        path = self._path_of(location)
        self._lstat_image(path, location)
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise StoreNotFound(location) from None
        except OSError as err:
            if err.errno in _DENIED:
                raise StorageWriteDenied() from err
            raise

    def get_size(self, location: str) -> int:
        return self._lstat_image(self._path_of(location), location).st_size

    def discard_partial(self, image_id: str, partial_location: str | None) -> None:
        # the upload's temporary file, if no process holds it any more
        sweep_stale_temps(self._datadir, image_id)

    # -- writing

    def _write_temp(self, tmp: str, chunks: Iterable[bytes]) -> tuple[int, int, str]:
        """Write `chunks` to the new file `tmp`, sync it; remove it if anything fails.
        The descriptor stays open, and the file locked, for the caller to close."""
        with _storage_errors():
            fd, direct = _create(tmp)
        try:
            nbytes, checksum = self._write(fd, chunks, direct)
            with _storage_errors():
                if self._file_perm:
                    os.fchmod(fd, self._file_perm)
                self._offload(os.fsync, fd)
        except BaseException:
            _close_quietly(fd)
            _remove_quietly(tmp)
            raise
        return fd, nbytes, checksum

    def _write(self, fd: int, chunks: Iterable[bytes], direct: bool) -> tuple[int, str]:
        """Hash, count and write the chunks through BUFFERS page-aligned buffers.

        One buffer fills (see _filled) while the full ones are hashed and written in the
        background, each in order after the one before (two chains of jobs that release
        the GIL, on the offload's threads). With `direct` (O_DIRECT) the last write is
        padded to a whole block and the file cut back to its size. Errors raised by
        `chunks` itself pass through.
        """
        md5 = hashlib.md5(usedforsecurity=False)
        buffers = [mmap.mmap(-1, WRITE_BUFFER) for _ in range(BUFFERS)]
        written = 0  # bytes handed to writes already started
        in_flight: collections.deque[tuple] = collections.deque()  # oldest first
        try:
            for buf, nbytes in _filled(buffers, chunks):
                self._start_block(in_flight, fd, md5, buf, nbytes, written, direct)
                written += nbytes
                if len(in_flight) == BUFFERS:  # the next buffer is still in use
                    _finish(in_flight.popleft())
            while in_flight:
                _finish(in_flight.popleft())
            if direct and written % DIRECT_ALIGN:
                with _storage_errors():
                    os.ftruncate(fd, written)
        except BaseException:
            while in_flight:
                _abandon(in_flight.popleft())
            raise
        finally:
            for buf in buffers:
                # a failed job's traceback may still hold a view of it: then it goes
                # when that does
                with contextlib.suppress(BufferError):
                    buf.close()
        return written, md5.hexdigest()

    def _start_block(
        self,
        in_flight: collections.deque,
        fd: int,
        md5,
        buf: mmap.mmap,
        nbytes: int,
        offset: int,
        direct: bool,
    ) -> None:
        """Queue the hash and the write of one full buffer, each after its predecessor."""
        hashed, wrote = in_flight[-1] if in_flight else (None, None)
        in_flight.append(
            (
                self._start_after(hashed, _hash_block, md5, buf, nbytes),
                self._start_after(wrote, _write_block, fd, buf, nbytes, offset, direct),
            )
        )

    def _publish(self, tmp: str, path: str, image_id: str) -> None:
        """Give the synced temporary file its final name, durably; never overwrite."""
        with _storage_errors():
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise Duplicate(image_id) from None
            except OSError as err:
                if err.errno not in _NO_HARD_LINKS:
                    raise
                if os.path.lexists(path):
                    raise Duplicate(image_id) from None
                os.rename(tmp, path)
            _remove_quietly(tmp)
            try:
                self._offload(_fsync_dir, self._datadir)
            except BaseException:
                _remove_quietly(path)
                raise

    # -- locations

    def _path_for(self, image_id: str) -> str:
        if not _is_image_name(image_id):
            raise exceptions.Invalid(f"Invalid image id for the file store: {image_id!r}")
        return os.path.join(self._datadir, image_id)

    def _path_of(self, location: str) -> str:
        """The image file a location names: strictly `file://<datadir>/<image_id>`."""
        scheme, sep, path = location.partition("://")
        if not sep or scheme.lower() not in self.schemes:
            raise BadStoreUri(f"not a file store location: {location!r}")
        if not path.startswith("/"):
            raise BadStoreUri(f"the path of {location!r} is not absolute")
        parent, name = os.path.split(path)
        if os.path.normpath(path) != path or parent != self._datadir or not _is_image_name(name):
            raise BadStoreUri(f"{location!r} is not an image file of this store")
        return path

    def _open_for_read(self, path: str, location: str) -> tuple[int, int]:
        """The open image file and its size."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StoreNotFound(location) from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise BadStoreUri(f"{location!r} is a symbolic link") from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise BadStoreUri(f"{location!r} is not a regular file")
        return fd, st.st_size

    def _lstat_image(self, path: str, location: str) -> os.stat_result:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise StoreNotFound(location) from None
        if not stat.S_ISREG(st.st_mode):
            raise BadStoreUri(f"{location!r} is not a regular file")
        return st


class _FileChunks(ImageChunks):
    """The image file in `chunk_size` pieces; closes its descriptor at the end or on close().
    Also a file to the server: read(n) and fileno() let it send the rest with sendfile().

    It gives exactly the `length` bytes the file held when it was opened: a file that
    grew meanwhile is cut there, and one that shrank raises ShortData instead of ending
    early, so that a server stops with a broken connection rather than a clean short
    body. The count costs no system call."""

    def __init__(self, fd: int, chunk_size: int, length: int, location: str):
        self._fd: int | None = fd
        self._chunk_size = chunk_size
        self._left = length
        self._location = location

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = self.read(self._chunk_size)
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def read(self, size: int) -> bytes:
        if self._fd is None or not self._left:
            return b""
        try:
            chunk = os.read(self._fd, min(size, self._left))
            if not chunk:
                err = ShortData(self._location, self._left)
                LOG.error("%s: the reader stops short", err)  # the server ends the response
                raise err
        except BaseException:
            self.close()
            raise
        self._left -= len(chunk)
        return chunk

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the image file is closed")
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def sweep_stale_temps(datadir: str, image_id: str | None = None) -> list[str]:
    """Remove the temporary files of uploads that no process is writing any more (an api
    killed mid-upload leaves one): an upload holds an flock on its temporary file until
    the file has its final name, so one that can be locked here is abandoned. Run when
    the file store starts, and for one image (`image_id`) when its upload lease expired;
    the names removed are returned (and logged)."""
    removed = []
    try:
        names = os.listdir(datadir)
    except OSError:
        return removed
    prefix = "." if image_id is None else f".{image_id}."
    for name in names:
        if not name.startswith(prefix) or not _TEMP_NAME.match(name):
            continue
        path = os.path.join(datadir, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # an upload in progress
        else:
            _remove_quietly(path)
            removed.append(name)
            LOG.warning("Removed %s, the temporary file of an upload that was interrupted", path)
        finally:
            os.close(fd)
    return removed


def prepare_datadir(datadir: str, file_perm: int = 0) -> None:
    """Create the data directory if missing and check it is usable (run at start-up).

    When image files are to be readable by group or others (`file_perm`), the directory
    gets the matching search (x) bits, as Glance does.
    """
    try:
        os.makedirs(datadir, exist_ok=True)
    except OSError as err:
        raise exceptions.ConfigError(
            f"Unable to create filesystem_store_datadir {datadir}: {err.strerror}"
        ) from err
    if not os.access(datadir, os.W_OK | os.X_OK):
        raise exceptions.ConfigError(f"Permission to write in {datadir} denied")
    mode = os.stat(datadir).st_mode
    extra = (stat.S_IXOTH if file_perm & stat.S_IRWXO else 0) | (
        stat.S_IXGRP if file_perm & stat.S_IRWXG else 0
    )
    if extra & ~mode:
        try:
            os.chmod(datadir, stat.S_IMODE(mode) | extra)
        except OSError as err:
            LOG.warning("Unable to give group/others search permission on %s: %s", datadir, err)


def _is_image_name(name: str) -> bool:
    return (
        0 < len(name) <= MAX_ID_LENGTH
        and not name.startswith(".")
        and "/" not in name
        and "\0" not in name
    )


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn a full or read-only medium into the store errors the api maps to HTTP."""
    try:
        yield
    except OSError as err:
        if err.errno in _FULL:
            raise StorageFull() from err
        if err.errno in _DENIED:
            raise StorageWriteDenied() from err
        raise


def _finish(jobs: tuple) -> None:
    """Wait for every job, then raise the first one's error (a full or read-only medium
    as its store error): no job is still using a buffer when this returns or raises."""
    errors = []
    for job in jobs:
        try:
            job.wait()
        except BaseException as err:
            errors.append(err)
    if errors:
        with _storage_errors():
            raise errors[0]


def _abandon(jobs: tuple) -> None:
    """Wait for jobs whose results no longer matter (the file is about to go)."""
    for job in jobs:
        with contextlib.suppress(BaseException):
            job.wait()


# Tries at creating an upload's temporary file that a sweep removes as it is created.
CREATE_TRIES = 5


def _create(path: str) -> tuple[int, bool]:
    """The new file `path` open for writing and locked (flock) while it is, and whether
    with O_DIRECT (not every file system takes it: tmpfs did not before Linux 6.6).

    Between the file's creation and its lock, sweep_stale_temps() in another process
    (a worker starting, as on every reload) can take it for abandoned: it locks it,
    removes it, and unlocks it. So the lock here waits for a sweep that holds it, and
    a file that lost its name meanwhile is created again: an upload never writes to a
    file that is gone."""
    for _ in range(CREATE_TRIES):
        fd, direct = _create_locked(path)
        if os.fstat(fd).st_nlink:
            return fd, direct
        os.close(fd)  # swept as it was created
    raise FileNotFoundError(errno.ENOENT, "removed each time it was created", path)


def _create_locked(path: str) -> tuple[int, bool]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    direct = getattr(os, "O_DIRECT", 0)
    fd = None
    if direct:
        try:
            fd = os.open(path, flags | direct, 0o666)
            opened_direct = True
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            _remove_quietly(path)  # the refusal may come after the file was created
    if fd is None:
        fd = os.open(path, flags, 0o666)
        opened_direct = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # only a sweep can hold it, for an instant
    except OSError:
        os.close(fd)
        _remove_quietly(path)
        raise
    return fd, opened_direct


def _filled(buffers: list[mmap.mmap], chunks: Iterable[bytes]) -> Iterator[tuple[mmap.mmap, int]]:
    """`buffers` in turn, each filled from `chunks`, as (buffer, bytes in it): full but
    for the last. The caller takes each back before the one after it is filled again.

    With readinto (an upload's request body) the bytes go from the socket straight into
    the buffer; iterated chunks are copied in.
    """
    readinto = readinto_of(chunks)
    for buf in itertools.cycle(buffers):
        filled = read_full(readinto, buf)
        if filled:
            yield buf, filled
        if filled < WRITE_BUFFER:
            return


def _hash_block(md5, buf: mmap.mmap, nbytes: int) -> None:
    with memoryview(buf) as view:
        md5.update(view[:nbytes])


def _write_block(fd: int, buf: mmap.mmap, nbytes: int, offset: int, direct: bool) -> None:
    """Write buf[:nbytes] at `offset`: with O_DIRECT in whole blocks (the caller cuts
    the file back to size), else as it is, then start its writeback."""
    length = -(-nbytes // DIRECT_ALIGN) * DIRECT_ALIGN if direct else nbytes
    with memoryview(buf) as view:
        done = 0
        while done < length:  # a short write: finish it
            try:
                done += os.pwrite(fd, view[done:length], offset + done)
            except OSError as err:
                if err.errno != errno.EINVAL or not _drop_direct(fd):
                    raise
                # a file system that took O_DIRECT at open but not these writes (other
                # alignment rules): the rest of the upload goes through the page cache
    if not direct:
        _write_behind(fd, offset, nbytes)


def _drop_direct(fd: int) -> bool:
    """Turn O_DIRECT off on `fd`; False when it was not on (nothing left to try)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not flags & getattr(os, "O_DIRECT", 0):
        return False
    LOG.warning("O_DIRECT writes refused by the file system: writing through the page cache")
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
    return True


def _load_sync_file_range() -> Callable[[int, int, int], int] | None:
    """Linux's sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE), or None."""
    try:
        # the interpreter's own symbols (libc among them): no library search at import
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return lambda fd, offset, nbytes: call(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)


# Starts writeback of pages just written, without waiting for it: the fsync that ends an
# upload then finds little left to write, instead of writing the whole image to disk
# while nothing else overlaps. Only a head start: the fsync still makes the file durable.
_start_writeback = _load_sync_file_range()


def _write_behind(fd: int, offset: int, nbytes: int) -> None:
    if _start_writeback is not None and _start_writeback(fd, offset, nbytes) != 0:
        # a file system that refuses it (or a platform without it): sync at the end only
        LOG.debug("sync_file_range: errno %d", ctypes.get_errno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        LOG.warning("Could not remove %s: %s", path, err)


def from_conf(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> FilesystemStore:
    """The file store of `[glance_store]` (the entry point `file`), its directory ready."""
    opts.register_store_opts(conf)
    group = conf[opts.STORE_GROUP]
    datadir = group.filesystem_store_datadir
    if not datadir:
        raise exceptions.ConfigError("[glance_store] filesystem_store_datadir is empty")
    file_perm = _octal_perm(group.filesystem_store_file_perm)
    store = FilesystemStore(
        datadir, group.filesystem_store_chunk_size, file_perm=file_perm, offload=offload
    )
    prepare_datadir(datadir, file_perm)
    sweep_stale_temps(datadir)  # uploads a killed api left behind
    return store


def _octal_perm(value: int) -> int:
    """Glance reads filesystem_store_file_perm's decimal digits as octal: 640 -> 0o640."""
    if value <= 0:
        return 0
    try:
        return int(str(value), 8)
    except ValueError:
        raise exceptions.ConfigError(
            f"[glance_store] filesystem_store_file_perm must be octal digits: {value}"
        ) from None
