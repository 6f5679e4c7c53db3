"""glance-scrubber's work: remove the data of images deleted with delayed_delete.

A pass asks the registry (over HTTP, as an admin: the scrubber never opens the database)
for every image left `pending_delete`, keeps those deleted at least `scrub_time` seconds
ago, and for each of their locations still pending deletes the data through the store
driver of its scheme ("not found" counts as done) and marks the location deleted. An
image whose locations are all done becomes `deleted`; one with a failure stays
`pending_delete` and is tried again on the next pass, its finished locations not
revisited. Images are scrubbed by a pool of `scrub_pool_size` threads.

Every step is recorded in the registry as it completes, so a scrubber killed mid-pass
and started again only does what is left: no image forgotten, no data deleted twice
with an error, no image marked deleted while its data remains.
"""

import datetime
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from glance_lite import exceptions
from glance_lite.context import RequestContext
from glance_lite.registry.client import RegistryClient
from glance_lite.store.base import StoreNotFound, Stores

LOG = logging.getLogger(__name__)

PAGE = 1000


class Scrubber:
    def __init__(
        self,
        registry: RegistryClient,
        stores: Stores,
        context: RequestContext,
        *,
        scrub_time: int = 0,
        pool_size: int = 1,
    ):
        self.registry = registry
        self.stores = stores
        self.context = context
        self.scrub_time = scrub_time
        self.pool_size = max(1, pool_size)

    def queue(self, now: datetime.datetime | None = None) -> list[dict]:
        """The pending_delete images whose scrub_time has passed."""
        now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        cutoff = now - datetime.timedelta(seconds=self.scrub_time)
        return [image for image in self._pending() if _deleted_at(image) <= cutoff]

    def _pending(self) -> Iterator[dict]:
        marker = None
        while True:
            page = self.registry.get_pending_delete(self.context, marker, PAGE)
            if not page:
                return
            yield from page
            marker = page[-1]["id"]

    def run(self) -> tuple[int, int]:
        """One pass: (images scrubbed, images left for the next pass)."""
        try:
            images = self.queue()
        except exceptions.GlanceLiteError as err:
            raise ScrubberError(
                f"Could not read the scrubber's queue from the registry: {err}"
            ) from err
        if not images:
            LOG.info("Nothing to scrub")
            return 0, 0
        LOG.info("Scrubbing %d image(s)", len(images))
        with ThreadPoolExecutor(self.pool_size, thread_name_prefix="scrub") as pool:
            done = list(pool.map(self.scrub_image, images))
        scrubbed = sum(done)
        return scrubbed, len(images) - scrubbed

    def scrub_image(self, image: dict) -> bool:
        """Delete the data of each pending location, then mark the image deleted; False
        when something failed (the image stays pending_delete for the next pass)."""
        image_id = image["id"]
        ok = True
        for location in image.get("location_data") or []:
            if location.get("status") != "pending_delete":
                continue
            try:
                self._delete_data(image_id, location["url"])
                self.registry.mark_location(self.context, image_id, location["id"], "deleted")
            except Exception as err:  # one location's failure must not stop the others
                LOG.warning("Image %s: could not scrub a location: %s", image_id, err)
                ok = False
        if not ok:
            return False
        try:
            self.registry.image_scrubbed(self.context, image_id)
        except exceptions.GlanceLiteError as err:
            LOG.warning("Image %s: could not mark it deleted: %s", image_id, err)
            return False
        LOG.info("Image %s scrubbed", image_id)
        return True

    def _delete_data(self, image_id: str, url: str) -> None:
        try:
            self.stores.for_location(url).delete(url)
        except StoreNotFound:
            LOG.info("Image %s: the data at its location was already gone", image_id)

    def restore(self, image_id: str) -> dict:
        """A pending_delete image back to active, its data untouched."""
        return self.registry.restore_image(self.context, image_id)


class ScrubberError(exceptions.GlanceLiteError):
    status = 503


def _deleted_at(image: dict) -> datetime.datetime:
    stamp = image.get("deleted_at") or image.get("updated_at")
    return datetime.datetime.fromisoformat(stamp).replace(tzinfo=None)
