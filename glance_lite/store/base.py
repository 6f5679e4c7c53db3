"""The driver interface every image store implements, its errors, and the registry of drivers.

A driver streams: `add` consumes an iterator of chunks once, `get` hands back an iterator
that the WSGI server drains and closes. Drivers expose `add`, `get`, `delete` and
`get_size`; then `redact` for locations that carry credentials, `open_to_clients` (may a
client name a location of it), `discard_partial`, the clean-up after an upload that
died, and `set_acls` for a store that keeps access lists of its own (with defaults for
stores that need none of them).
"""

import abc
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

from glance_lite import exceptions

LOG = logging.getLogger(__name__)


def readinto_of(chunks: Iterable[bytes]) -> Callable[[memoryview], int]:
    """A readinto(buffer) -> int over `chunks` (0 at the end): its own where it has one
    (see Store.add), else one that copies its iterated chunks in. A chunk is used up
    before the next is asked for, so a source may reuse its buffer once it yields again;
    its errors pass through unchanged."""
    readinto = getattr(chunks, "readinto", None)
    if readinto is not None:
        return readinto
    pieces = iter(chunks)
    pending = memoryview(b"")

    def copy_into(view: memoryview) -> int:
        nonlocal pending
        while not pending:
            chunk = next(pieces, None)
            if chunk is None:
                return 0
            pending = memoryview(chunk)
        taken = min(len(view), len(pending))
        view[:taken] = pending[:taken]
        pending = pending[taken:] if taken < len(pending) else memoryview(b"")
        return taken

    return copy_into


def read_full(readinto: Callable[[memoryview], int], buffer) -> int:
    """Fill `buffer` with a source's readinto() (see Store.add) until it is full or the
    source ends: how many bytes it now holds."""
    filled = 0
    with memoryview(buffer) as view:
        while filled < len(view):
            got = readinto(view[filled:])
            if not got:
                break
            filled += got
    return filled


class StoreNotFound(exceptions.NotFound):
    def __init__(self, location: str):
        super().__init__(f"Image data not found at {location}")


class Duplicate(exceptions.Conflict):
    def __init__(self, image_id: str):
        super().__init__(f"Image {image_id} already exists in the store")


class StorageFull(exceptions.LimitExceeded):
    def __init__(self, detail: str = "There is not enough disk space on the image storage media."):
        super().__init__(f"Image storage media is full: {detail}")


class StorageWriteDenied(exceptions.ServiceUnavailable):
    def __init__(self, detail: str = "Permission to write image storage media denied."):
        super().__init__(f"Insufficient permissions on image storage media: {detail}")


class BackendUnavailable(exceptions.ServiceUnavailable):
    """The store's server cannot be reached, refuses our credentials, or fails (503)."""


class ShortData(exceptions.GlanceLiteError):
    """The data being read ended before the length `get` gave for it (it shrank)."""

    def __init__(self, location: str, missing: int):
        super().__init__(f"Image data at {location} ended {missing} bytes before its length")


class UnknownScheme(exceptions.Invalid):
    def __init__(self, scheme: str):
        super().__init__(f"Unknown scheme '{scheme}' found in URI")
        self.scheme = scheme


class StoreAddDisabled(exceptions.GlanceLiteError):
    status = 410
    message = "Error in store configuration. Adding images to store is disabled."


class BadStoreUri(exceptions.Invalid):
    def __init__(self, detail: str):
        super().__init__(f"The Store URI was malformed: {detail}")


@dataclasses.dataclass(frozen=True)
class AddResult:
    location: str
    size: int
    checksum: str  # md5 hex digest of the bytes written
    metadata: dict = dataclasses.field(default_factory=dict)


class ImageChunks(Iterator[bytes]):
    """What `get` returns first: an iterator that also has `close()` (PEP 3333 app_iter)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the iterator holds (its file handle); later iteration yields nothing."""


class RemoteChunks(ImageChunks):
    """A remote object's body in pieces: exactly `length` bytes, or ShortData when the
    body ends (or its connection breaks) before, never a clean short end. Subclasses
    read a piece with `_read(at_most)` (b"" at the end) and let go of the body in
    `_release(complete)`, told whether it was read to its end."""

    def __init__(self, length: int, shown: str):
        self._left = length
        self._shown = shown  # the location as it may be logged
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._closed or not self._left:
            self.close()
            raise StopIteration
        try:
            chunk = self._read(self._left)
        except Exception as err:
            LOG.error("reading %s failed: %s", self._shown, err)
            chunk = b""
        if not chunk:
            err = ShortData(self._shown, self._left)
            LOG.error("%s: the reader stops short", err)
            self.close()
            raise err
        chunk = chunk[: self._left]
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release(complete=not self._left)

    @abc.abstractmethod
    def _read(self, at_most: int) -> bytes:
        """The next piece of at most `at_most` bytes; b"" at the end."""

    @abc.abstractmethod
    def _release(self, complete: bool) -> None:
        """Let go of the body (once)."""


class Store(abc.ABC):
    schemes: tuple[str, ...] = ()
    keeps_acls = False  # True where set_acls gives the store's data access lists

    @abc.abstractmethod
    def add(self, image_id: str, chunks: Iterable[bytes], size: int | None) -> AddResult:
        """Store the bytes of `chunks` as image `image_id`, all or nothing.

        `size` is the size the client declared, if any; the caller checks it against
        the returned size. An exception raised by `chunks` propagates unchanged, after
        everything written so far has been removed. `chunks` may also have
        readinto(buffer) -> int (the bytes put in, 0 at the end; an upload's request body
        has it): a store that fills buffers of its own may read with that instead of
        iterating, never both.
        """

    @abc.abstractmethod
    def get(
        self, location: str, offset: int = 0, chunk_size: int | None = None
    ) -> tuple[ImageChunks, int | None]:
        """An iterator over the data at `location` from `offset`, and its length if known.

        A known length is kept to: the iterator gives no more bytes than that, and raises
        ShortData when the data ends before it, never ending early as if complete.
        """

    @abc.abstractmethod
    def delete(self, location: str) -> None:
        """Remove the data at `location`; StoreNotFound if there is none."""

    @abc.abstractmethod
    def get_size(self, location: str) -> int:
        """The size in bytes of the data at `location`; StoreNotFound if there is none."""

    def redact(self, location: str) -> str:
        """`location` as it may be shown or logged: without the credentials it carries.

        Drivers whose locations hold credentials (user and key in a URL) override this."""
        return location

    def open_to_clients(self, location: str) -> bool:
        """Whether glance-api may reach `location` because a client named it
        (x-image-meta-location, x-glance-api-copy-from). False unless the driver knows the
        connection cannot go where the operator did not mean it to: a client must not
        make the api connect to an address of the client's choosing (SSRF)."""
        return False

    def set_acls(
        self, location: str, *, public: bool, read_tenants: list[str], write_tenants: list[str]
    ) -> None:
        """Make the data at `location` readable by anyone if `public`, else by the
        `read_tenants`, and writable by the `write_tenants` (the image's members, split by
        can_share), in the store's own access lists; StoreNotFound if there is no data.

        glance-api calls it, on a driver that sets `keeps_acls`, when an image gets data
        or a location, when its is_public changes and when its members do. None of the
        built-in stores keeps such lists in the single-tenant model (glance-api alone
        decides who reads an image), so this default does nothing."""
        return None

    def discard_partial(self, image_id: str, partial_location: str | None) -> None:
        """Remove what an interrupted upload of `image_id` left here, where this store
        can find it: at `partial_location` when the upload recorded one with its lease
        (api/leases.py). Called once the registry killed the image; a driver that finds
        partial data by itself overrides it."""
        if partial_location is not None:
            with contextlib.suppress(StoreNotFound):
                self.delete(partial_location)


def scheme_of(location: str) -> str:
    scheme, sep, _ = location.partition("://")
    if not sep or not scheme:
        raise BadStoreUri(f"no scheme in {location!r}")
    return scheme.lower()


class Stores:
    """The configured drivers, found by URI scheme, and the one new uploads go to."""

    def __init__(self, drivers: Mapping[str, Store], default: str):
        self._drivers = dict(drivers)
        self._by_scheme: dict[str, Store] = {}
        for name, driver in self._drivers.items():
            for scheme in driver.schemes:
                if scheme in self._by_scheme:
                    raise exceptions.ConfigError(
                        f"Store scheme '{scheme}' is claimed by more than one store ({name})"
                    )
                self._by_scheme[scheme] = driver
        if default not in self._by_scheme:
            raise exceptions.ConfigError(
                f"[glance_store] default_store '{default}' is not one of the enabled stores' "
                "schemes "
                f"({', '.join(sorted(self._by_scheme)) or 'none'})"
            )
        self.default = self._by_scheme[default]

    @property
    def schemes(self) -> frozenset[str]:
        return frozenset(self._by_scheme)

    def for_scheme(self, scheme: str) -> Store:
        try:
            return self._by_scheme[scheme]
        except KeyError:
            raise UnknownScheme(scheme) from None

    def for_location(self, location: str) -> Store:
        return self.for_scheme(scheme_of(location))

    def redact(self, location: str) -> str:
        """`location` without its credentials, by its store's rules; a location of no
        enabled store shows only its scheme, as nothing is known of what it holds (`***`,
        not `<redacted>`: webob drops what looks like a tag from its plain-text errors)."""
        try:
            return self.for_location(location).redact(location)
        except (UnknownScheme, BadStoreUri):
            scheme = location.partition("://")[0] if "://" in location else "?"
            return f"{scheme}://***"

    def discard_partial(self, image_id: str, partial_location: str | None) -> None:
        """Remove the partial data of a killed upload: from the store of
        `partial_location` when there is one, else from every store that can find it."""
        if partial_location is not None:
            self.for_location(partial_location).discard_partial(image_id, partial_location)
            return
        for driver in {id(d): d for d in self._drivers.values()}.values():
            driver.discard_partial(image_id, None)
