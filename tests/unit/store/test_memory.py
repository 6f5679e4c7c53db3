"""The memory store's switches that let callers test a full or read-only store."""

import pytest

from glance_lite.store.base import StorageFull, StoreAddDisabled
from glance_lite.store.memory import MemoryStore


def test_an_add_beyond_the_capacity_is_storage_full_and_keeps_nothing():
    store = MemoryStore(capacity=10)
    store.add("first", iter([b"123456"]), None)
    with pytest.raises(StorageFull) as caught:
        store.add("second", iter([b"12", b"345"]), None)
    assert caught.value.status == 413
    assert sorted(store._images) == ["first"]


def test_an_add_up_to_the_capacity_fits():
    store = MemoryStore(capacity=10)
    store.add("first", iter([b"123456"]), None)
    assert store.add("second", iter([b"1234"]), None).size == 4


def test_a_read_only_store_refuses_adds_with_410():
    store = MemoryStore(read_only=True)
    with pytest.raises(StoreAddDisabled) as caught:
        store.add("image", iter([b"x"]), None)
    assert caught.value.status == 410
    assert str(caught.value) == (
        "Error in store configuration. Adding images to store is disabled."
    )
