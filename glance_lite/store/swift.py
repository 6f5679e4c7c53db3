"""The `swift` store: images as objects in one container of one Swift account.

Written as Glance's swift store writes them, so that each reads the other's data: an
image of known size under `swift_store_large_object_size` is one object named by the
image id; a larger one, or one of unknown size (a chunked upload), is written as
segments `<id>-00001`, `<id>-00002`... of `swift_store_large_object_chunk_size` each
and then a zero-byte manifest object `<id>` with `X-Object-Manifest: <container>/<id>-`
(a dynamic large object, which Swift serves as the segments joined). Locations are in
swift_account.py.

Streaming: each piece of the upload is counted and handed on as it comes (chunked
transfer to Swift), so memory stays flat whatever the size. The checksum of a single
object is the ETag Swift answers with (the md5 of what it stored, as Glance's swift
store takes it); the pieces of a segmented image are hashed here, as Glance does. An
upload that fails midway leaves nothing: Swift never stores an object whose body was
cut off, and the segments already written are deleted. A download is the object's body
read in pieces, with `Range` for an offset.

Faults: Swift unreachable, credentials refused, a 5xx or a missing container are
BackendUnavailable (503) with a message naming the account (never its key); the
same is logged as a warning at start-up. Connections (with their token) are kept per
account and reused; network I/O is green under the servers' eventlet, so nothing
here needs the offload.
"""

import collections
import contextlib
import hashlib
import logging
from collections.abc import Iterable, Iterator

from oslo_config import cfg

from glance_lite import exceptions, opts
from glance_lite.offload import DIRECT, Offload
from glance_lite.store import swift_account
from glance_lite.store.base import (
    AddResult,
    BackendUnavailable,
    BadStoreUri,
    Duplicate,
    ImageChunks,
    RemoteChunks,
    StorageFull,
    Store,
    StoreNotFound,
)
from glance_lite.store.swift_account import Account, SwiftLocation

try:  # the extra glance-lite[swift]; from_conf says so when it is missing
    import requests
    import swiftclient
    from keystoneauth1 import exceptions as ks_exceptions
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v2 as ks_v2
    from keystoneauth1.identity import v3 as ks_v3
except ImportError:  # pragma: no cover - exercised by the start-up error only
    swiftclient = None

LOG = logging.getLogger(__name__)

MB = 1000 * 1024  # Glance's "MB" for the large-object options
READ_CHUNK = 1024 * 1024
IDLE_CONNECTIONS = 8  # kept per account; more are made (and dropped) under load
STARTUP_TIMEOUT = 5.0  # seconds the start-up check waits for Swift
INTERFACES = {"publicURL": "public", "adminURL": "admin", "internalURL": "internal"}


@contextlib.contextmanager
def _swift_errors(account: Account, shown: str) -> Iterator[None]:
    """Swift's and the network's errors as the store errors the api answers with."""
    try:
        yield
    except swiftclient.ClientException as err:
        status = err.http_status
        if status == 404:
            raise StoreNotFound(shown) from None
        if status in (401, 403):
            raise BackendUnavailable(
                f"Swift refused the credentials of {account.shown} ({status})"
            ) from None
        if status in (413, 507):
            raise StorageFull(f"Swift answered {status} {err.http_reason or ''}".strip()) from None
        detail = f"{status} {err.http_reason or ''}".strip() if status else err.msg
        raise BackendUnavailable(f"Swift at {account.auth_address} failed: {detail}") from None
    except (ks_exceptions.Unauthorized, ks_exceptions.Forbidden) as err:
        raise BackendUnavailable(
            f"Keystone refused the credentials of {account.shown}: {err}"
        ) from None
    except ks_exceptions.ClientException as err:
        raise BackendUnavailable(f"Keystone at {account.auth_address} failed: {err}") from None
    except (OSError, requests.RequestException) as err:
        raise BackendUnavailable(
            f"Swift at {account.auth_address} is unreachable: {type(err).__name__}"
        ) from None


class _Connections:
    """Idle swiftclient connections of one account, each with its token."""

    def __init__(self, account: Account, settings: dict):
        self.account = account
        self._settings = settings
        self._idle: collections.deque = collections.deque()

    def take(self):
        try:
            return self._idle.pop()
        except IndexError:
            return self._new()

    def give_back(self, conn) -> None:
        if len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append(conn)
        else:
            conn.close()

    @contextlib.contextmanager
    def connection(self, shown: str):
        conn = self.take()
        ok = False
        try:
            with _swift_errors(self.account, shown):
                yield conn
            ok = True
        finally:
            if ok:
                self.give_back(conn)
            else:
                conn.close()  # its HTTP connection may be mid-request

    def _new(self):
        account, s = self.account, self._settings
        os_options = {"service_type": s["service_type"], "endpoint_type": s["interface"]}
        if s["region"]:
            os_options["region_name"] = s["region"]
        if s["endpoint"]:
            os_options["object_storage_url"] = s["endpoint"]
        common = dict(
            retries=1,
            starting_backoff=0.1,
            max_backoff=1,
            cacert=s["cacert"],
            insecure=s["insecure"],
            ssl_compression=s["ssl_compression"],
            timeout=s["timeout"],
            os_options=os_options,
            retry_on_ratelimit=False,
        )
        if account.auth_version == "1":
            return swiftclient.Connection(
                account.auth_address, account.user, account.key, auth_version="1", **common
            )
        return swiftclient.Connection(session=keystone_session(account, s), **common)


def keystone_session(account: Account, settings: dict):
    """A keystoneauth session for a version 2 or 3 account (`project:user`)."""
    project, _, user = account.user.partition(":")
    if account.auth_version == "2":
        auth = ks_v2.Password(
            auth_url=account.auth_address, username=user, password=account.key, tenant_name=project
        )
    else:
        auth = ks_v3.Password(
            auth_url=account.auth_address,
            username=user,
            password=account.key,
            project_name=project,
            user_domain_id=account.user_domain_id,
            user_domain_name=account.user_domain_name,
            project_domain_id=account.project_domain_id,
            project_domain_name=account.project_domain_name,
        )
    verify = settings["cacert"] or not settings["insecure"]
    return ks_session.Session(auth=auth, verify=verify, timeout=settings["timeout"])


class SwiftStore(Store):
    schemes = swift_account.SCHEMES

    def __init__(
        self,
        references: dict[str, Account],
        default_reference: str,
        *,
        container: str = "glance",
        create_container: bool = False,
        large_object_size: int = 5120 * MB,
        chunk_size: int = 200 * MB,
        by_reference: bool = False,
        settings: dict | None = None,
    ):
        """`references`: the accounts by name; new images go to `default_reference`'s.
        `by_reference`: locations name the account (swift+config) instead of carrying
        its credentials. Sizes are in bytes."""
        if default_reference not in references:
            raise exceptions.ConfigError(
                f"Swift account reference '{default_reference}' (default_swift_reference) "
                "is not configured"
            )
        self._references = dict(references)
        self._reference = default_reference
        self.account = references[default_reference]
        self._container = container
        self._create_container = create_container
        self._large_object_size = large_object_size
        self._chunk_size = chunk_size
        self._by_reference = by_reference
        self._settings = {
            "service_type": "object-store",
            "interface": "public",
            "region": None,
            "endpoint": None,
            "cacert": None,
            "insecure": False,
            "ssl_compression": True,
            "timeout": 60.0,
            **(settings or {}),
        }
        self._pools: dict[Account, _Connections] = {}
        self._container_seen = False

    # -- the four verbs

    def add(self, image_id: str, chunks: Iterable[bytes], size: int | None) -> AddResult:
        if not image_id or "/" in image_id:
            raise exceptions.Invalid(f"Invalid image id for the swift store: {image_id!r}")
        location = SwiftLocation(
            self.account,
            self._container,
            image_id,
            reference=self._reference if self._by_reference else None,
        )
        shown = location.redacted()
        pool = self._pool(self.account)
        with pool.connection(shown) as conn:
            self._ensure_container(conn)
            if self._exists(conn, image_id):
                raise Duplicate(image_id)
        if size is not None and size < self._large_object_size:
            source = _Pieces(chunks, hashed=False)
            checksum = self._put_single(pool, location, source, shown)
        else:
            source = _Pieces(chunks, hashed=True)
            self._put_segments(pool, location, source, shown)
            checksum = source.md5.hexdigest()
        return AddResult(location.uri(), source.size, checksum, {})

    def get(
        self, location: str, offset: int = 0, chunk_size: int | None = None
    ) -> tuple[ImageChunks, int | None]:
        if offset < 0:
            raise exceptions.Invalid(f"Negative offset into image data: {offset}")
        loc = self._parse(location)
        shown = loc.redacted()
        pool = self._pool(loc.account)
        headers = {"Range": f"bytes={offset}-"} if offset else None
        conn = pool.take()
        try:
            with _swift_errors(loc.account, shown):
                try:
                    resp_headers, body = conn.get_object(
                        loc.container,
                        loc.obj,
                        resp_chunk_size=chunk_size or READ_CHUNK,
                        headers=headers,
                    )
                except swiftclient.ClientException as err:
                    if err.http_status != 416:  # an offset at or past the end
                        raise
                    self._head(conn, loc)  # the object exists: nothing to read from there
                    pool.give_back(conn)
                    return _SwiftChunks(None, 0, shown, None), 0
        except BaseException:
            conn.close()
            raise
        length = int(resp_headers.get("content-length", 0))
        return _SwiftChunks(body, length, shown, lambda: pool.give_back(conn)), length

    def delete(self, location: str) -> None:
        loc = self._parse(location)
        shown = loc.redacted()
        with self._pool(loc.account).connection(shown) as conn:
            headers = self._head(conn, loc)
            if headers.get("x-static-large-object", "").lower() == "true":
                conn.delete_object(loc.container, loc.obj, query_string="multipart-manifest=delete")
                return
            manifest = headers.get("x-object-manifest")
            if manifest:
                self._delete_segments(conn, *manifest.split("/", 1))
            conn.delete_object(loc.container, loc.obj)

    def get_size(self, location: str) -> int:
        loc = self._parse(location)
        with self._pool(loc.account).connection(loc.redacted()) as conn:
            return int(self._head(conn, loc).get("content-length", 0))

    def redact(self, location: str) -> str:
        return swift_account.redact(location)

    def open_to_clients(self, location: str) -> bool:
        """Only a location on a configured account's auth address: any other would make
        glance-api send a request, with credentials of the client's choosing, to any
        address the client names."""
        try:
            named = self._parse(location).account.auth_address.rstrip("/")
        except BadStoreUri:
            return False
        return named in {a.auth_address.rstrip("/") for a in self._references.values()}

    # -- start-up

    def check(self) -> None:
        """Authenticate and look at the container once (start-up): warn, never fail, so
        that the api starts while Swift is away and answers 503 until it is back."""
        conn = self._pool(self.account)._new()
        conn.timeout = STARTUP_TIMEOUT
        try:
            with _swift_errors(self.account, self._container):
                conn.head_container(self._container)
        except StoreNotFound:
            if not self._create_container:
                LOG.warning(
                    "Swift container '%s' of %s does not exist and "
                    "swift_store_create_container_on_put is false: uploads will fail",
                    self._container,
                    self.account.shown,
                )
        except BackendUnavailable as err:
            LOG.warning("swift store: %s; uploads and downloads fail until it works", err)
        finally:
            conn.close()

    # -- writing

    def _put_single(self, pool, location: SwiftLocation, source, shown: str) -> str:
        """Write one object; its checksum is the ETag Swift answers with, the md5 of
        the bytes it stored, as Glance's swift store takes it: hashing here too would
        double the work of every upload under 5 GiB."""
        with source.guard(), pool.connection(shown) as conn:
            etag = conn.put_object(location.container, location.obj, source)
        etag = (etag or "").strip('"').lower()
        if len(etag) != 32 or not all(c in "0123456789abcdef" for c in etag):
            self._remove_quietly(pool, location.container, [location.obj], shown)
            raise BackendUnavailable(
                f"Swift stored {shown} without an md5 ETag ({etag or 'none'}): "
                "its checksum is unknown"
            )
        return etag

    def _put_segments(self, pool, location: SwiftLocation, source, shown: str) -> None:
        written: list[str] = []
        try:
            with source.guard(), pool.connection(shown) as conn:
                while source.has_more():
                    name = f"{location.obj}-{len(written) + 1:05d}"
                    written.append(name)  # before the PUT: a failed one may still have landed
                    conn.put_object(location.container, name, source.up_to(self._chunk_size))
                conn.put_object(
                    location.container,
                    location.obj,
                    None,
                    headers={
                        "X-Object-Manifest": f"{location.container}/{location.obj}-",
                        "ETag": hashlib.md5(b"", usedforsecurity=False).hexdigest(),
                    },
                )
        except BaseException:
            LOG.warning("upload to %s failed: removing its %d segment(s)", shown, len(written))
            self._remove_quietly(pool, location.container, written, shown)
            raise

    def _remove_quietly(self, pool, container: str, names: list[str], shown: str) -> None:
        for name in names:
            try:
                with pool.connection(shown) as conn:
                    conn.delete_object(container, name)
            except StoreNotFound:
                pass
            except Exception as err:  # the upload's own error is the one to report
                LOG.error("could not remove %s/%s of %s: %s", container, name, shown, err)

    def _ensure_container(self, conn) -> None:
        if self._container_seen:
            return
        try:
            conn.head_container(self._container)
        except swiftclient.ClientException as err:
            if err.http_status != 404:
                raise
            if not self._create_container:
                raise BackendUnavailable(
                    f"The container {self._container} does not exist in Swift. Please set "
                    "the swift_store_create_container_on_put option to add container to "
                    "Swift automatically."
                ) from None
            LOG.info("Creating swift container %s", self._container)
            conn.put_container(self._container)
        self._container_seen = True

    # -- reading

    def _exists(self, conn, obj: str) -> bool:
        try:
            conn.head_object(self._container, obj)
        except swiftclient.ClientException as err:
            if err.http_status == 404:
                return False
            raise
        return True

    @staticmethod
    def _head(conn, loc: SwiftLocation) -> dict:
        return conn.head_object(loc.container, loc.obj)

    @staticmethod
    def _delete_segments(conn, container: str, prefix: str) -> None:
        _, listing = conn.get_container(container, prefix=prefix, full_listing=True)
        for segment in listing:
            try:
                conn.delete_object(container, segment["name"])
            except swiftclient.ClientException as err:
                if err.http_status != 404:  # another delete got there first
                    raise

    def _parse(self, location: str) -> SwiftLocation:
        return swift_account.parse(location, self._references, self.account)

    def _pool(self, account: Account) -> _Connections:
        pool = self._pools.get(account)
        if pool is None:
            pool = self._pools[account] = _Connections(account, self._settings)
        return pool


class _Pieces:
    """The upload's chunks, counted (and hashed, when `hashed`) as Swift takes them;
    cut into segments with `up_to`. An error raised by the chunks is kept and raised
    again by `guard`, unchanged, whatever the HTTP client made of it."""

    def __init__(self, chunks: Iterable[bytes], *, hashed: bool):
        self._chunks = iter(chunks)
        self._pending = b""
        self._done = False
        self.md5 = hashlib.md5(usedforsecurity=False) if hashed else None
        self.size = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self._next()
            if chunk is None:
                return
            yield chunk

    def has_more(self) -> bool:
        if not self._pending:
            self._pending = self._next() or b""
        return bool(self._pending)

    def up_to(self, limit: int) -> Iterator[bytes]:
        left = limit
        while left:
            chunk = self._next()
            if chunk is None:
                return
            if len(chunk) > left:
                chunk, self._pending = chunk[:left], chunk[left:]
            left -= len(chunk)
            yield chunk

    def _next(self) -> bytes | None:
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        while not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                return None
            except BaseException as err:
                self.error = err
                raise
            if chunk:
                chunk = bytes(chunk)  # a reused buffer may change once handed on
                if self.md5 is not None:
                    self.md5.update(chunk)
                self.size += len(chunk)
                return chunk
        return None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if self.error is not None:
                raise self.error from None
            raise


class _SwiftChunks(RemoteChunks):
    """An object's body; its connection goes back to the pool once the body is read to
    its end, and is closed otherwise (it cannot carry another request mid-body)."""

    def __init__(self, body, length: int, shown: str, give_back):
        super().__init__(length, shown)
        self._body = body
        self._give_back = give_back

    def _read(self, at_most: int) -> bytes:
        return next(self._body, b"") if self._body is not None else b""

    def _release(self, complete: bool) -> None:
        if self._body is not None:
            self._body.close()
            if complete:
                self._give_back()


def from_conf(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> SwiftStore:
    """The swift store of `[glance_store]` (the entry point `swift`)."""
    if swiftclient is None:
        raise exceptions.ConfigError(
            "The swift store needs python-swiftclient and keystoneauth1: "
            "pip install 'glance-lite[swift]'"
        )
    opts.register_store_opts(conf)
    opts.register_swift_store_opts(conf)
    group = conf[opts.STORE_GROUP]
    if group.swift_store_config_file:
        path = conf.find_file(group.swift_store_config_file) or group.swift_store_config_file
        references = swift_account.references_from_file(path, group.swift_store_auth_version)
    elif group.swift_store_auth_address and group.swift_store_user and group.swift_store_key:
        references = {
            group.default_swift_reference: Account(
                group.swift_store_auth_address,
                group.swift_store_user,
                group.swift_store_key,
                auth_version=group.swift_store_auth_version,
            )
        }
    else:
        raise exceptions.ConfigError(
            "The swift store needs an account: swift_store_config_file with "
            "default_swift_reference, or swift_store_auth_address, swift_store_user and "
            "swift_store_key"
        )
    store = SwiftStore(
        references,
        group.default_swift_reference,
        container=group.swift_store_container,
        create_container=group.swift_store_create_container_on_put,
        large_object_size=group.swift_store_large_object_size * MB,
        chunk_size=group.swift_store_large_object_chunk_size * MB,
        by_reference=bool(group.swift_store_config_file),
        settings={
            "service_type": group.swift_store_service_type,
            "interface": INTERFACES[group.swift_store_endpoint_type],
            "region": group.swift_store_region,
            "endpoint": group.swift_store_endpoint,
            "cacert": group.swift_store_cacert,
            "insecure": group.swift_store_auth_insecure,
            "ssl_compression": group.swift_store_ssl_compression,
            "timeout": group.swift_store_timeout,
        },
    )
    store.check()
    return store
