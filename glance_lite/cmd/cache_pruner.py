"""glance-cache-pruner: remove the least recently used cached images until the cache
holds no more than image_cache_max_size bytes (for cron)."""

import logging

from glance_lite.cmd import cache_tools

LOG = logging.getLogger("glance-cache-pruner")


def main(argv: list[str] | None = None) -> None:
    conf = cache_tools.load("glance-cache-pruner", argv)
    files, size = cache_tools.driver(conf).prune()
    LOG.info("Pruned %d image(s), %d bytes, from the cache", files, size)


if __name__ == "__main__":
    main()
