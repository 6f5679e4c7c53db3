"""The image cache's options, in [DEFAULT] as Glance has them: read by glance-api (when
its pipeline has the `cache` filter) and by the glance-cache-* tools."""

from oslo_config import cfg

cache_opts = [
    cfg.StrOpt(
        "image_cache_dir",
        help="Directory of the image cache on this node: cached images, and the "
        "incomplete/, invalid/ and queue/ subdirectories. Required when the pipeline has "
        "the cache filter (a 'caching' or 'cachemanagement' flavor) and by the "
        "glance-cache-* tools.",
    ),
    cfg.StrOpt(
        "image_cache_driver",
        default="sqlite",
        choices=("sqlite", "xattr"),
        help="How cached images are indexed (size, hits, last access): an SQLite "
        "database in the cache directory, or extended attributes of the cached files "
        "(the file system must support user xattrs). A driver that cannot work there "
        "falls back to sqlite, with a warning.",
    ),
    cfg.StrOpt(
        "image_cache_sqlite_db",
        default="cache.db",
        help="File name of the sqlite driver's database, relative to image_cache_dir.",
    ),
    cfg.IntOpt(
        "image_cache_max_size",
        default=10 * 1024**3,
        min=0,
        help="Bytes the cache may hold; glance-cache-pruner removes the least recently "
        "used images until it holds no more. The cache itself may grow past it between "
        "two runs of the pruner.",
    ),
    cfg.IntOpt(
        "image_cache_stall_time",
        default=86400,
        min=0,
        help="Seconds after which glance-cache-cleaner removes an incomplete cache file "
        "that no process is writing any more.",
    ),
]
