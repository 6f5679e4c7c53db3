"""The `http` store: image data on a web server, read-only (http and https locations).

An image registered by location (`x-image-meta-location: https://host/path`) or the
source of a copy-from is read from its URL with `requests`: the size by HEAD (its
Content-Length), the data by GET (from an offset with a Range request), streamed in
pieces of CHUNK_SIZE bytes, so a download holds one piece whatever the image's size.

Redirects are followed here, not by requests, so that each one is checked: at most
MAX_REDIRECTS, to http or https only, and every connection (the first and each redirect's)
goes through the address guard (addresses.py): the host is resolved once, every address
it resolves to is checked, and the connection is made to one of those addresses. With a
proxy (http_proxy_information) the proxy connects, so only the check of the names is ours.

What the server answers becomes the store's errors: 404 StoreNotFound, 5xx a 502
naming the status, another 4xx or a redirect loop 400, no answer (refused, reset, timed
out after http_store_timeout) a 503. Glance's http store is read-only: `add` is refused
with StoreAddDisabled (410), and `delete` leaves the data where it is, as the server is
not ours (deleting an image registered by location never deletes what it points at).
"""

import logging
import socket
import urllib.parse
import warnings
from collections.abc import Iterable

import requests
import urllib3
from oslo_config import cfg
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, InsecureRequestWarning, NewConnectionError
from urllib3.util import connection as urllib3_connection

from glance_lite import exceptions, opts
from glance_lite.offload import DIRECT, Offload
from glance_lite.store.addresses import AddressGuard, guard_from_conf
from glance_lite.store.base import (
    AddResult,
    BadStoreUri,
    ImageChunks,
    ShortData,
    Store,
    StoreAddDisabled,
    StoreNotFound,
)

LOG = logging.getLogger(__name__)

# Glance's bound: the fifth redirect in a row is refused (four are followed).
MAX_REDIRECTS = 5
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 1024 * 1024
SCHEMES = ("http", "https")


class RemoteUnavailable(exceptions.ServiceUnavailable):
    """The server of a location did not answer (refused, unreachable, timed out)."""


class RemoteError(exceptions.GlanceLiteError):
    """The server of a location answered with a server error (5xx)."""

    status = 502


class HttpStore(Store):
    schemes = SCHEMES

    def __init__(
        self,
        guard: AddressGuard,
        *,
        timeout: float = 60.0,
        verify: bool | str = True,
        proxies: dict[str, str] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ):
        """`verify`: a CA bundle's path, True (the system's CAs) or False (no check)."""
        self.guard = guard
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.proxies = dict(proxies or {})
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy or CA from the environment: ours only
        self.session.verify = verify
        self.session.proxies = self.proxies
        adapter = GuardedAdapter(guard)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # --- the four verbs ------------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes], size: int | None) -> AddResult:
        raise StoreAddDisabled()

    def get(
        self, location: str, offset: int = 0, chunk_size: int | None = None
    ) -> tuple[ImageChunks, int | None]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._open("GET", location, headers)
        length = _content_length(resp)
        skip = 0
        if offset:
            if resp.status_code == 206:
                pass  # the server sent the rest, and its length
            elif length is not None and offset >= length:
                resp.close()
                return ResponseChunks(None, 0, 0, self.redact(location), 0), 0
            else:  # the whole body: the first `offset` bytes are dropped as they come
                skip = offset
                length = None if length is None else length - offset
        chunks = ResponseChunks(
            resp, length, chunk_size or self.chunk_size, self.redact(location), skip
        )
        return chunks, length

    def get_size(self, location: str) -> int:
        resp = self._open("HEAD", location)
        resp.close()
        length = _content_length(resp)
        if length is None:
            raise BadStoreUri(f"{self.redact(location)} gives no Content-Length to HEAD")
        return length

    def delete(self, location: str) -> None:
        LOG.info(
            "%s is on the read-only http store: its data is left in place",
            self.redact(location),
        )

    def open_to_clients(self, location: str) -> bool:
        """Every connection of this store passes the address guard (addresses.py)."""
        return True

    def redact(self, location: str) -> str:
        """Without the user and password of the URL, nor its query (a signed URL's
        query is a credential)."""
        parts = urllib.parse.urlsplit(location)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        query = "***" if parts.query else ""
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))

    # --- requests ------------------------------------------------------------------

    def _open(self, method: str, location: str, headers: dict | None = None) -> requests.Response:
        """The answer to `method` on `location`, redirects followed; raised as the
        store's errors when it is not a success."""
        url = location
        headers = {"Accept-Encoding": "identity", **(headers or {})}
        for _ in range(MAX_REDIRECTS):
            self._check_url(url, location)
            try:
                resp = self.session.request(
                    method,
                    url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=self.timeout,
                )
            except requests.Timeout:
                raise RemoteUnavailable(
                    f"The server of {self.redact(url)} did not answer within "
                    f"{self.timeout:g} seconds."
                ) from None
            except requests.exceptions.SSLError as err:
                raise RemoteError(
                    f"The TLS connection to {self.redact(url)} failed: {_reason(err)}"
                ) from None
            except requests.RequestException as err:
                LOG.info("%s %s: %s", method, self.redact(url), err)
                raise RemoteUnavailable(
                    f"Remote server where the image is present is unavailable "
                    f"({self.redact(url)}: {_reason(err)})."
                ) from None
            if resp.status_code < 300:
                return resp
            resp.close()
            target = resp.headers.get("Location")
            if resp.status_code in REDIRECT_CODES and target:
                url = urllib.parse.urljoin(url, target)
                continue
            raise _status_error(resp.status_code, self.redact(url))
        raise BadStoreUri(
            f"The HTTP URL {self.redact(location)} exceeded {MAX_REDIRECTS} maximum redirects."
        )

    def _check_url(self, url: str, location: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise BadStoreUri(
                f"{self.redact(location)} redirects to a URL that is not http or https"
            )
        if not parts.hostname:
            raise BadStoreUri(f"no host in {self.redact(url)}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise BadStoreUri(f"bad port in {self.redact(url)}") from None
        if parts.scheme in self.proxies:
            # the proxy resolves and connects: what is ours is the check of the name
            self.guard.resolve(parts.hostname, port)


def _status_error(status: int, url: str) -> exceptions.GlanceLiteError:
    if status == 404:
        return StoreNotFound(url)
    if status >= 500:
        return RemoteError(f"The server of {url} failed: it answered {status}.")
    if 300 <= status < 400:
        return BadStoreUri(f"{url} answered {status} without a usable redirect")
    return BadStoreUri(f"HTTP URL {url} returned a {status} status code.")


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _reason(err: Exception) -> str:
    """The innermost cause of a requests error, short (requests wraps urllib3's)."""
    for _ in range(5):
        if not (err.args and isinstance(err.args[0], Exception)):
            break
        err = err.args[0]
    return str(getattr(err, "reason", None) or err)


class ResponseChunks(ImageChunks):
    """The body of a GET, `chunk_size` bytes at a time, never more than `length`; the
    first `skip` bytes dropped (a server that ignored the Range request)."""

    def __init__(
        self,
        resp: requests.Response | None,
        length: int | None,
        chunk_size: int,
        location: str,
        skip: int,
    ):
        self._resp = resp
        self._remaining = length
        self._chunk_size = chunk_size
        self._location = location
        self._skip = skip

    def __next__(self) -> bytes:
        while True:
            chunk = self._read()
            if self._skip:
                dropped = min(self._skip, len(chunk))
                self._skip -= dropped
                chunk = chunk[dropped:]
                if not chunk:
                    continue
            return chunk

    def _read(self) -> bytes:
        if self._resp is None or self._remaining == 0:
            self.close()
            raise StopIteration
        want = self._chunk_size
        if self._remaining is not None:
            want = min(want, self._remaining + self._skip)
        try:
            chunk = self._resp.raw.read(want, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as err:  # ended early, timed out
            missing = self._remaining
            self.close()
            if missing and isinstance(err, urllib3.exceptions.ProtocolError):
                raise ShortData(self._location, missing) from None
            raise RemoteUnavailable(f"Reading {self._location} failed: {_reason(err)}") from None
        if not chunk:
            missing = self._remaining
            self.close()
            if missing:
                raise ShortData(self._location, missing)
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= max(0, len(chunk) - self._skip)
        return chunk

    def close(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()


# --- connections to checked addresses -----------------------------------------------


def _guarded_new_conn(self) -> socket.socket:
    """urllib3's connection, made to an address the guard checked (`self.guard`)."""
    error: Exception = OSError("no address")
    for *_, sockaddr in self.guard.resolve(self._dns_host, self.port):
        try:
            return urllib3_connection.create_connection(
                (sockaddr[0], self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError:
            error = ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            )
        except OSError as err:
            error = NewConnectionError(self, f"Failed to establish a new connection: {err}")
    raise error


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """A transport whose direct connections go through `guard` (proxies are left alone:
    the operator configured them)."""

    def __init__(self, guard: AddressGuard, **kw):
        self.guard = guard
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw) -> None:
        super().init_poolmanager(*args, **kw)
        extra = {"guard": self.guard, "_new_conn": _guarded_new_conn}
        http_conn = type("GuardedHTTPConnection", (HTTPConnection,), extra)
        https_conn = type("GuardedHTTPSConnection", (HTTPSConnection,), extra)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type(
                "GuardedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http_conn}
            ),
            "https": type(
                "GuardedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }


def from_conf(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> HttpStore:
    """The http store of `[glance_store]` (entry points `http`, `glance.store.http.Store`)."""
    opts.register_store_opts(conf)
    opts.register_http_store_opts(conf)
    group = conf[opts.STORE_GROUP]
    ca_file = group.https_ca_certificates_file
    verify: bool | str = ca_file if ca_file else not group.https_insecure
    if verify is False:
        # said once here, not on every request by urllib3
        LOG.warning(
            "https locations are read without checking their certificates "
            "([glance_store] https_insecure = true)"
        )
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    return HttpStore(
        guard_from_conf(conf),
        timeout=group.http_store_timeout,
        verify=verify,
        proxies=dict(group.http_proxy_information),
    )
