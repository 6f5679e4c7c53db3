"""What glance-cache-prefetcher does: cache every queued image, the oldest first.

Each image's metadata comes from the registry (as an admin), its data from its store,
written through the same fill as a miss of the api (a file-store image copied by the
kernel, another store's streamed through middleware.Tee): published only whole with
the right md5, which also removes its queue marker. An image that is not
active, unknown, or whose data cannot be read stays queued for the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from glance_lite import exceptions
from glance_lite.cache.base import CacheDriver, Fill
from glance_lite.cache.middleware import Tee
from glance_lite.context import RequestContext
from glance_lite.registry.client import RegistryClient
from glance_lite.store.base import Stores

LOG = logging.getLogger(__name__)
COPY_PIECE = 64 << 20  # bytes of a local file copied between two progress updates


class Prefetcher:
    def __init__(
        self,
        driver: CacheDriver,
        registry: RegistryClient,
        stores: Stores,
        context: RequestContext,
        progress: Callable[[str, int], object] | None = None,
    ):
        """`progress(image_id, size)` returns a callable given each chunk's length."""
        self.driver = driver
        self.registry = registry
        self.stores = stores
        self.context = context
        self.progress = progress

    def run(self) -> tuple[int, int]:
        """Cache the queued images: (cached, failed)."""
        cached = failed = 0
        for image_id in self.driver.get_queued_images():
            if self.fetch(image_id):
                cached += 1
            else:
                failed += 1
        return cached, failed

    def fetch(self, image_id: str) -> bool:
        try:
            image = self.registry.get_image(self.context, image_id)
        except exceptions.NotFound:
            LOG.warning("Image %s not found: left in the queue", image_id)
            return False
        if image["status"] != "active":
            LOG.warning("Image %s is %s, not active: left in the queue", image_id, image["status"])
            return False
        if self.driver.is_cached(image_id):
            self.driver.delete_queued_image(image_id)
            return True
        size = image.get("size") or 0
        location = image.get("location")
        if not size or not location:
            LOG.warning("Image %s has no data to cache: left in the queue", image_id)
            return False
        fill = self.driver.open_fill(image_id)
        if fill is None:
            LOG.warning("Image %s is being cached by another process", image_id)
            return False
        try:
            chunks, _ = self.stores.for_location(location).get(location)
        except exceptions.GlanceLiteError as err:
            fill.abandon()
            LOG.error("Image %s: its data cannot be read: %s", image_id, err)
            return False
        advance = self.progress(image_id, size) if self.progress else None
        if hasattr(chunks, "fileno"):  # a local file: the kernel copies it
            return self._copy(image, fill, chunks, advance)
        tee = Tee(chunks, fill, size, image.get("checksum"))
        try:
            for chunk in tee:
                if advance is not None:
                    advance(len(chunk))
        except Exception as err:
            LOG.error("Image %s: reading its data failed: %s", image_id, err)
            return False
        finally:
            tee.close()
        return self._cached(image_id, size)

    def _copy(self, image: dict, fill: Fill, chunks, advance) -> bool:
        """Fill from a store's local file by the kernel (Fill.copy), COPY_PIECE bytes
        at a time for the progress bar, then check and publish the copy."""
        size = image["size"]
        try:
            while fill.written < size:
                before = fill.written
                fill.copy(chunks.fileno(), min(size, before + COPY_PIECE))
                if advance is not None:
                    advance(fill.written - before)
        except OSError as err:
            fill.abandon()
            LOG.error("Image %s: copying its data failed: %s", image["id"], err)
            return False
        finally:
            chunks.close()
        fill.complete(image.get("checksum"))
        return self._cached(image["id"], size)

    def _cached(self, image_id: str, size: int) -> bool:
        if not self.driver.is_cached(image_id):
            LOG.error("Image %s was not cached (see above)", image_id)
            return False
        LOG.info("Cached image %s (%d bytes)", image_id, size)
        return True
