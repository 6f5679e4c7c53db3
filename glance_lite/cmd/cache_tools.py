"""What the glance-cache-* tools share: glance-cache.conf, the cache, an admin
(the scrubber's admin_context)."""

import sys

from glance_lite import cache, config, exceptions, log, opts
from glance_lite.cache.base import CacheDriver
from glance_lite.cmd.scrubber import admin_context


def load(service: str, argv: list[str] | None):
    try:
        conf = config.load(service, opts.register_cache_opts, argv)
    except Exception as exc:  # oslo.config's errors carry a readable message
        sys.exit(f"ERROR: {exc}")
    log.setup(conf, service)
    return conf


def driver(conf) -> CacheDriver:
    try:
        found = cache.driver_from_conf(conf)
    except exceptions.ConfigError as err:
        sys.exit(f"ERROR: {err}")
    if not found.prepare():
        sys.exit(f"ERROR: the image cache directory {conf.image_cache_dir} cannot be used")
    return found


__all__ = ["admin_context", "driver", "load"]
