"""The `memory` store: image data kept in a dict, for the unit tests of callers only.

It holds every image whole in memory by design, so it must never serve real traffic.
It behaves like the filesystem store otherwise (same errors, all-or-nothing adds), and
can be made to fail as a full or read-only store so callers can test those paths.
"""

import hashlib
from collections.abc import Iterable, Iterator

from glance_lite import exceptions
from glance_lite.store.base import (
    AddResult,
    BadStoreUri,
    Duplicate,
    ImageChunks,
    StorageFull,
    Store,
    StoreAddDisabled,
    StoreNotFound,
)

PREFIX = "memory://"


class MemoryStore(Store):
    schemes = ("memory",)

    def __init__(
        self, chunk_size: int = 65536, *, capacity: int | None = None, read_only: bool = False
    ):
        """`capacity` caps the bytes held (StorageFull beyond it); `read_only` refuses adds."""
        self._chunk_size = chunk_size
        self._capacity = capacity
        self._read_only = read_only
        self._images: dict[str, bytes] = {}

    def add(self, image_id: str, chunks: Iterable[bytes], size: int | None) -> AddResult:
        if self._read_only:
            raise StoreAddDisabled()
        if not image_id or "/" in image_id:
            raise exceptions.Invalid(f"Invalid image id for the memory store: {image_id!r}")
        if image_id in self._images:
            raise Duplicate(image_id)
        md5 = hashlib.md5(usedforsecurity=False)
        parts = []
        room = None if self._capacity is None else self._capacity - self._used()
        for chunk in chunks:
            chunk = bytes(chunk)
            if room is not None:
                room -= len(chunk)
                if room < 0:
                    raise StorageFull()
            md5.update(chunk)
            parts.append(chunk)
        if image_id in self._images:  # another add of the same id finished meanwhile
            raise Duplicate(image_id)
        data = b"".join(parts)
        self._images[image_id] = data
        return AddResult(PREFIX + image_id, len(data), md5.hexdigest(), {})

    def get(
        self, location: str, offset: int = 0, chunk_size: int | None = None
    ) -> tuple[ImageChunks, int | None]:
        if offset < 0:
            raise exceptions.Invalid(f"Negative offset into image data: {offset}")
        data = self._data(location)
        view = memoryview(data)[offset:]
        return _MemoryChunks(view, chunk_size or self._chunk_size), len(view)

    def delete(self, location: str) -> None:
        self._data(location)
        del self._images[self._image_id(location)]

    def open_to_clients(self, location: str) -> bool:
        """Its data is in this process: naming it reaches nothing outside."""
        return True

    def get_size(self, location: str) -> int:
        return len(self._data(location))

    def _used(self) -> int:
        return sum(map(len, self._images.values()))

    def _image_id(self, location: str) -> str:
        if not location.startswith(PREFIX) or "/" in location[len(PREFIX) :]:
            raise BadStoreUri(f"not a memory store location: {location!r}")
        return location[len(PREFIX) :]

    def _data(self, location: str) -> bytes:
        try:
            return self._images[self._image_id(location)]
        except KeyError:
            raise StoreNotFound(location) from None


class _MemoryChunks(ImageChunks):
    def __init__(self, view: memoryview, chunk_size: int):
        self._view: memoryview | None = view
        self._chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if not self._view:
            self.close()
            raise StopIteration
        chunk = bytes(self._view[: self._chunk_size])
        self._view = self._view[self._chunk_size :]
        return chunk

    def close(self) -> None:
        self._view = None
