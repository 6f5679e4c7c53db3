"""The one road to image metadata for glance-api and the tools: HTTP to glance-registry.

It imports nothing from the registry's server side or the database. One pooled
requests.Session per client; the registry's errors come back as the same domain
exceptions (glance_lite.exceptions), carrying the registry's own explanation. With a
LocationCipher (metadata_encryption_key), location URLs go to the registry encrypted and
come back decrypted (glance_lite/crypt.py).

Every call has a connect timeout and a read timeout, so a registry that stops answering
(a stopped process, a partition that leaves the connection open) becomes a
RegistryUnavailable within their sum, as a dead one does at once. It says whether the
request may have reached the registry (`maybe_applied`): a write that timed out may
still be applied later, which the caller must allow for (api/repository.py).

A read (GET) whose connection fails without a timeout is sent once more: a registry
worker going away (a reload) closes a kept-alive connection it has no request on, and
a call sent on it at that moment finds it closed. A write is never sent twice: it
becomes a RegistryUnavailable that may have been applied, which the caller settles.
"""

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

import requests
import requests.adapters
import requests.structures
import urllib3
import urllib3.connection
import urllib3.exceptions

from glance_lite import exceptions
from glance_lite.context import RequestContext
from glance_lite.crypt import LocationCipher
from glance_lite.registry import credentials, headers
from glance_lite.registry.credentials import ServiceToken

LOG = logging.getLogger(__name__)

# The longest request line glance-registry reads, `GET <path> HTTP/1.1` CRLF included
# (eventlet's url_length_limit, kept by glance_lite.server): a line that long is answered
# 414 before the registry's own code runs.
REQUEST_LINE_LIMIT = 8192
REQUEST_LINE_OVERHEAD = len("GET  HTTP/1.1\r\n")


class RegistryClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | None = 600,
        connect_timeout: float | None = None,
        secret: str | None = None,
        send_identity_headers: bool = False,
        use_user_token: bool = True,
        pool_size: int = 100,
        session: requests.Session | None = None,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        cipher: LocationCipher | None = None,
        service_token: ServiceToken | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        # requests' (connect, read) pair, built once; None waits forever
        self._timeouts = (connect_timeout, timeout)
        self.secret = secret
        self.send_identity_headers = send_identity_headers
        self.use_user_token = use_user_token
        self.session = session or pooled_session(pool_size)
        self.session.verify = verify
        self.session.cert = cert
        self.cipher = cipher
        self.service_token = service_token

    # --- images --------------------------------------------------------------------

    def get_images_json(self, context: RequestContext, query: str, *, detail: bool) -> bytes:
        """The registry's listing, `{"images": [...]}` as JSON bytes as it sent them, without
        locations: what glance-api answers, so it need not be parsed and written again.

        `query` is the query string, already encoded (glance-api passes on its client's
        own encoding). One too long for the registry's request line is a 414 here.
        """
        path = "/images/detail" if detail else "/images"
        if query:
            path = f"{path}?{query}"
            if len(path) + REQUEST_LINE_OVERHEAD >= REQUEST_LINE_LIMIT:
                raise exceptions.URITooLong(
                    f"The listing's query is too long for the image registry: {len(query)} "
                    f"bytes once encoded; its request lines hold at most "
                    f"{REQUEST_LINE_LIMIT - 1} bytes"
                )
        extra = {headers.OMIT_LOCATIONS: "true"}
        return self._call(context, "GET", path, extra=extra).content

    def get_image(self, context: RequestContext, image_id: str) -> dict:
        resp = self._call(context, "GET", f"/images/{_segment(image_id)}")
        return self._opened(resp.json()["image"])

    def add_image(self, context: RequestContext, image_meta: dict) -> dict:
        resp = self._call(context, "POST", "/images", json={"image": self._sealed(image_meta)})
        return self._opened(resp.json()["image"])

    def update_image(
        self,
        context: RequestContext,
        image_id: str,
        image_meta: dict,
        *,
        purge_props: bool = False,
        from_state: str | None = None,
        storage_quota: tuple[str | None, int] | None = None,
        lease: tuple[str, int] | None = None,
        held_by: str | None = None,
    ) -> dict:
        """`storage_quota` (owner, bytes): the registry refuses the update (413) if the
        owner's images would then take more than that, checked atomically with it.
        `lease` (holder, seconds), with a status change to saving: the upload lease is
        taken in the same transaction. `held_by`: the update is made only if that holder
        holds the image's upload lease (409 otherwise)."""
        body: dict = {"image": self._sealed(image_meta)}
        if from_state is not None:
            body["from_state"] = from_state
        if storage_quota is not None:
            body["storage_quota"] = {"owner": storage_quota[0], "limit": storage_quota[1]}
        if lease is not None:
            body["lease"] = {"holder": lease[0], "duration": lease[1]}
        if held_by is not None:
            body["held_by"] = held_by
        extra = {headers.PURGE_PROPS: "true"} if purge_props else None
        resp = self._call(context, "PUT", f"/images/{_segment(image_id)}", json=body, extra=extra)
        return self._opened(resp.json()["image"])

    def delete_image(self, context: RequestContext, image_id: str) -> dict:
        resp = self._call(context, "DELETE", f"/images/{_segment(image_id)}")
        return self._opened(resp.json()["image"])

    def _sealed(self, image_meta: dict) -> dict:
        return image_meta if self.cipher is None else self.cipher.seal_image(image_meta)

    def _opened(self, image: dict) -> dict:
        return image if self.cipher is None else self.cipher.open_image(image)

    def get_storage_usage(
        self, context: RequestContext, owner: str | None, exclude_image_id: str | None = None
    ) -> int:
        """Bytes taken by `owner`'s images (None: the images that have no owner)."""
        params = {"owner": owner, "exclude_image_id": exclude_image_id}
        resp = self._call(context, "GET", "/storage-usage", params=params)
        return int(resp.json()["usage"])

    def mark_location(
        self, context: RequestContext, image_id: str, location_id: int, status: str
    ) -> None:
        """Mark one location deleted, with status `deleted` or `pending_delete`."""
        path = f"/images/{_segment(image_id)}/locations/{int(location_id)}"
        self._call(context, "DELETE", path, params={"status": status})

    def get_pending_delete(
        self, context: RequestContext, marker: str | None = None, limit: int = 1000
    ) -> list[dict]:
        """A page of the images deleted with delayed_delete, with their locations (an
        admin's call: glance-scrubber's queue), in the listing's order."""
        params = {
            "deleted": "true",
            "status": "pending_delete",
            "is_public": "none",
            "limit": str(limit),
            "marker": marker,
        }
        images = self._call(context, "GET", "/images/detail", params=params).json()["images"]
        return [self._opened(image) for image in images]

    def image_scrubbed(self, context: RequestContext, image_id: str) -> dict:
        """pending_delete -> deleted, once none of its locations is pending any more."""
        resp = self._call(context, "POST", f"/images/{_segment(image_id)}/scrubbed")
        return self._opened(resp.json()["image"])

    def restore_image(self, context: RequestContext, image_id: str) -> dict:
        """pending_delete -> active again, with what its delete retired."""
        resp = self._call(context, "POST", f"/images/{_segment(image_id)}/restore")
        return self._opened(resp.json()["image"])

    # --- upload leases ---------------------------------------------------------------

    def renew_lease(
        self,
        context: RequestContext,
        image_id: str,
        holder: str,
        duration: int,
        partial_location: str | None = None,
    ) -> dict:
        """Renew (or take) `holder`'s lease on a saving image for `duration` seconds;
        Conflict once the image is not saving or another holder (upload) has a live lease."""
        partial = self._sealed_url(partial_location)
        lease = {"holder": holder, "duration": duration, "partial_location": partial}
        path = f"/images/{_segment(image_id)}/lease"
        return self._opened_lease(self._call(context, "PUT", path, json={"lease": lease}).json())

    def release_lease(self, context: RequestContext, image_id: str, holder: str) -> None:
        path = f"/images/{_segment(image_id)}/lease"
        self._call(context, "DELETE", path, params={"holder": holder})

    def sweep_leases(self, context: RequestContext, grace: int, limit: int) -> list[dict]:
        """Kill up to `limit` saving images whose lease expired (or that have none and
        were not updated for `grace` seconds): their leases, each with `image_id`,
        `holder` and `partial_location` (an admin's call)."""
        body = {"grace": grace, "limit": limit}
        killed = self._call(context, "POST", "/leases/sweep", json=body).json()["killed"]
        return [self._opened_lease({"lease": lease}) for lease in killed]

    def _sealed_url(self, url: str | None) -> str | None:
        """A location as the registry stores it: encrypted with metadata_encryption_key."""
        return url if url is None or self.cipher is None else self.cipher.encrypt(url)

    def _opened_lease(self, body: dict) -> dict:
        lease = body["lease"]
        if lease.get("partial_location") is not None and self.cipher is not None:
            lease["partial_location"] = self.cipher.decrypt(lease["partial_location"])
        return lease

    # --- members -------------------------------------------------------------------

    def get_image_members(self, context: RequestContext, image_id: str) -> list[dict]:
        path = f"/images/{_segment(image_id)}/members"
        return self._call(context, "GET", path).json()["members"]

    def replace_members(self, context: RequestContext, image_id: str, body: object) -> None:
        """PUT `body`, a `{"memberships": [...]}` document, which the registry checks."""
        path = f"/images/{_segment(image_id)}/members"
        self._call(context, "PUT", path, json=body)

    def add_member(
        self, context: RequestContext, image_id: str, member: str, can_share: bool | None
    ) -> None:
        path = f"/images/{_segment(image_id)}/members/{_segment(member)}"
        body = None if can_share is None else {"member": {"can_share": can_share}}
        self._call(context, "PUT", path, json=body)

    def delete_member(self, context: RequestContext, image_id: str, member: str) -> None:
        path = f"/images/{_segment(image_id)}/members/{_segment(member)}"
        self._call(context, "DELETE", path)

    def get_member_images(self, context: RequestContext, member: str) -> list[dict]:
        path = f"/shared-images/{_segment(member)}"
        return self._call(context, "GET", path).json()["shared_images"]

    # --- the wire ------------------------------------------------------------------

    def headers_for(self, context: RequestContext) -> dict[str, str]:
        # text/plain: the registry's error pages then come as plain text, which glance-api
        # embeds in its own messages as Glance does (requests would ask for */*: HTML).
        sent = {"X-Openstack-Request-ID": context.request_id, "Accept": "text/plain"}
        if self.secret:
            sent[headers.SECRET] = self.secret
        service = self.service_token
        if context.auth_token and (self.use_user_token or service is not None):
            # With credentials the caller's token goes even with use_user_token = false:
            # the api's own token never stands for a caller who has an identity (in
            # Glance it did, and a registry in the keystone flavor then let every caller
            # act as the api's user). Beside it, the api's token lets such a registry
            # take the caller's token after it expired (a long upload).
            sent["X-Auth-Token"] = context.auth_token
            if service is not None:
                sent["X-Service-Token"] = service.get()
        elif service is not None and context.is_admin:
            # an admin without a token (glance-scrubber, the no-auth flavor); never an
            # anonymous caller
            sent["X-Auth-Token"] = service.get()
        if self.send_identity_headers:
            sent["X-Identity-Status"] = "Confirmed"
            sent["X-Roles"] = ",".join(context.roles)
            if context.user_id:
                sent["X-User-Id"] = context.user_id
            if context.tenant_id:
                sent["X-Tenant-Id"] = context.tenant_id
        return sent

    def _call(
        self,
        context: RequestContext,
        method: str,
        path: str,
        *,
        extra: dict[str, str] | None = None,
        params: Mapping[str, str | None] | Iterable[tuple[str, str]] | None = None,
        json: object = None,
    ) -> "Reply":
        all_headers = self.headers_for(context)
        if extra:
            all_headers.update(extra)
        url = self.base_url + path
        try:
            reply = send(self.session, method, url, all_headers, self._timeouts, params, json)
        except CALL_FAILURES as exc:
            if method != "GET" or isinstance(exc, TIMEOUTS):
                LOG.error("registry call %s %s failed: %s", method, path, exc)
                raise self._unavailable(exc) from None
            # A read changes nothing, so it may go again: a kept-alive connection that
            # the registry closed (a worker going away) as this call was sent on it.
            LOG.info("registry call %s %s failed (%s); trying once more", method, path, exc)
            try:
                reply = send(self.session, method, url, all_headers, self._timeouts, params, json)
            except CALL_FAILURES as again:
                LOG.error("registry call %s %s failed: %s", method, path, again)
                raise self._unavailable(again) from None
        if reply.status_code >= 300:  # redirects are not followed: an error too
            if reply.status_code == 401 and self.service_token is not None:
                self.service_token.forget()  # revoked, perhaps: the next call gets another
            raise registry_error(reply)
        return reply

    def _unavailable(self, exc: Exception) -> exceptions.RegistryUnavailable:
        if isinstance(exc, requests.ConnectTimeout):
            reason = f"no connection within {self.connect_timeout:g} seconds"
        elif _not_connected(exc):
            reason = "it refused the connection or could not be reached"
        elif isinstance(exc, requests.ReadTimeout):
            reason = f"no answer within {self.timeout:g} seconds"
        else:
            reason = f"the connection failed ({type(exc).__name__})"
        return exceptions.RegistryUnavailable(
            f"The image registry is unavailable: {reason}. Try again later.",
            maybe_applied=not _not_connected(exc),
        )


CALL_FAILURES = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
# Failures of a call that waited its whole timeout: trying again would wait as long again.
TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


def _not_connected(exc: Exception) -> bool:
    """Whether the request never left: no connection could be opened for it."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)


def send(
    session: requests.Session,
    method: str,
    url: str,
    headers: dict[str, str],
    timeout,
    params: Mapping[str, str | None] | Iterable[tuple[str, str]] | None = None,
    body: object = None,
) -> "Reply":
    """One HTTP call the fastest way requests allows, its answer read whole: how
    glance-api calls the registry, and how the bench's no-op chain forwards (so that a
    change here moves both). Raises requests' and urllib3's errors as they come."""
    request = _prepared(method, url, headers, params, body)
    # Straight to the session's transport adapter: Session.request would also merge
    # session settings and run cookie jars both ways on every call, for a registry that
    # sets no cookie and is never redirected to (~0.3 ms a call).
    resp = session.get_adapter(url).send(
        request, stream=True, timeout=timeout, verify=session.verify, cert=session.cert
    )
    # The body in one read: requests' .content reads it 10 KiB at a time, each piece
    # through urllib3's and http.client's layers, which made a listing of 1,000 images
    # cost twice what the registry took to send it. Read whole, the connection goes back
    # to the pool.
    return Reply(resp.status_code, resp.raw.read())


def _prepared(
    method: str,
    url: str,
    sent: dict[str, str],
    params: Mapping[str, str | None] | Iterable[tuple[str, str]] | None,
    body: object,
) -> requests.PreparedRequest:
    """The request requests.Request(...).prepare() would make of these, made directly.

    The url is ours and already quoted, so the parsing, IDNA and re-quoting that prepare()
    runs on it (a third of glance-api's own time on an image create) have nothing to do.
    As there, parameters whose value is None are left out, a body goes as compact UTF-8
    JSON, and a PUT/POST/DELETE without one says `Content-Length: 0`.
    """
    if params:
        pairs = params.items() if isinstance(params, Mapping) else params
        query = urlencode([(key, value) for key, value in pairs if value is not None])
        if query:
            url = f"{url}?{query}"
    request = requests.PreparedRequest()
    request.method = method
    request.url = url
    request.hooks = {"response": []}
    request.headers = requests.structures.CaseInsensitiveDict(sent)
    if body is not None:
        request.body = json.dumps(body, allow_nan=False).encode("utf-8")
        request.headers["Content-Type"] = "application/json"
        request.headers["Content-Length"] = str(len(request.body))
    elif method not in ("GET", "HEAD"):
        request.headers["Content-Length"] = "0"
    return request


@dataclasses.dataclass(frozen=True)
class Reply:
    """A registry answer, its body read whole."""

    status_code: int
    content: bytes

    def json(self):
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def registry_error(resp: Reply) -> exceptions.GlanceLiteError:
    """The domain error a registry response stands for, with the registry's own text.

    Its `detail` is the explanation alone, without the status line of the error page.
    """
    text = " ".join(resp.text.split())
    if resp.status_code == 503:
        error: exceptions.GlanceLiteError = exceptions.RegistryUnavailable(text)
    else:
        if resp.status_code >= 500:
            LOG.error("registry answered %s: %s", resp.status_code, text)
        error = exceptions.from_status(resp.status_code, text)
    status_line, blank, explanation = resp.text.partition("\n\n")
    error.detail = " ".join((explanation if blank else status_line).split())
    return error


def pooled_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # No proxy settings or .netrc from the environment, read on every call otherwise:
    # the registry is an internal service reached directly, as Glance's client did.
    session.trust_env = False
    adapter = _OneSendAdapter(pool_connections=1, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# A body up to this size goes out in the same send() as the request's head.
ONE_SEND_LIMIT = 64 << 10


class _OneSend:
    """A connection that sends a request's head and its body (bytes, at most
    ONE_SEND_LIMIT, its Content-Length among the headers) in one send(): http.client
    sends them apart, which on a loopback costs the sender a second send() and the
    registry a second wake-up and read for every create and update."""

    _body_after_head: bytes | None = None

    def request(self, method, url, body=None, headers=None, **kwargs):
        if (
            type(body) is not bytes
            or not body
            or len(body) > ONE_SEND_LIMIT
            or kwargs.get("chunked")
            or not any(name.lower() == "content-length" for name in headers or ())
        ):
            return super().request(method, url, body=body, headers=headers, **kwargs)
        self._body_after_head = body
        try:
            super().request(method, url, body=None, headers=headers, **kwargs)
        finally:
            unsent, self._body_after_head = self._body_after_head, None
        if unsent is not None:  # http.client sends the head in its own send(), always
            raise urllib3.exceptions.ProtocolError("the request body was never sent")
        return None

    def send(self, data) -> None:
        body, self._body_after_head = self._body_after_head, None
        super().send(data if body is None else bytes(data) + body)


class _OneSendHTTPConnection(_OneSend, urllib3.connection.HTTPConnection):
    pass


class _OneSendHTTPSConnection(_OneSend, urllib3.connection.HTTPSConnection):
    pass


class _OneSendHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _OneSendHTTPConnection


class _OneSendHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _OneSendHTTPSConnection


class _OneSendAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its pools made of _OneSend connections."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _OneSendHTTPPool,
            "https": _OneSendHTTPSPool,
        }


def _segment(value: str) -> str:
    """One path segment, every reserved character escaped, and dots too, so that an id
    such as `..` stays an id instead of becoming a step up the registry's URL tree."""
    return quote(value, safe="").replace(".", "%2E")


def client_from_conf(conf, environ=os.environ) -> RegistryClient:
    """The registry client the [DEFAULT] registry_* options of a glance-api (or
    glance-scrubber) configuration describe."""
    host = conf.registry_host
    if host in ("0.0.0.0", "::"):  # Glance's default means "this machine"
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    https = conf.registry_client_protocol == "https"
    verify: bool | str = True
    if https:
        verify = (not conf.registry_client_insecure) and (conf.registry_client_ca_file or True)
    cert = None
    if https and conf.registry_client_cert_file and conf.registry_client_key_file:
        cert = (conf.registry_client_cert_file, conf.registry_client_key_file)
    return RegistryClient(
        f"{conf.registry_client_protocol}://{host}:{conf.registry_port}",
        timeout=conf.registry_client_timeout or None,
        connect_timeout=conf.registry_client_connect_timeout or None,
        secret=conf.registry_shared_secret,
        send_identity_headers=conf.send_identity_headers,
        use_user_token=conf.use_user_token,
        verify=verify,
        cert=cert,
        cipher=LocationCipher(key) if (key := conf.metadata_encryption_key) else None,
        service_token=credentials.from_conf(conf, environ),
    )
