"""glance-cache-cleaner: remove the cache's invalid files, and its incomplete files
that no process writes and that are older than image_cache_stall_time (for cron)."""

import logging

from glance_lite.cmd import cache_tools

LOG = logging.getLogger("glance-cache-cleaner")


def main(argv: list[str] | None = None) -> None:
    conf = cache_tools.load("glance-cache-cleaner", argv)
    invalid, stalled = cache_tools.driver(conf).clean()
    LOG.info("Removed %d invalid and %d stalled incomplete cache file(s)", invalid, stalled)


if __name__ == "__main__":
    main()
