"""Image data stores: the drivers that the `[glance_store]` options (opts.py) enable.

`from_conf` runs once at start-up and returns plain driver objects in a `Stores`;
nothing here reads the configuration at import time.
"""

import logging

from oslo_config import cfg

from glance_lite import exceptions, opts
from glance_lite.offload import DIRECT, Offload
from glance_lite.store.base import Store, Stores
from glance_lite.store.filesystem import FilesystemStore, prepare_datadir, sweep_stale_temps

LOG = logging.getLogger(__name__)

# Store names Glance knows. Only those mapped to a builder exist in glance-lite yet.
FILE_NAMES = ("file", "filesystem", "glance.store.filesystem.Store")
UNIMPLEMENTED_NAMES = frozenset(
    {"http", "https", "swift", "rbd", "sheepdog", "cinder", "vmware", "vsphere", "s3"}
)


def from_conf(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> Stores:
    """Build the enabled drivers from `[glance_store]`; ConfigError if that is impossible."""
    opts.register_store_opts(conf)
    group = conf[opts.STORE_GROUP]
    drivers: dict[str, Store] = {}
    for name in dict.fromkeys(group.stores):  # unique, in order
        if name in FILE_NAMES:
            if "file" not in drivers:
                drivers["file"] = _filesystem_store(group, offload)
        elif name in UNIMPLEMENTED_NAMES:
            LOG.warning("Store '%s' is not implemented in glance-lite yet; skipped", name)
        else:
            LOG.warning("Unknown store '%s' in [glance_store] stores; skipped", name)
    return Stores(drivers, default=group.default_store)


def _filesystem_store(group, offload: Offload) -> FilesystemStore:
    datadir = group.filesystem_store_datadir
    if not datadir:
        raise exceptions.ConfigError("[glance_store] filesystem_store_datadir is empty")
    file_perm = _octal_perm(group.filesystem_store_file_perm)
    store = FilesystemStore(
        datadir, group.filesystem_store_chunk_size, file_perm=file_perm, offload=offload
    )
    prepare_datadir(datadir, file_perm)
    sweep_stale_temps(datadir)  # uploads a killed api left behind
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
