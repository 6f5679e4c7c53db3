"""The contract every store driver passes. A new driver joins by adding a builder to BACKENDS."""

import dataclasses
import hashlib
import os
from collections.abc import Callable

import pytest

from glance_lite.store.base import BadStoreUri, Duplicate, Store, StoreNotFound
from glance_lite.store.filesystem import WRITE_BUFFER, FilesystemStore
from glance_lite.store.memory import MemoryStore

IMAGE_ID = "71c675ab-d94f-49cd-a114-e12490b328d9"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@dataclasses.dataclass
class Backend:
    store: Store
    leftovers: Callable[[], list[str]]  # everything the driver holds, including temp files


def filesystem_backend(tmp_path) -> Backend:
    datadir = tmp_path / "images"
    datadir.mkdir()
    return Backend(FilesystemStore(str(datadir)), lambda: sorted(os.listdir(datadir)))


def memory_backend(tmp_path) -> Backend:
    store = MemoryStore()
    return Backend(store, lambda: sorted(store._images))


BACKENDS = {"filesystem": filesystem_backend, "memory": memory_backend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def store(backend) -> Store:
    return backend.store


class ClientGone(Exception):
    """What a caller's wrapper raises from the chunk iterator (disconnect, size cap)."""


def pattern(n: int, seed: int = 0) -> bytes:
    block = bytes((seed + i) % 251 for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


def split(data: bytes, sizes: list[int]):
    pos = 0
    for n in sizes:
        yield data[pos : pos + n]
        pos += n
    yield data[pos:]


def read_all(store: Store, location: str, **kwargs) -> bytes:
    chunks, _ = store.get(location, **kwargs)
    try:
        return b"".join(chunks)
    finally:
        chunks.close()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_add_then_get_returns_the_same_bytes_with_their_md5_and_size(store):
    data = pattern(300_000)
    result = store.add(IMAGE_ID, iter([data]), len(data))
    assert result.size == len(data)
    assert result.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert result.location.partition("://")[0] in store.schemes
    assert isinstance(result.metadata, dict)
    chunks, size = store.get(result.location)
    assert size == len(data)
    assert b"".join(chunks) == data


def test_an_empty_image_has_size_0_and_the_md5_of_nothing(store):
    result = store.add(IMAGE_ID, iter([]), 0)
    assert (result.size, result.checksum) == (0, EMPTY_MD5)
    assert read_all(store, result.location) == b""
    assert store.get_size(result.location) == 0


def test_chunks_of_odd_sizes_are_stored_in_order(store):
    data = pattern(3 * WRITE_BUFFER + 12345, seed=7)
    sizes = [1, 0, 3, 65537, 7, WRITE_BUFFER + 1, 2, WRITE_BUFFER - 5, 0, 999]
    result = store.add(IMAGE_ID, split(data, sizes), None)
    assert result.size == len(data)
    assert result.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert read_all(store, result.location) == data


def test_many_tiny_chunks_are_stored_in_order(store):
    data = pattern(5000, seed=3)
    result = store.add(IMAGE_ID, split(data, [1] * 4999), None)
    assert read_all(store, result.location) == data


def test_a_reused_bytearray_chunk_is_copied_before_it_changes(store):
    buf = bytearray(1000)

    def chunks():
        for i in range(5):
            buf[:] = bytes([i]) * 1000
            yield buf

    result = store.add(IMAGE_ID, chunks(), None)
    assert read_all(store, result.location) == b"".join(bytes([i]) * 1000 for i in range(5))


def test_get_with_a_chunk_size_yields_pieces_no_bigger(store):
    data = pattern(10_000)
    location = store.add(IMAGE_ID, iter([data]), None).location
    chunks, _ = store.get(location, chunk_size=3000)
    pieces = list(chunks)
    assert [len(p) for p in pieces] == [3000, 3000, 3000, 1000]
    assert b"".join(pieces) == data


@pytest.mark.parametrize("offset", [0, 1, 4095, 9999, 10_000])
def test_get_from_an_offset_skips_the_first_bytes(store, offset):
    data = pattern(10_000, seed=5)
    location = store.add(IMAGE_ID, iter([data]), None).location
    chunks, size = store.get(location, offset=offset)
    assert size == len(data) - offset
    assert b"".join(chunks) == data[offset:]


def test_get_from_beyond_the_end_yields_nothing(store):
    location = store.add(IMAGE_ID, iter([b"abc"]), None).location
    chunks, size = store.get(location, offset=10)
    assert (list(chunks), size) == ([], 0)


@pytest.mark.parametrize("good_bytes", [0, 10, 3 * WRITE_BUFFER + 17])
def test_a_failing_iterator_propagates_and_leaves_nothing_behind(backend, good_bytes):
    failure = ClientGone("client went away")

    def chunks():
        yield from split(pattern(good_bytes), [65536] * (good_bytes // 65536))
        raise failure

    with pytest.raises(ClientGone) as caught:
        backend.store.add(IMAGE_ID, chunks(), None)
    assert caught.value is failure
    assert backend.leftovers() == []
    assert backend.store.add(IMAGE_ID, iter([b"again"]), None).size == 5


def test_a_base_exception_from_the_iterator_also_leaves_nothing(backend):
    def chunks():
        yield b"x" * 100
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backend.store.add(IMAGE_ID, chunks(), None)
    assert backend.leftovers() == []


def test_adding_an_existing_image_is_a_duplicate_and_keeps_the_first(backend):
    store = backend.store
    location = store.add(IMAGE_ID, iter([b"first"]), None).location
    held = backend.leftovers()
    consumed = []

    def chunks():
        consumed.append(True)
        yield b"second"

    with pytest.raises(Duplicate) as caught:
        store.add(IMAGE_ID, chunks(), None)
    assert caught.value.status == 409
    assert str(caught.value) == f"Image {IMAGE_ID} already exists in the store"
    assert consumed == []
    assert read_all(store, location) == b"first"
    assert backend.leftovers() == held


def test_deleted_data_is_not_found_afterwards(backend):
    store = backend.store
    location = store.add(IMAGE_ID, iter([b"data"]), None).location
    store.delete(location)
    assert backend.leftovers() == []
    with pytest.raises(StoreNotFound) as caught:
        store.get(location)
    assert caught.value.status == 404
    assert str(caught.value) == f"Image data not found at {store.redact(location)}"
    with pytest.raises(StoreNotFound):
        store.get_size(location)


def test_deleting_missing_data_is_not_found(store):
    location = store.add(IMAGE_ID, iter([b"data"]), None).location
    store.delete(location)
    with pytest.raises(StoreNotFound):
        store.delete(location)


def test_get_size_reports_the_stored_byte_count(store):
    location = store.add(IMAGE_ID, split(pattern(70_001), [50_000]), None).location
    assert store.get_size(location) == 70_001


def test_closing_the_iterator_early_releases_it(store):
    location = store.add(IMAGE_ID, iter([pattern(200_000)]), None).location
    before = fd_count()
    chunks, _ = store.get(location, chunk_size=1000)
    assert len(next(chunks)) == 1000
    chunks.close()
    assert fd_count() <= before  # a driver may close a connection it kept open
    assert list(chunks) == []
    chunks.close()  # a second close is harmless


def test_draining_the_iterator_releases_it(store):
    location = store.add(IMAGE_ID, iter([b"data"]), None).location
    before = fd_count()
    chunks, _ = store.get(location)
    assert list(chunks) == [b"data"]
    assert fd_count() <= before


def test_a_location_of_another_scheme_is_a_bad_uri(store):
    for call in (store.get, store.get_size, store.delete):
        with pytest.raises(BadStoreUri) as caught:
            call("nosuch://x/y")
        assert caught.value.status == 400


def test_two_images_are_kept_apart(store):
    first = store.add(IMAGE_ID, iter([b"one"]), None)
    second = store.add("another-image", iter([b"two"]), None)
    assert first.location != second.location
    store.delete(first.location)
    assert read_all(store, second.location) == b"two"


class Body:
    """A source with readinto() besides iteration, as an upload's request body is: at
    most `step` bytes per read (what a socket has at hand), then `failure` raised if
    given. `ways` tells how a store read it: one way only, the contract says."""

    def __init__(self, data: bytes, step: int, failure: Exception | None = None):
        self._data = memoryview(data)
        self._step = step
        self._failure = failure
        self.ways: set[str] = set()

    def __iter__(self):
        self.ways.add("iterated")
        while chunk := self._take(self._step):
            yield bytes(chunk)

    def readinto(self, buffer) -> int:
        self.ways.add("readinto")
        chunk = self._take(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _take(self, n: int) -> memoryview:
        if not self._data and self._failure is not None:
            raise self._failure
        chunk = self._data[: min(n, self._step)]
        self._data = self._data[len(chunk) :]
        return chunk


@pytest.mark.parametrize("size", [0, 1, WRITE_BUFFER, 2 * WRITE_BUFFER + 4097])
def test_a_body_with_readinto_is_stored_whole_read_one_way(store, size):
    data = pattern(size, seed=11)
    source = Body(data, 65_521)
    result = store.add(IMAGE_ID, source, size)
    assert (result.size, result.checksum) == (
        size,
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    assert read_all(store, result.location) == data
    assert len(source.ways) == 1
    if isinstance(store, FilesystemStore):  # which receives into its write buffers
        assert source.ways == {"readinto"}


@pytest.mark.parametrize("good_bytes", [0, 10, WRITE_BUFFER + 17])
def test_a_body_failing_midway_propagates_and_leaves_nothing_behind(backend, good_bytes):
    failure = ClientGone("client went away")
    with pytest.raises(ClientGone) as caught:
        backend.store.add(IMAGE_ID, Body(pattern(good_bytes), 65_521, failure), None)
    assert caught.value is failure
    assert backend.leftovers() == []
