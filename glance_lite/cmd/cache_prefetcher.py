"""glance-cache-prefetcher: cache the images queued on this node (glance-cache.conf:
the cache, the registry to read their metadata from, the stores their data is in). On
a terminal each image gets a progress bar (bytes, rate, ETA); otherwise a log line."""

import logging
import sys

import tqdm

from glance_lite import exceptions, store
from glance_lite.cache.prefetch import Prefetcher
from glance_lite.cmd import cache_tools
from glance_lite.registry.client import client_from_conf

LOG = logging.getLogger("glance-cache-prefetcher")


def progress_bar(image_id: str, size: int):
    bar = tqdm.tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=image_id)

    def advance(n: int) -> None:
        bar.update(n)
        if bar.n >= size:
            bar.close()

    return advance


def main(argv: list[str] | None = None) -> None:
    conf = cache_tools.load("glance-cache-prefetcher", argv)
    driver = cache_tools.driver(conf)
    try:
        stores = store.from_conf(conf)
    except exceptions.ConfigError as err:
        sys.exit(f"ERROR: {err}")
    prefetcher = Prefetcher(
        driver,
        client_from_conf(conf),
        stores,
        cache_tools.admin_context(conf),
        progress=progress_bar if sys.stderr.isatty() else None,
    )
    try:
        cached, failed = prefetcher.run()
    except exceptions.RegistryUnavailable as err:
        sys.exit(f"ERROR: {err}")
    LOG.info("Cached %d queued image(s); %d left in the queue", cached, failed)


if __name__ == "__main__":
    main()
