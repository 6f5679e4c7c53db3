"""Every cache index driver passes the same tests, on a real directory."""

import errno
import hashlib
import os

import pytest

from glance_lite.cache.base import NotCached
from glance_lite.cache.middleware import Tee
from glance_lite.cache.sqlite import SqliteDriver
from glance_lite.cache.xattr import XattrDriver


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
