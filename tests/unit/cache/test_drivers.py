"""Every cache index driver passes the same tests, on a real directory."""

import errno
import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from glance_lite.cache.base import NotCached
from glance_lite.cache.middleware import FileTee, ImageCache, Tee
from glance_lite.cache.sqlite import SqliteDriver
from glance_lite.cache.xattr import XattrDriver
from glance_lite.store.filesystem import _FileChunks


@pytest.fixture(params=["sqlite", "xattr"])
def driver(request, tmp_path):
    cls = SqliteDriver if request.param == "sqlite" else XattrDriver
    found = cls(str(tmp_path / "cache"), max_size=10_000, stall_time=60)
    assert found.prepare()
    return found


def fill(driver, image_id: str, data: bytes, checksum: str | None = None) -> bool:
    filling = driver.open_fill(image_id)
    assert filling is not None
    tee = Tee(iter([data[:100], data[100:]]), filling, len(data), checksum)
    assert b"".join(tee) == data
    tee.close()
    return driver.is_cached(image_id)


def test_a_complete_fill_with_its_checksum_is_published_and_indexed(driver):
    data = os.urandom(5000)
    assert fill(driver, "img1", data, hashlib.md5(data).hexdigest())
    entry = driver.entry("img1")
    assert (entry.size, entry.hits) == (5000, 0)
    hit = driver.open_cached("img1", 5000, hashlib.md5(data).hexdigest())
    assert b"".join(hit) == data
    hit.close()
    assert driver.entry("img1").hits == 1
    assert [e.image_id for e in driver.entries()] == ["img1"]


def test_a_fill_with_the_wrong_checksum_goes_to_invalid(driver):
    assert not fill(driver, "img2", b"x" * 300, "0" * 32)
    assert os.listdir(os.path.join(driver.base_dir, "invalid")) == ["img2"]
    assert driver.clean() == (1, 0)
    assert os.listdir(os.path.join(driver.base_dir, "invalid")) == []


def test_only_one_fill_at_a_time_and_a_dead_ones_file_is_taken_over(driver):
    first = driver.open_fill("img3")
    assert driver.open_fill("img3") is None
    os.close(first.fd)  # its process died: the lock is gone, the file stays
    second = driver.open_fill("img3")
    assert second is not None
    second.abandon()
    assert os.listdir(os.path.join(driver.base_dir, "incomplete")) == []


def test_a_full_disk_leaves_no_entry_and_the_client_gets_everything(driver, monkeypatch):
    filling = driver.open_fill("img4")

    def full(chunk):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filling, "write", full)
    tee = Tee(iter([b"a" * 10, b"b" * 10]), filling, 20, None)
    assert b"".join(tee) == b"a" * 10 + b"b" * 10
    assert not driver.is_cached("img4")
    assert os.listdir(os.path.join(driver.base_dir, "incomplete")) == []


def test_a_client_that_stops_reading_leaves_nothing(driver):
    tee = Tee(iter([b"a" * 10, b"b" * 10]), driver.open_fill("img5"), 20, None)
    next(tee)
    tee.close()
    assert not driver.is_cached("img5")
    assert os.listdir(os.path.join(driver.base_dir, "incomplete")) == []


def test_a_cut_copy_is_removed_not_served(driver):
    fill(driver, "img6", b"z" * 1000)
    os.truncate(os.path.join(driver.base_dir, "img6"), 10)
    assert driver.open_cached("img6", 1000, None) is None
    assert not driver.is_cached("img6")


def test_queue_and_its_listing_oldest_first(driver):
    assert driver.queue_image("q1") and driver.queue_image("q2")
    os.utime(os.path.join(driver.base_dir, "queue", "q2"), (1, 1))
    assert not driver.queue_image("q1")
    assert driver.get_queued_images() == ["q2", "q1"]
    driver.delete_queued_image("q1")
    with pytest.raises(NotCached):
        driver.delete_queued_image("q1")
    assert driver.delete_all_queued_images() == 1


def test_prune_removes_least_recently_used_first(driver):
    for name in ("p1", "p2", "p3"):
        fill(driver, name, b"p" * 4000)
    hit = driver.open_cached("p1", 4000, None)
    b"".join(hit)
    hit.close()
    assert driver.prune() == (1, 4000)
    assert {e.image_id for e in driver.entries()} == {"p1", "p3"}
    assert driver.get_cache_size() == 8000


def test_ids_that_are_not_file_names_are_refused(driver):
    assert driver.open_fill("../x") is None
    assert not driver.is_cached("../etc")
    with pytest.raises(Exception, match="Invalid image id"):
        driver.delete_cached_image("a/b")


def file_tee(driver, tmp_path, image_id: str, data: bytes, checksum: str | None = "md5"):
    """A FileTee of a new fill of `image_id` from a store file holding `data` (the
    file store's own chunks of it), with `data`'s md5 as its checksum by default."""
    path = tmp_path / "store-file"
    path.write_bytes(data)
    chunks = _FileChunks(os.open(path, os.O_RDONLY), 1 << 20, len(data), str(path))
    if checksum == "md5":
        checksum = hashlib.md5(data).hexdigest()
    return FileTee(chunks, driver.open_fill(image_id), len(data), checksum)


def send_all_but_close(tee: FileTee) -> bytes:
    """What the server does with a file answer: a first block read, the rest from the
    file's position on (as sendfile() would, moving the same position)."""
    return tee.read(100) + os.read(tee.fileno(), 1 << 30)


def send_all(tee: FileTee) -> bytes:
    sent = send_all_but_close(tee)
    tee.close()
    return sent


def copy_file_range_fails(monkeypatch, code: int) -> None:
    def fails(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", fails)


def nothing_incomplete(driver) -> bool:
    return os.listdir(os.path.join(driver.base_dir, "incomplete")) == []


def test_a_local_file_is_copied_by_the_kernel_once_the_client_has_it(driver, tmp_path):
    data = os.urandom(300_000)
    assert send_all(file_tee(driver, tmp_path, "f1", data)) == data
    assert driver.is_cached("f1")
    assert Path(driver.path("f1")).read_bytes() == data
    assert driver.entry("f1").size == len(data)


def test_a_copy_where_copy_file_range_is_refused_goes_by_sendfile(driver, tmp_path, monkeypatch):
    copy_file_range_fails(monkeypatch, errno.EXDEV)
    data = os.urandom(200_000)
    assert send_all(file_tee(driver, tmp_path, "f2", data)) == data
    assert Path(driver.path("f2")).read_bytes() == data


def test_a_full_disk_during_the_copy_leaves_no_entry(driver, tmp_path, monkeypatch):
    copy_file_range_fails(monkeypatch, errno.ENOSPC)
    data = os.urandom(50_000)
    # the client got it all: the copy begins after
    assert send_all(file_tee(driver, tmp_path, "f3", data)) == data
    assert not driver.is_cached("f3") and driver.entry("f3") is None
    assert nothing_incomplete(driver)


def test_a_client_that_stops_reading_a_local_file_leaves_nothing(driver, tmp_path):
    data = os.urandom(50_000)
    tee = file_tee(driver, tmp_path, "f4", data)
    assert tee.read(1000) == data[:1000]
    tee.close()
    assert not driver.is_cached("f4")
    assert nothing_incomplete(driver)


def test_a_file_cut_before_the_copy_is_never_published(driver, tmp_path):
    data = os.urandom(50_000)
    tee = file_tee(driver, tmp_path, "f5", data, checksum=None)
    assert send_all_but_close(tee) == data
    os.truncate(tmp_path / "store-file", 10_000)  # cut once it went out
    tee.close()
    assert not driver.is_cached("f5")
    assert nothing_incomplete(driver)


def test_an_entry_lookup_leaves_no_lock_on_the_sqlite_index(tmp_path):
    driver = SqliteDriver(str(tmp_path / "cache"), max_size=10_000, stall_time=60)
    assert driver.prepare()
    fill(driver, "e1", b"e" * 100)
    fill(driver, "e2", b"e" * 100)
    assert driver.entry("e1").size == 100  # a kept connection reads it
    other = sqlite3.connect(driver.db_path, timeout=0, isolation_level=None)
    try:  # a writer that may not wait finds no reader holding the index
        other.execute("UPDATE cached_images SET hits = 7 WHERE image_id = 'e1'")
    finally:
        other.close()
    assert driver.entry("e1").hits == 7  # and the kept connection sees the write


@pytest.mark.parametrize("how", ["streamed", "kernel copy"])
def test_an_image_dropped_while_its_fill_runs_is_never_published(driver, tmp_path, how):
    """A DELETE (or a data change) that drops an image from the cache while a download
    still fills it: the fill must not publish the image afterwards."""
    data = os.urandom(300_000)
    checksum = hashlib.md5(data).hexdigest()
    cache = ImageCache(driver)
    if how == "streamed":
        tee = Tee(iter([data[:100], data[100:]]), driver.open_fill("d1"), len(data), checksum)
        chunks = iter(tee)
        first = next(chunks)
        cache.drop("d1")
        assert first + b"".join(chunks) == data  # the client still gets all of it
        tee.close()
    else:
        tee = file_tee(driver, tmp_path, "d1", data)
        assert send_all_but_close(tee) == data
        cache.drop("d1")
        tee.close()
    assert not driver.is_cached("d1")
    assert nothing_incomplete(driver)
    assert driver.entry("d1") is None
