"""The xattr cache index: each cached file carries its own entry in user extended
attributes (`user.hits`, `user.checksum`, `user.mtime`), as Glance's xattr driver keeps
its hits. The last access is the file's atime, which a hit sets; the file system must
support user xattrs, which configure() checks by writing one on a test file.
"""

from __future__ import annotations

import contextlib
import os
import time

from glance_lite import exceptions
from glance_lite.cache.base import CacheDriver, Entry, valid_id

HITS = "user.hits"
CHECKSUM = "user.checksum"
MTIME = "user.mtime"  # the published file's mtime (ns): what the hit path compares


class XattrDriver(CacheDriver):
    name = "xattr"

    def configure(self) -> None:
        probe = os.path.join(self.base_dir, "checkme")
        with open(probe, "w"):
            pass
        try:
            os.setxattr(probe, HITS, b"1")
        except OSError as err:
            raise exceptions.ConfigError(
                f"The xattr cache driver needs user extended attributes on {self.base_dir}: "
                f"{err.strerror}"
            ) from err
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)

    def entry(self, image_id: str) -> Entry | None:
        path = self.path(image_id)
        try:
            st = os.stat(path)
            mtime = int(os.getxattr(path, MTIME)) / 1e9
            hits = int(os.getxattr(path, HITS))
        except (OSError, ValueError):
            return None
        try:
            checksum = os.getxattr(path, CHECKSUM).decode() or None
        except OSError:
            checksum = None
        return Entry(image_id, st.st_size, hits, st.st_atime, mtime, checksum)

    def entries(self) -> list[Entry]:
        found = (self.entry(name) for name in sorted(self._cached_names()))
        return [e for e in found if e is not None]

    def _record(self, image_id: str, path: str, checksum: str | None) -> None:
        st = os.stat(path)
        os.setxattr(path, HITS, b"0")
        os.setxattr(path, CHECKSUM, (checksum or "").encode())
        os.setxattr(path, MTIME, str(st.st_mtime_ns).encode())

    def _forget(self, image_ids: list[str] | None) -> None:
        """The entry goes with its file."""

    def record_hit(self, image_id: str) -> None:
        if not valid_id(image_id):
            return
        path = self.path(image_id)
        try:
            hits = int(os.getxattr(path, HITS))
        except (OSError, ValueError):
            return
        os.setxattr(path, HITS, str(hits + 1).encode())
        st = os.stat(path)
        os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))  # atime: the last access
