"""The paste filter `cache`: downloads served from the node's image cache.

The filter does not answer requests itself. On `GET /v1/images/<id>` (without a Range)
it hands the v1 app an ImageCache, which the download consults once the image's
metadata was read from the registry as the caller and every check passed (get_image,
status, property protections): the cache never widens who may read an image, and a hit
answers exactly what a miss answers. Then:

- a hit (the cached copy is the image's size, its checksum, untouched since written)
  is checked against `download_image` and goes out like a store file, by sendfile();
  the hit is counted off the request's path;
- a miss of a file-store image goes out as without a cache, by sendfile(), and the
  kernel copies the same open file into `incomplete/<id>` once the client has it all
  (FileTee); a miss of another store's image streams to the client and into
  `incomplete/<id>` at the same time (Tee). Only the whole image with the right md5
  (checked once the client has it all, off its path) is renamed into the cache. A
  client that stops reading, a store that fails, a full disk: the incomplete file
  goes, and the client's download goes on (or ends) as without a cache. One fill per
  image at a time across the node's processes; the other downloads stream from the
  store.

After the app answered, a successful DELETE of the image, a PUT that may change its data
(a body, or a size, checksum or location header), and a GET that found no such image
drop the cached copy.
"""

from __future__ import annotations

import logging
import os
import re

from glance_lite import config, offload
from glance_lite.api.images import IMAGE_CACHE
from glance_lite.cache import driver_from_conf
from glance_lite.cache.base import CacheDriver, Fill
from glance_lite.offload import DIRECT, Offload

LOG = logging.getLogger(__name__)

IMAGE_PATH = re.compile(r"^/v1/images/(?P<image_id>[^/]+)/?$")
# Request headers of a PUT that may change what an image's data is.
DATA_HEADERS = (
    "HTTP_X_IMAGE_META_SIZE",
    "HTTP_X_IMAGE_META_CHECKSUM",
    "HTTP_X_IMAGE_META_LOCATION",
    "HTTP_X_GLANCE_API_COPY_FROM",
)


class ImageCache:
    """What the v1 app's download asks: serve from the cache, or fill it."""

    def __init__(self, driver: CacheDriver, offload: Offload = DIRECT):
        self.driver = driver
        self.offload = offload

    def download(self, repo, image: dict):
        """(chunks, size) of an active image for the caller of `repo` (PolicyLayer)."""
        size = image.get("size")
        if not size:
            return repo.download(image)
        repo.check_download(image)
        hit = self.driver.open_cached(image["id"], size, image.get("checksum"), self.offload)
        if hit is not None:
            return hit, size
        chunks, size = repo.download(image)
        fill = self.driver.open_fill(image["id"])
        if fill is None:
            return chunks, size
        if hasattr(chunks, "fileno"):  # a local file (the file store)
            return FileTee(chunks, fill, size, image.get("checksum"), self.offload), size
        return Tee(chunks, fill, size, image.get("checksum"), self.offload), size

    def drop(self, image_id: str) -> None:
        """Forget the cached copy of an image, if there is one, and the copy a fill (of
        any process) may still be writing: its publication then finds no file and the
        fill ends as abandoned. The incomplete file goes first, so that a fill
        published meanwhile is caught by the removal of the cached copy."""
        if self.driver.drop_incomplete(image_id):
            LOG.info("Image %s: the cache fill under way was dropped", image_id)
        if self.driver.is_cached(image_id):
            try:
                self.driver.delete_cached_image(image_id, missing_ok=True)
                LOG.info("Image %s removed from the cache", image_id)
            except Exception as err:
                LOG.warning("Image %s could not be removed from the cache: %s", image_id, err)


class Filling:
    """An image's data on its way to a client, filling the cache with it."""

    def __init__(
        self, chunks, fill: Fill, size: int, checksum: str | None, offload: Offload = DIRECT
    ):
        self.chunks = chunks
        self.fill: Fill | None = fill
        self.size = size
        self.checksum = checksum
        self.offload = offload


class Tee(Filling):
    """The store's chunks, passed on to the client and written into a fill.

    Writing a chunk is a copy into the page cache; the md5 that decides whether the
    copy is published is computed once the last byte is written, by a job on the
    offload's threads that reads the file back, so the client's download does not wait
    for it (an md5 runs at a third of a sendfile()'s speed here) and nothing is held in
    memory meanwhile. The fill is abandoned (its file removed) when anything goes wrong
    with it, while the client keeps getting the data, and when the client stops
    reading, by close()."""

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self.chunks)
        except BaseException:
            self._abandon()
            raise
        if self.fill is not None:
            self._keep(chunk)
        return chunk

    def _keep(self, chunk: bytes) -> None:
        fill = self.fill
        try:
            fill.write(chunk)
        except Exception as err:
            LOG.warning("Image %s not cached: %s", fill.image_id, err)
            self._abandon()
            return
        if fill.written >= self.size:
            self.fill = None
            if fill.written == self.size:
                self.offload.start_after(None, fill.complete, self.checksum)
            else:
                LOG.error("Image %s: the store gave more than its size", fill.image_id)
                fill.abandon()

    def _abandon(self) -> None:
        fill, self.fill = self.fill, None
        if fill is not None:
            fill.abandon()

    def close(self) -> None:
        self._abandon()
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


class FileTee(Filling):
    """A store's local file (read(n), fileno()) passed on to the client untouched, so
    that the server sends it by sendfile() as without a cache, and copied into a fill
    once the client has had all of it.

    The copy is the kernel's (Fill.copy: page cache to page cache, no byte through
    Python, no buffer), from a duplicate of the file's descriptor: the very file the
    client got, whatever becomes of its name meanwhile. It runs with the md5 check and
    the publication (Fill.complete) as one job on the offload's threads, after the last
    byte went out: the client's download costs what an uncached one costs. close()
    before the end (a client that stops reading, a file that shrank) abandons the fill.
    The duplicate shares the file's position, which tells how far the client got."""

    def __init__(self, chunks, *args, **kwargs):
        super().__init__(chunks, *args, **kwargs)
        self._fd: int | None = os.dup(chunks.fileno())

    def read(self, n: int) -> bytes:
        return self.chunks.read(n)

    def fileno(self) -> int:
        return self.chunks.fileno()

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        fill, self.fill = self.fill, None
        try:
            self.chunks.close()
        finally:
            if fd is not None:
                self._finish(fill, fd)

    def _finish(self, fill: Fill, fd: int) -> None:
        try:
            sent = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            sent = 0
        if sent < self.size:
            os.close(fd)
            fill.abandon()
        else:
            self.offload.start_after(None, _copy_and_complete, fill, fd, self.size, self.checksum)


def _copy_and_complete(fill: Fill, fd: int, size: int, checksum: str | None) -> bool:
    """Fill from the file `fd` (closed here), then publish: never raises (a job)."""
    try:
        fill.copy(fd, size)
    except Exception as err:
        LOG.warning("Image %s not cached: %s", fill.image_id, err)
        fill.abandon()
        return False
    finally:
        os.close(fd)
    return fill.complete(checksum)


class CacheFilter:
    def __init__(self, app, cache: ImageCache):
        self.app = app
        self.cache = cache

    def __call__(self, environ, start_response):
        match = IMAGE_PATH.match(environ.get("PATH_INFO", ""))
        method = environ["REQUEST_METHOD"]
        if match is None or match["image_id"] == "detail":
            return self.app(environ, start_response)
        image_id = match["image_id"]
        if method == "GET" and not ("HTTP_RANGE" in environ or "HTTP_CONTENT_RANGE" in environ):
            environ[IMAGE_CACHE] = self.cache
        elif method not in ("DELETE", "PUT"):
            return self.app(environ, start_response)
        status: list[int] = []

        def noting(code, headers, exc_info=None):
            status.append(int(code[:3]))
            return start_response(code, headers, exc_info)

        result = self.app(environ, noting)
        if status and self._drops(method, status[0], environ):
            self.cache.drop(image_id)
        return result

    @staticmethod
    def _drops(method: str, status: int, environ) -> bool:
        if method == "GET":
            return status == 404
        if not 200 <= status < 300:
            return False
        if method == "DELETE":
            return True
        has_body = environ.get("CONTENT_LENGTH", "") not in ("", "0") or (
            "HTTP_TRANSFER_ENCODING" in environ
        )
        return has_body or any(name in environ for name in DATA_HEADERS)


def filter_factory(global_conf, **local_conf):
    """`[filter:cache]`: the node's cache, read from the configuration once."""
    cache = ImageCache(driver_from_conf(config.get()), offload.current())

    def make(app):
        return CacheFilter(app, cache)

    return make
