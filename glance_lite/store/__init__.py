"""Image data stores: the `[glance_store]` options and the drivers they enable.

`from_conf` runs once at start-up and returns plain driver objects in a `Stores`;
nothing here reads the configuration at import time.
"""

import logging
from collections.abc import Callable

from oslo_config import cfg

from glance_lite import exceptions
from glance_lite.store.base import Store, Stores, direct_call
from glance_lite.store.filesystem import FilesystemStore, prepare_datadir

LOG = logging.getLogger(__name__)

GROUP = "glance_store"

store_opts = [
    cfg.ListOpt(
        "stores",
        default=["file", "http"],
        help="Stores to enable, by name. glance-lite implements 'file' (alias "
        "'filesystem'); other Glance store names are skipped with a warning.",
    ),
    cfg.StrOpt(
        "default_store",
        default="file",
        help="Scheme of the store new image data is written to, unless a request asks "
        "for another with x-image-meta-store. It must belong to an enabled store.",
    ),
    cfg.StrOpt(
        "filesystem_store_datadir",
        default="/var/lib/glance/images",
        help="Directory the file store writes images to; created at start-up if missing.",
    ),
    cfg.IntOpt(
        "filesystem_store_chunk_size",
        default=1024 * 1024,
        min=1,
        help="Size in bytes of the pieces the file store reads image files in (Glance: "
        "65536; larger reads make downloads markedly faster).",
    ),
    cfg.IntOpt(
        "filesystem_store_file_perm",
        default=0,
        help="Permission of new image files, read as octal digits (e.g. 640), so that "
        "another service (e.g. Nova) in the file's group can read them. 0 or less keeps "
        "the default permission (0666 less the umask).",
    ),
]

# Store names Glance knows. Only those mapped to a builder exist in glance-lite yet.
FILE_NAMES = ("file", "filesystem", "glance.store.filesystem.Store")
UNIMPLEMENTED_NAMES = frozenset(
    {"http", "https", "swift", "rbd", "sheepdog", "cinder", "vmware", "vsphere", "s3"}
)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [(GROUP, store_opts)]


def from_conf(conf: cfg.ConfigOpts, offload: Callable | None = None) -> Stores:
    """Build the enabled drivers from `[glance_store]`; ConfigError if that is impossible."""
    conf.register_opts(store_opts, group=GROUP)
    group = conf[GROUP]
    drivers: dict[str, Store] = {}
    for name in dict.fromkeys(group.stores):  # unique, in order
        if name in FILE_NAMES:
            if "file" not in drivers:
                drivers["file"] = _filesystem_store(group, offload or direct_call)
        elif name in UNIMPLEMENTED_NAMES:
            LOG.warning("Store '%s' is not implemented in glance-lite yet; skipped", name)
        else:
            LOG.warning("Unknown store '%s' in [glance_store] stores; skipped", name)
    return Stores(drivers, default=group.default_store)


def _filesystem_store(group, offload: Callable) -> FilesystemStore:
    datadir = group.filesystem_store_datadir
    if not datadir:
        raise exceptions.ConfigError("[glance_store] filesystem_store_datadir is empty")
    file_perm = _octal_perm(group.filesystem_store_file_perm)
    store = FilesystemStore(
        datadir, group.filesystem_store_chunk_size, file_perm=file_perm, offload=offload
    )
    prepare_datadir(datadir, file_perm)
    return store


def _octal_perm(value: int) -> int:
    """Glance reads filesystem_store_file_perm's decimal digits as octal: 640 -> 0o640."""
    if value <= 0:
        return 0
    try:
        return int(str(value), 8)
    except ValueError:
        raise exceptions.ConfigError(
            f"[glance_store] filesystem_store_file_perm must be octal digits: {value}"
        ) from None
