"""Image data stores: the drivers that the `[glance_store]` options enable.

Drivers are found by entry point, in the group `glance_lite.stores`: each entry point's
name is a store name as `[glance_store] stores` lists it, and its object a factory
`from_conf(conf, offload) -> Store`. A third party adds a store by installing a package
with such an entry point; names that lead to one factory (Glance's aliases, such as
`file`, `filesystem` and `glance.store.filesystem.Store`) make one driver.

`from_conf` runs once at start-up and returns plain driver objects in a `Stores`
(`shared` gives a serving process's parts the same ones); nothing here reads the
configuration at import time.
"""

import logging
from collections.abc import Callable
from importlib import metadata

from oslo_config import cfg

from glance_lite import config, exceptions, opts
from glance_lite.offload import DIRECT, Offload
from glance_lite.store.base import Store, Stores

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "glance_lite.stores"
# Glance's store names for which glance-lite has no driver (a warning says so).
GLANCE_ONLY_NAMES = frozenset(
    {"rbd", "sheepdog", "cinder", "vmware", "vsphere"}
    | {f"glance.store.{name}.Store" for name in ("rbd", "sheepdog", "cinder", "vmware_datastore")}
)

Factory = Callable[[cfg.ConfigOpts, Offload], Store]


def factories() -> dict[str, metadata.EntryPoint]:
    """The installed drivers' entry points, by store name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def from_conf(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> Stores:
    """Build the enabled drivers from `[glance_store]`; ConfigError if that is impossible."""
    opts.register_store_opts(conf)
    group = conf[opts.STORE_GROUP]
    installed = factories()
    built: dict[str, Store] = {}  # by the entry point's value: aliases make one driver
    drivers: dict[str, Store] = {}
    for name in dict.fromkeys(group.stores):  # unique, in order
        entry = installed.get(name)
        if entry is None:
            if name in GLANCE_ONLY_NAMES:
                LOG.warning("Store '%s' is not available in glance-lite; skipped", name)
            else:
                LOG.warning("Unknown store '%s' in [glance_store] stores; skipped", name)
            continue
        if entry.value not in built:
            built[entry.value] = drivers[name] = _build(name, entry, conf, offload)
    return Stores(drivers, default=group.default_store)


def shared(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> Stores:
    """The stores of `conf`, built once per process for all that serve with it (the v1
    app and the upload-lease sweeper): each store's start-up check, and its warning,
    and the file store's sweep of stale temporary files run once, not once for each.
    Another configuration (a reload) or a forked child builds its own."""
    return _shared(conf, offload)


_shared = config.PerProcess(lambda conf, offload: from_conf(conf, offload))


def _build(name: str, entry: metadata.EntryPoint, conf, offload: Offload) -> Store:
    try:
        factory: Factory = entry.load()
    except (ImportError, AttributeError) as err:
        raise exceptions.ConfigError(
            f"Store '{name}' ({entry.value}) cannot be loaded: {err}"
        ) from err
    driver = factory(conf, offload)
    if not isinstance(driver, Store):
        raise exceptions.ConfigError(f"Store '{name}' ({entry.value}) did not build a store")
    return driver
