"""The image cache of an api node (docs/cache.md): hot images served from local disk.

base.py is the cache directory and what every index driver shares; sqlite.py and
xattr.py are the two indexes; middleware.py the paste filter `cache` (hits, fills,
invalidation); management.py the filter `cachemanage` (/v1/cached_images,
/v1/queued_images); prefetch.py what glance-cache-prefetcher does. The store stays the
source of truth: the cache only ever holds complete copies that it checked.
"""

import logging

from oslo_config import cfg

from glance_lite import exceptions
from glance_lite.cache.base import CacheDriver
from glance_lite.cache.sqlite import SqliteDriver
from glance_lite.cache.xattr import XattrDriver

LOG = logging.getLogger(__name__)

DRIVERS: dict[str, type[CacheDriver]] = {"sqlite": SqliteDriver, "xattr": XattrDriver}


def driver_from_conf(conf: cfg.ConfigOpts) -> CacheDriver:
    """The configured driver on image_cache_dir, its directories made. A driver that
    cannot work there (xattr without user xattrs) falls back to sqlite, with a warning;
    a directory that cannot be used is logged, and the cache stays empty until it can.
    """
    if not conf.image_cache_dir:
        raise exceptions.ConfigError(
            "image_cache_dir is not set: the image cache (the 'cache' filter of the caching "
            "flavors, and the glance-cache-* tools) needs a directory"
        )
    common = {"max_size": conf.image_cache_max_size, "stall_time": conf.image_cache_stall_time}
    name = conf.image_cache_driver
    if name == "xattr":
        driver: CacheDriver = XattrDriver(conf.image_cache_dir, **common)
        try:
            driver.prepare()
            return driver
        except exceptions.ConfigError as err:
            LOG.warning("%s; using the sqlite cache driver instead", err)
    driver = SqliteDriver(conf.image_cache_dir, db_name=conf.image_cache_sqlite_db, **common)
    driver.prepare()
    return driver
