"""The registry of drivers and how `[glance_store]` builds it."""

import logging
import os
import re
import stat
from pathlib import Path

import pytest
from oslo_config import cfg

from glance_lite import exceptions, offload, opts, store
from glance_lite.store.base import BadStoreUri, Stores, UnknownScheme
from glance_lite.store.filesystem import FilesystemStore
from glance_lite.store.memory import MemoryStore

IMAGE_ID = "71c675ab-d94f-49cd-a114-e12490b328d9"


def make_conf(**overrides) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    opts.register_store_opts(conf)
    conf(args=[], default_config_files=[])
    for name, value in overrides.items():
        conf.set_override(name, value, group="glance_store")
    return conf


# -- Stores


def test_drivers_are_found_by_the_scheme_of_a_location(tmp_path):
    files, memory = FilesystemStore(str(tmp_path)), MemoryStore()
    stores = Stores({"file": files, "memory": memory}, default="file")
    assert stores.default is files
    assert stores.for_location(f"file://{tmp_path}/x") is files
    assert stores.for_location(f"filesystem://{tmp_path}/x") is files
    assert stores.for_location("memory://x") is memory
    assert stores.for_scheme("memory") is memory
    assert stores.schemes == {"file", "filesystem", "memory"}


def test_an_unknown_scheme_is_a_400_naming_it():
    stores = Stores({"memory": MemoryStore()}, default="memory")
    with pytest.raises(UnknownScheme) as caught:
        stores.for_location("swift://x/y")
    assert caught.value.status == 400
    assert caught.value.scheme == "swift"
    assert str(caught.value) == "Unknown scheme 'swift' found in URI"


@pytest.mark.parametrize("location", ["", "no-scheme", "://x", "/var/lib/glance/images/x"])
def test_a_location_without_a_scheme_is_a_bad_uri(location):
    stores = Stores({"memory": MemoryStore()}, default="memory")
    with pytest.raises(BadStoreUri):
        stores.for_location(location)


def test_a_default_that_no_driver_serves_is_a_config_error():
    with pytest.raises(exceptions.ConfigError, match="default_store 'file'"):
        Stores({"memory": MemoryStore()}, default="file")


def test_two_drivers_claiming_one_scheme_is_a_config_error():
    with pytest.raises(exceptions.ConfigError, match="'memory'"):
        Stores({"a": MemoryStore(), "b": MemoryStore()}, default="memory")


# -- options


def test_options_have_glances_names_and_defaults():
    group = make_conf().glance_store
    assert group.stores == ["file", "http"]
    assert group.default_store == "file"
    assert group.filesystem_store_datadir == "/var/lib/glance/images"
    assert group.filesystem_store_chunk_size == 1024 * 1024
    assert group.filesystem_store_file_perm == 0
    assert all(opt.help for opt in opts.store_opts)
    assert ("glance_store", opts.store_opts) in opts.list_api_opts()


# -- from_conf


def test_from_conf_builds_the_file_store_and_creates_its_datadir(tmp_path):
    datadir = tmp_path / "a" / "b"
    stores = store.from_conf(make_conf(stores=["file"], filesystem_store_datadir=str(datadir)))
    assert datadir.is_dir()
    result = stores.default.add(IMAGE_ID, iter([b"data"]), None)
    assert result.location == f"file://{datadir}/{IMAGE_ID}"
    assert stores.for_location(result.location) is stores.default


def test_a_serving_process_builds_its_stores_once_per_configuration(tmp_path, monkeypatch):
    """The v1 app and the upload-lease sweeper of one process share the stores (one
    start-up check each, not two); a reload's configuration or a forked child (another
    pid) builds its own."""
    conf = make_conf(filesystem_store_datadir=str(tmp_path / "images"))
    first = store.shared(conf, offload.DIRECT)
    assert store.shared(conf, offload.DIRECT) is first
    reloaded = make_conf(filesystem_store_datadir=str(tmp_path / "images"))
    assert store.shared(reloaded, offload.DIRECT) is not first
    again = store.shared(reloaded, offload.DIRECT)
    monkeypatch.setattr(os, "getpid", lambda: -1)  # a child forked after the build
    assert store.shared(reloaded, offload.DIRECT) is not again


def test_from_conf_uses_the_configured_chunk_size(tmp_path):
    conf = make_conf(filesystem_store_datadir=str(tmp_path), filesystem_store_chunk_size=3)
    files = store.from_conf(conf).default
    chunks, _ = files.get(files.add(IMAGE_ID, iter([b"abcdefg"]), None).location)
    assert list(chunks) == [b"abc", b"def", b"g"]


def test_stores_without_a_driver_are_skipped_with_a_warning(tmp_path, caplog):
    conf = make_conf(
        stores=["file", "rbd", "cinder", "bogus"], filesystem_store_datadir=str(tmp_path)
    )
    with caplog.at_level(logging.WARNING, logger="glance_lite.store"):
        stores = store.from_conf(conf)
    assert stores.schemes == {"file", "filesystem"}
    warned = [r.getMessage() for r in caplog.records]
    assert "Store 'rbd' is not available in glance-lite; skipped" in warned
    assert "Store 'cinder' is not available in glance-lite; skipped" in warned
    assert "Unknown store 'bogus' in [glance_store] stores; skipped" in warned


def test_glances_names_of_the_file_store_make_one_driver(tmp_path):
    names = ["file", "filesystem", "glance.store.filesystem.Store"]
    conf = make_conf(stores=names, filesystem_store_datadir=str(tmp_path))
    stores = store.from_conf(conf)
    assert isinstance(stores.default, FilesystemStore)
    assert stores.for_scheme("filesystem") is stores.default


def install_distribution(site: Path, entry_points: str, module: str) -> None:
    """Install a package the way pip leaves it: a module and its dist-info."""
    (site / "thirdparty_store.py").write_text(module)
    info = site / "thirdparty_store-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-store\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[glance_lite.stores]\n{entry_points}\n")


THIRD_PARTY_MODULE = """
from glance_lite.store.memory import MemoryStore

def from_conf(conf, offload):
    return MemoryStore()

def not_a_store(conf, offload):
    return object()
"""


def test_a_store_installed_by_another_package_is_found_by_its_entry_point(tmp_path, monkeypatch):
    install_distribution(tmp_path, "ram = thirdparty_store:from_conf", THIRD_PARTY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = make_conf(
        stores=["file", "ram"], default_store="memory", filesystem_store_datadir=str(tmp_path)
    )
    stores = store.from_conf(conf)
    assert type(stores.default).__module__ == "glance_lite.store.memory"
    assert stores.schemes == {"file", "filesystem", "memory"}
    location = stores.default.add(IMAGE_ID, iter([b"third party"]), None).location
    assert b"".join(stores.for_location(location).get(location)[0]) == b"third party"


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            "ram = thirdparty_store:missing",
            "Store 'ram' (thirdparty_store:missing) cannot be loaded",
        ),
        (
            "ram = thirdparty_store:not_a_store",
            "Store 'ram' (thirdparty_store:not_a_store) did not",
        ),
    ],
)
def test_an_entry_point_that_gives_no_store_is_a_config_error_naming_it(
    tmp_path, monkeypatch, entry, message
):
    install_distribution(tmp_path, entry, THIRD_PARTY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = make_conf(stores=["file", "ram"], filesystem_store_datadir=str(tmp_path))
    with pytest.raises(exceptions.ConfigError, match=re.escape(message)):
        store.from_conf(conf)


def test_a_default_store_that_is_not_enabled_is_a_config_error_naming_it(tmp_path):
    conf = make_conf(stores=["file"], default_store="http", filesystem_store_datadir=str(tmp_path))
    with pytest.raises(exceptions.ConfigError, match="default_store 'http'"):
        store.from_conf(conf)


def test_the_filesystem_alias_enables_the_file_store(tmp_path):
    conf = make_conf(
        stores=["filesystem"], default_store="filesystem", filesystem_store_datadir=str(tmp_path)
    )
    assert isinstance(store.from_conf(conf).default, FilesystemStore)


def test_a_datadir_that_cannot_be_created_is_a_config_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    conf = make_conf(filesystem_store_datadir=str(blocker / "images"))
    with pytest.raises(exceptions.ConfigError, match=re.escape(str(blocker / "images"))):
        store.from_conf(conf)


def test_a_datadir_that_is_a_file_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(exceptions.ConfigError, match=re.escape(str(blocker))):
        store.from_conf(make_conf(filesystem_store_datadir=str(blocker)))


def test_the_file_permission_is_read_as_octal_digits(tmp_path):
    datadir = tmp_path / "images"
    datadir.mkdir(mode=0o700)
    conf = make_conf(filesystem_store_datadir=str(datadir), filesystem_store_file_perm=640)
    files = store.from_conf(conf).default
    files.add(IMAGE_ID, iter([b"x"]), None)
    assert stat.S_IMODE(os.stat(datadir / IMAGE_ID).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(datadir).st_mode) == 0o710  # group may now reach the files


@pytest.mark.parametrize("perm", [648, 200])
def test_a_file_permission_that_is_not_octal_or_unreadable_is_a_config_error(tmp_path, perm):
    conf = make_conf(filesystem_store_datadir=str(tmp_path), filesystem_store_file_perm=perm)
    with pytest.raises(exceptions.ConfigError, match="filesystem_store_file_perm"):
        store.from_conf(conf)


def test_from_conf_hands_the_offload_to_the_driver(tmp_path):
    calls = []

    class Recording(offload.Direct):
        def __call__(self, fn, *args):
            calls.append(fn)
            return fn(*args)

    conf = make_conf(filesystem_store_datadir=str(tmp_path))
    stores = store.from_conf(conf, offload=Recording())
    stores.default.add(IMAGE_ID, iter([b"x"]), None)
    assert os.fsync in calls


def test_from_conf_registers_the_options_and_reads_them_from_the_files(tmp_path):
    datadir = tmp_path / "images"
    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text(f"[glance_store]\nstores = file\nfilesystem_store_datadir = {datadir}\n")
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[str(conf_file)])
    stores = store.from_conf(conf)
    assert stores.default.add(IMAGE_ID, iter([b"x"]), None).location == (
        f"file://{datadir}/{IMAGE_ID}"
    )


def test_starting_the_file_store_sweeps_abandoned_temporary_files(tmp_path):
    stale = tmp_path / ".6b3e8a9e-6f0e-4a6f-9d6c-0d9f6b7a1c2d.0123456789abcdef.tmp"
    stale.write_bytes(b"left by an api killed mid-upload")
    store.from_conf(make_conf(filesystem_store_datadir=str(tmp_path)))
    assert not stale.exists()


# -- redaction


class KeyedMemoryStore(MemoryStore):
    """A store whose locations carry a key, as swift's do."""

    def redact(self, location: str) -> str:
        return location.replace("secret", "***")


def test_a_location_is_redacted_by_its_stores_rules(tmp_path):
    stores = Stores({"file": FilesystemStore(str(tmp_path)), "memory": KeyedMemoryStore()}, "file")
    assert stores.redact("memory://user:secret@x") == "memory://user:***@x"
    assert stores.redact(f"file://{tmp_path}/x") == f"file://{tmp_path}/x"


@pytest.mark.parametrize(
    "location, shown",
    [("swift+https://user:key@auth/c/o", "swift+https://***"), ("junk", "?://***")],
)
def test_a_location_of_no_enabled_store_shows_only_its_scheme(tmp_path, location, shown):
    stores = Stores({"file": FilesystemStore(str(tmp_path))}, "file")
    assert stores.redact(location) == shown


def test_partial_data_is_discarded_by_the_store_of_its_location_or_by_every_store(tmp_path):
    memory = MemoryStore()
    stores = Stores({"file": FilesystemStore(str(tmp_path)), "memory": memory}, default="file")
    partial = memory.add(IMAGE_ID, [b"half"], None).location
    stray = tmp_path / f".{IMAGE_ID}.0123456789abcdef.tmp"
    stray.write_bytes(b"half")
    stores.discard_partial(IMAGE_ID, partial)
    assert stray.exists()  # only the store the location names was asked
    with pytest.raises(store.base.StoreNotFound):
        memory.get_size(partial)
    stores.discard_partial(IMAGE_ID, partial)  # gone already: nothing to do
    stores.discard_partial(IMAGE_ID, None)
    assert not stray.exists()
