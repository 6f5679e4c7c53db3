"""The image cache of one api node: its directory and what every index driver shares.

Layout (docs/cache.md):

    <image_cache_dir>/<image_id>             a complete, verified image
    <image_cache_dir>/incomplete/<image_id>  being written by one fill (flock held)
    <image_cache_dir>/invalid/<image_id>     data whose checksum was wrong (kept to look at)
    <image_cache_dir>/queue/<image_id>       empty marker: queued for the prefetcher

A file reaches the root only by a rename, after the whole image arrived with its
checksum, so a reader never sees a partial one. The index (a driver: sqlite.py or
xattr.py) records each entry's size, checksum, modification time, hits and last
access; a cached file whose size or modification time differs from its entry (cut,
rewritten) is removed instead of served.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import logging
import os
import re
import stat
import time

from glance_lite import exceptions
from glance_lite.offload import DIRECT, Offload

LOG = logging.getLogger(__name__)

INCOMPLETE = "incomplete"
INVALID = "invalid"
QUEUE = "queue"
SUBDIRS = (INCOMPLETE, INVALID, QUEUE)
# What may name a cache file: the image ids glance-lite makes (UUIDs) and any other id
# that is a plain file name.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class NotCached(exceptions.NotFound):
    def __init__(self, image_id: str, what: str = "cached"):
        super().__init__(f"Image {image_id} is not {what} on this node.")


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the index knows of a cached image."""

    image_id: str
    size: int
    hits: int
    last_accessed: float
    last_modified: float
    checksum: str | None = None


def valid_id(image_id: str) -> bool:
    return bool(_ID.match(image_id)) and image_id not in (".", "..")


class CacheDriver(abc.ABC):
    """One node's cache directory and index. Subclasses keep the index."""

    name = ""

    def __init__(self, base_dir: str, *, max_size: int, stall_time: int):
        self.base_dir = os.path.abspath(base_dir)
        self.max_size = max_size
        self.stall_time = stall_time

    # --- set-up ----------------------------------------------------------------------

    def prepare(self) -> bool:
        """Create the directories and the index; False (logged) when the directory
        cannot be used: the api then serves every image from its store."""
        try:
            for sub in ("", *SUBDIRS):
                os.makedirs(os.path.join(self.base_dir, sub), exist_ok=True)
            if not os.access(self.base_dir, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable", self.base_dir)
            self.configure()
        except OSError as err:
            LOG.warning(
                "Image cache directory %s cannot be used (%s): images are served from "
                "their stores until it can",
                self.base_dir,
                err,
            )
            return False
        return True

    def configure(self) -> None:
        """Driver-specific set-up (raise OSError or ConfigError when it cannot work)."""
        return None

    # --- paths -----------------------------------------------------------------------

    def path(self, image_id: str, where: str = "") -> str:
        if not valid_id(image_id):
            raise exceptions.Invalid(f"Invalid image id for the image cache: {image_id!r}")
        return os.path.join(self.base_dir, where, image_id)

    def is_cached(self, image_id: str) -> bool:
        return valid_id(image_id) and os.path.isfile(self.path(image_id))

    def is_being_cached(self, image_id: str) -> bool:
        return valid_id(image_id) and os.path.exists(self.path(image_id, INCOMPLETE))

    def drop_incomplete(self, image_id: str) -> bool:
        """Remove the file a fill of the image is writing, if there is one (whatever
        process writes it): True when one was removed."""
        return valid_id(image_id) and _remove(self.path(image_id, INCOMPLETE))

    def is_queued(self, image_id: str) -> bool:
        return valid_id(image_id) and os.path.exists(self.path(image_id, QUEUE))

    # --- the index (drivers) -----------------------------------------------------------

    @abc.abstractmethod
    def entry(self, image_id: str) -> Entry | None:
        """The index's entry of a cached image, or None."""

    @abc.abstractmethod
    def entries(self) -> list[Entry]:
        """Every entry, ordered by image id."""

    @abc.abstractmethod
    def _record(self, image_id: str, path: str, checksum: str | None) -> None:
        """Index the file just published at `path` (hits 0, accessed and modified now)."""

    @abc.abstractmethod
    def _forget(self, image_ids: list[str] | None) -> None:
        """Drop the entries of these images (None: all) from the index."""

    @abc.abstractmethod
    def record_hit(self, image_id: str) -> None:
        """One more complete read of the cached image, accessed now."""

    def least_recently_used(self) -> list[Entry]:
        """The entries, least recently accessed first."""
        return sorted(self.entries(), key=lambda e: (e.last_accessed, e.image_id))

    # --- reading -------------------------------------------------------------------

    def open_cached(
        self, image_id: str, size: int, checksum: str | None, offload: Offload = DIRECT
    ) -> CachedFile | None:
        """The cached copy of an image of `size` bytes (and `checksum`), open for
        reading, or None. A copy that is not what its entry or the image says (cut,
        rewritten, another image's data) is removed and None returned. Its hit is
        counted, once it was read to its end, by a job of `offload` (an index write
        must not hold up the server)."""
        try:
            fd = os.open(self.path(image_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (OSError, exceptions.Invalid):
            return None
        try:
            problem = _mismatch(os.fstat(fd), self.entry(image_id), size, checksum)
        except Exception as err:  # an index that cannot be read: served from the store
            os.close(fd)
            LOG.warning("Cached image %s not used: %s", image_id, err)
            return None
        if problem is None:
            return CachedFile(
                fd, size, lambda: offload.start_after(None, self._hit_quietly, image_id)
            )
        os.close(fd)
        LOG.warning("Cached image %s removed: %s", image_id, problem)
        self.delete_cached_image(image_id, missing_ok=True)
        return None

    def _hit_quietly(self, image_id: str) -> None:
        try:
            self.record_hit(image_id)
        except Exception as err:  # a busy index must not fail a download
            LOG.warning("Hit of cached image %s not counted: %s", image_id, err)

    # --- writing -------------------------------------------------------------------

    def open_fill(self, image_id: str) -> Fill | None:
        """A new incomplete file for the image, or None when it is cached already, is
        being written by another fill (of any process), or cannot be written (logged)."""
        if not valid_id(image_id) or self.is_cached(image_id):
            return None
        path = self.path(image_id, INCOMPLETE)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                if not self._take_over(path):
                    return None
                continue
            except OSError as err:
                LOG.warning("Image %s not cached: %s", image_id, err)
                return None
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else holds it
            return Fill(self, image_id, fd, path)
        return None

    def _take_over(self, path: str) -> bool:
        """Remove an incomplete file nobody writes any more (its fill died): True when
        it was removed, False when a live fill holds it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        else:
            _remove(path)
            return True
        finally:
            os.close(fd)

    def publish(self, fill: Fill, checksum: str | None) -> None:
        """Make a complete fill the cached copy and index it; dequeue the image."""
        image_id = fill.image_id
        final = self.path(image_id)
        os.rename(fill.path, final)
        try:
            self._record(image_id, final, checksum)
        except BaseException:
            _remove(final)
            raise
        _remove(self.path(image_id, QUEUE))

    def reject(self, fill: Fill) -> None:
        """Keep the data of a fill whose checksum was wrong in invalid/."""
        with contextlib.suppress(OSError):
            os.rename(fill.path, self.path(fill.image_id, INVALID))

    # --- management ----------------------------------------------------------------

    def delete_cached_image(self, image_id: str, *, missing_ok: bool = False) -> None:
        path = self.path(image_id)
        self._forget([image_id])
        try:
            os.unlink(path)
        except FileNotFoundError:
            if not missing_ok:
                raise NotCached(image_id) from None

    def delete_all_cached_images(self) -> int:
        removed = 0
        for name in self._cached_names():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.base_dir, name))
                removed += 1
        self._forget(None)
        return removed

    def get_cache_size(self) -> int:
        total = 0
        for name in self._cached_names():
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(self.base_dir, name)).st_size
        return total

    def _cached_names(self) -> list[str]:
        """The cached images' files: the regular files of the root but the index's."""
        try:
            names = os.listdir(self.base_dir)
        except FileNotFoundError:
            return []
        return [
            n
            for n in names
            if valid_id(n)
            and n not in self.own_files()
            and os.path.isfile(os.path.join(self.base_dir, n))
        ]

    def own_files(self) -> frozenset[str]:
        """Files of the root that belong to the driver, not to an image."""
        return frozenset()

    def queue_image(self, image_id: str) -> bool:
        """Queue the image for the prefetcher; False (nothing done) when it is cached,
        being cached or queued already."""
        if self.is_cached(image_id) or self.is_being_cached(image_id) or self.is_queued(image_id):
            return False
        with open(self.path(image_id, QUEUE), "w"):
            pass
        return True

    def get_queued_images(self) -> list[str]:
        """The queued image ids, the oldest first."""
        queue = os.path.join(self.base_dir, QUEUE)
        found = []
        for name in _listdir(queue):
            with contextlib.suppress(FileNotFoundError):
                found.append((os.stat(os.path.join(queue, name)).st_mtime, name))
        return [name for _, name in sorted(found)]

    def delete_queued_image(self, image_id: str) -> None:
        try:
            os.unlink(self.path(image_id, QUEUE))
        except FileNotFoundError:
            raise NotCached(image_id, "queued") from None

    def delete_all_queued_images(self) -> int:
        removed = 0
        queue = os.path.join(self.base_dir, QUEUE)
        for name in _listdir(queue):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(queue, name))
                removed += 1
        return removed

    # --- the pruner and the cleaner ------------------------------------------------

    def prune(self) -> tuple[int, int]:
        """Remove the least recently used images until the cache holds no more than
        max_size bytes: (files, bytes) removed."""
        current = self.get_cache_size()
        files = removed = 0
        if current <= self.max_size:
            return 0, 0
        indexed = {e.image_id for e in self.entries()}
        # files the index does not know (left by a crash) go first
        victims = [n for n in self._cached_names() if n not in indexed]
        victims += [e.image_id for e in self.least_recently_used()]
        for image_id in victims:
            if current <= self.max_size:
                break
            try:
                size = os.stat(self.path(image_id)).st_size
            except FileNotFoundError:
                self._forget([image_id])
                continue
            self.delete_cached_image(image_id, missing_ok=True)
            LOG.info("Pruned image %s (%d bytes) from the cache", image_id, size)
            current -= size
            files += 1
            removed += size
        return files, removed

    def clean(self, stall_time: int | None = None) -> tuple[int, int]:
        """Remove every file of invalid/ and the incomplete files that no fill writes
        and that are older than `stall_time` (default: the configured one) seconds:
        (invalid, stalled) counts."""
        stall = self.stall_time if stall_time is None else stall_time
        invalid = stalled = 0
        for name in _listdir(os.path.join(self.base_dir, INVALID)):
            if _remove(os.path.join(self.base_dir, INVALID, name)):
                invalid += 1
        now = time.time()
        for name in _listdir(os.path.join(self.base_dir, INCOMPLETE)):
            path = os.path.join(self.base_dir, INCOMPLETE, name)
            try:
                if now - os.stat(path).st_mtime < stall:
                    continue
            except FileNotFoundError:
                continue
            if self._take_over(path):
                LOG.info("Removed stalled incomplete cache file %s", path)
                stalled += 1
        return invalid, stalled


def _mismatch(st: os.stat_result, entry: Entry | None, size: int, checksum: str | None):
    """Why a cached file may not be served as the image, or None."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if entry is None:
        return "not in the cache index"
    if st.st_size != size or entry.size != size:
        return f"it holds {st.st_size} bytes, the image's size is {size}"
    if checksum and entry.checksum and checksum != entry.checksum:
        return "the image's data changed since it was cached"
    if abs(st.st_mtime - entry.last_modified) > 1e-6:
        return "the file was modified after it was cached"
    return None


class CachedFile:
    """A cached image open for reading: read(n) and fileno() for the server (which
    sends it with sendfile()); close() counts a hit when all of it was sent."""

    def __init__(self, fd: int, size: int, on_complete):
        self._fd: int | None = fd
        self.size = size
        self._on_complete = on_complete

    def read(self, n: int) -> bytes:
        if self._fd is None:
            return b""
        return os.read(self._fd, n)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the cached image is closed")
        return self._fd

    def __iter__(self):
        while chunk := self.read(1 << 20):
            yield chunk

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            complete = os.lseek(fd, 0, os.SEEK_CUR) >= self.size
        finally:
            os.close(fd)
        if complete:
            self._on_complete()


class Fill:
    """An incomplete cache file being written: write(), then complete() or abandon()."""

    def __init__(self, driver: CacheDriver, image_id: str, fd: int, path: str):
        self.driver = driver
        self.image_id = image_id
        self.fd: int | None = fd
        self.path = path
        self.written = 0

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.written += len(chunk)

    def copy(self, source_fd: int, size: int) -> None:
        """Copy the first `size` bytes of the file `source_fd` into the fill, by the
        kernel: copy_file_range() (sendfile() where it cannot: another file system on an
        older kernel), page cache to page cache, nothing through Python. Neither
        descriptor's position moves. Raises OSError (a full disk, a file that ended
        before `size`)."""
        while self.written < size:
            copied = _kernel_copy(source_fd, self.fd, self.written, size - self.written)
            if not copied:
                raise OSError(f"the image's file ended after {self.written} of {size} bytes")
            self.written += copied

    def complete(self, checksum: str | None) -> bool:
        """The whole image was written: publish it if its md5 is `checksum` (read back
        from the file: the page cache holds it), else move it to invalid/. Anything
        that fails removes it. True when published. Meant to run off the client's
        path (on the offload's threads), so it never raises."""
        try:
            actual = _md5_of(self.fd) if checksum else None
            if actual is not None and actual != checksum:
                LOG.error(
                    "Image %s: its data's checksum is %s, the image's %s: not cached",
                    self.image_id,
                    actual,
                    checksum,
                )
                self.driver.reject(self)
                self.abandon()
                return False
            self.driver.publish(self, checksum)
        except Exception as err:
            LOG.warning("Image %s not cached: %s", self.image_id, err)
            self.abandon()
            return False
        fd, self.fd = self.fd, None
        os.close(fd)  # the lock goes with it, after the rename
        LOG.info("Image %s cached (%d bytes)", self.image_id, self.written)
        return True

    def abandon(self) -> None:
        """Remove the incomplete file (nothing of it is kept)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            _remove(self.path)
            os.close(fd)  # after the unlink: the lock told others it was in use


# errnos of a copy_file_range() that this pair of files (or this kernel) does not allow
NO_COPY_RANGE = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


def _kernel_copy(src: int, dst: int, offset: int, count: int) -> int:
    """Copy up to `count` bytes at `offset` of `src` to the same offset of `dst`."""
    try:
        return os.copy_file_range(src, dst, count, offset, offset)
    except OSError as err:
        if err.errno not in NO_COPY_RANGE:
            raise
    # sendfile() writes where dst's position is: move it there (the fill's own descriptor)
    os.lseek(dst, offset, os.SEEK_SET)
    return os.sendfile(dst, src, offset, count)


def _md5_of(fd: int) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    offset = 0
    while piece := os.pread(fd, 1 << 20, offset):
        md5.update(piece)
        offset += len(piece)
    return md5.hexdigest()


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as err:
        LOG.warning("Could not remove %s: %s", path, err)
        return False
