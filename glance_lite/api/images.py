"""The /v1/images resource: list, show (HEAD/GET), create, update, delete.

Controllers orchestrate: serializers.py parses and renders headers, the repository
(with its layers) does the work, bodies.py reads image data from the request.
"""

import webob

from glance_lite import exceptions, wsgi
from glance_lite import image_meta as im
from glance_lite.api import bodies, serializers, sources
from glance_lite.api.sources import COPY_FROM, LOCATION
from glance_lite.context import RequestContext, from_environ
from glance_lite.registry.headers import PURGE_PROPS
from glance_lite.store.base import Stores

# Fields of the parsed metadata that steer the request rather than describe the image.
NOT_STORED = ("location", "copy_from", "store", "uri")
# environ key of the image cache's download(repo, image), set by its paste filter on the
# GETs it may serve (glance_lite/cache/middleware.py); absent, images come from stores.
IMAGE_CACHE = "glance_lite.image_cache"


class ImagesController:
    def __init__(
        self,
        make_repo,
        *,
        disk_formats: tuple[str, ...],
        container_formats: tuple[str, ...],
        stores: Stores,
        size_cap: int,
        reader: bodies.BodyReader,
        copier: sources.Copier,
        show_direct_url: bool = False,
    ):
        """`show_direct_url`: show an image's location (redacted) as `direct_url`."""
        self.make_repo = make_repo
        self.disk_formats = disk_formats
        self.container_formats = container_formats
        self.stores = stores
        self.size_cap = size_cap
        self.reader = reader
        self.copier = copier
        self.show_direct_url = show_direct_url

    def _repo(self, req: webob.Request):
        return self.make_repo(from_environ(req.environ))

    # --- reading ------------------------------------------------------------------

    def index(self, req: webob.Request) -> webob.Response:
        return self._listing(req, detail=False)

    def detail(self, req: webob.Request) -> webob.Response:
        return self._listing(req, detail=True)

    def _listing(self, req: webob.Request, *, detail: bool) -> webob.Response:
        forwarded = serializers.parse_list_params(req.GET)  # checked here, then sent on
        query = serializers.forwarded_query(req.environ.get("QUERY_STRING", ""), forwarded)
        # The registry's JSON goes through as it came (see RegistryClient.get_images_json).
        document = self._repo(req).list(query, detail=detail)
        return webob.Response(body=document, content_type="application/json", charset=None)

    def meta(self, req: webob.Request, image_id: str) -> webob.Response:
        image = self._repo(req).get(image_id)
        return webob.Response(headerlist=_with_html(self._headers(image)))

    def show(self, req: webob.Request, image_id: str) -> webob.Response:
        repo = self._repo(req)
        image = repo.get(image_id)
        if image["status"] == "deactivated":
            repo.check_download(None)
            raise exceptions.Forbidden(f"Image {image_id} is deactivated")
        if image["status"] != "active":
            repo.check_download(None)
            raise exceptions.NotFound(f"Image {image_id} is not active")
        cache = req.environ.get(IMAGE_CACHE)
        chunks, size = cache.download(repo, image) if cache else repo.download(image)
        file_wrapper = req.environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and hasattr(chunks, "fileno"):
            # a server that knows its own wrapper may send the file with sendfile()
            chunks = file_wrapper(chunks)
        resp = webob.Response(
            app_iter=chunks, content_type="application/octet-stream", charset=None
        )
        resp.headers.extend(self._headers(image))
        resp.content_length = size
        return resp

    # --- writing ------------------------------------------------------------------

    def create(self, req: webob.Request) -> webob.Response:
        headers = serializers.request_headers(req.environ)
        meta = self._parse(headers)
        repo = self._repo(req)
        body = serializers.has_body(req.method, headers)
        source = sources.external_source(meta, body, self.stores)
        self._check_writes(repo, body, source)
        store = self._store(meta)
        record = {k: v for k, v in meta.items() if k not in NOT_STORED}
        record["status"] = "active" if meta.get("size") == 0 else "queued"
        record.setdefault("size", 0)
        if source:
            record.update(self._from_source(repo, *source, record))
        image = repo.create(record)
        if body:
            image = self._upload(req, repo, image, store)
        elif source and source[0] == COPY_FROM:
            self.copier.copy(repo, image, source[1], store)
        repo.update_store_acls(image)
        headers = {"Location": f"{req.application_url}/images/{image['id']}"}
        if image.get("checksum"):
            headers["ETag"] = image["checksum"]
        return wsgi.json_response(self._json(image), status=201, headers=headers)

    def update(self, req: webob.Request, image_id: str) -> webob.Response:
        headers = serializers.request_headers(req.environ)
        meta = self._parse(headers)
        repo = self._repo(req)
        body = serializers.has_body(req.method, headers)
        source = sources.external_source(meta, body, self.stores)
        self._check_writes(repo, body, source)
        image = repo.get(image_id)
        check_update_allowed(from_environ(req.environ), image, meta)
        if body and not uploadable(image):
            raise exceptions.Conflict("Cannot upload to an unqueued image")
        if source and image["status"] != "queued":
            raise exceptions.Invalid(
                "Attempted to update Location field for an image not in queued status."
            )
        store = self._store(meta)
        changes = {k: v for k, v in meta.items() if k not in NOT_STORED}
        purge = _purging(req, body)
        if not changes["properties"] and not purge:
            del changes["properties"]
        # an image that gets its data here must still be queued as it gets it
        from_state = None
        if source:
            changes.update(self._from_source(repo, *source, {**image, **changes}))
            from_state = "queued"
        location = source[1] if source and source[0] == LOCATION else None
        if location or "is_public" in changes:
            # as Glance: the store's access first, then the registry's record
            repo.update_store_acls({**image, **changes}, location)
        seen = image["status"]
        image = repo.update(image, changes, purge_props=purge, from_state=from_state)
        if body:
            # conditional on the status checked above, not on what the update answered:
            # another upload may have taken the image to saving in between
            image = self._upload(req, repo, {**image, "status": seen}, store)
            repo.update_store_acls(image)
        elif source and source[0] == COPY_FROM:
            self.copier.copy(repo, image, source[1], store)
        headers = {"ETag": image["checksum"]} if image.get("checksum") else None
        return wsgi.json_response(self._json(image), headers=headers)

    def delete(self, req: webob.Request, image_id: str) -> webob.Response:
        repo = self._repo(req)
        if from_environ(req.environ).read_only:
            raise exceptions.Forbidden("Read-only access")
        image = repo.get(image_id)
        if image.get("protected"):
            raise exceptions.Forbidden("Image is protected")
        # Either status on an image not yet removed is what a delete stopped between its
        # two registry calls left: deleting it again finishes the job (docs/api.md).
        removed = bool(image.get("deleted"))
        if image["status"] == "pending_delete" and removed:
            raise exceptions.Forbidden("Forbidden to delete a pending_delete image.")
        if image["status"] == "deleted" and removed:
            raise exceptions.NotFound(f"Image {image_id} not found.")
        repo.delete(image)
        return webob.Response(headerlist=_with_html([]))

    # --- helpers ------------------------------------------------------------------

    def _parse(self, headers: list[tuple[str, str]]) -> dict:
        meta = serializers.parse_image_meta(
            headers, disk_formats=self.disk_formats, container_formats=self.container_formats
        )
        copy_from = serializers.header(headers, "x-glance-api-copy-from")
        if copy_from is not None:
            meta["copy_from"] = copy_from
        declared = serializers.declared_size(headers, meta)
        if declared is not None and declared > self.size_cap:
            raise exceptions.Invalid(
                f"Denying attempt to upload image larger than {self.size_cap} bytes."
            )
        return meta

    @staticmethod
    def _check_writes(repo, body: bool, source: tuple[str, str] | None) -> None:
        """The policies of the data a request brings, before anything is done."""
        if body or (source and source[0] == COPY_FROM):
            repo.check_upload()
        if source:
            repo.check_source(source[0])

    def _from_source(self, repo, kind: str, uri: str, fields: dict) -> dict:
        """What an image's record gets from its external source: for a location, the
        active status, the location and the store's size; for a copy-from, the size to
        expect (the one declared, else the source's). `fields` is the image as it will
        be, but for that."""
        if not fields.get("disk_format"):
            raise exceptions.Invalid("Disk format is not specified.")
        if not fields.get("container_format"):
            raise exceptions.Invalid("Container format is not specified.")
        declared = fields.get("size") or 0
        if kind == LOCATION:
            stored = repo.source_size(uri)
            if declared and stored and declared != stored:
                raise exceptions.Conflict(
                    "Provided image size must match the stored image size. "
                    f"(provided size: {declared}, stored size: {stored})"
                )
            entry = {"url": uri, "metadata": {}, "status": "active"}
            size = stored or declared
            return {"status": "active", "size": size, "location": uri, "location_data": [entry]}
        size = declared or repo.source_size(uri)
        if size > self.size_cap:
            raise exceptions.Invalid(
                f"Denying attempt to upload image larger than {self.size_cap} bytes."
            )
        return {"status": "queued", "size": size}

    def _headers(self, image: dict) -> list[tuple[str, str]]:
        headers = serializers.image_meta_to_headers(image)
        direct_url = self._direct_url(image)
        if direct_url:
            headers.append((f"{serializers.META_PREFIX}direct_url", direct_url))
        return headers

    def _json(self, image: dict) -> dict:
        shown = serializers.image_to_json(image)
        direct_url = self._direct_url(image)
        if direct_url:
            shown["direct_url"] = direct_url
        return {"image": shown}

    def _direct_url(self, image: dict) -> str | None:
        if not self.show_direct_url or not image.get("location"):
            return None
        return self.stores.redact(image["location"])

    def _store(self, meta: dict) -> str | None:
        scheme = meta.get("store")
        if scheme is not None and scheme not in self.stores.schemes:
            raise exceptions.Invalid(f"Required store {scheme} is invalid")
        return scheme

    def _upload(self, req: webob.Request, repo, image: dict, store: str | None) -> dict:
        if not image.get("disk_format"):
            raise exceptions.Invalid("Disk format is not specified.")
        if not image.get("container_format"):
            raise exceptions.Invalid("Container format is not specified.")
        if req.headers.get("Content-Type") != "application/octet-stream":
            err = exceptions.Invalid("Content-Type must be application/octet-stream")
            repo.kill(image["id"], reason=err, from_state=image["status"])
            raise err
        return repo.upload(
            image,
            self.reader.chunks(req),
            # a Content-Length counts as declared: an over-quota one is refused at once
            declared_size=image.get("size") or req.content_length or None,
            declared_checksum=image.get("checksum"),
            store_scheme=store,
        )


def check_update_allowed(ctx: RequestContext, image: dict, meta: dict) -> None:
    """What no update may change: a deleted image, the id and status, and (but for an
    admin) the size and checksum of an active or deactivated image."""
    status = image["status"]
    if status == "deleted":
        raise exceptions.Forbidden("Forbidden to update deleted image.")
    if not ctx.is_admin and status in ("active", "deactivated"):
        for key in ("size", "checksum"):
            if key in meta and meta[key] != image.get(key):
                raise exceptions.Forbidden(f"Forbidden to modify '{key}' of {status} image.")
    for key in ("status", "id"):
        if key in meta and meta[key] != image.get(key):
            raise exceptions.Forbidden(f"Forbidden to modify '{key}' of image.")


def uploadable(image: dict) -> bool:
    """Whether an upload may bring an image its data: queued, or killed without data
    (an upload that failed: a retry, glance-lite's own; Glance took only queued)."""
    status = image["status"]
    return status == "queued" or (status == "killed" and not image.get("location"))


def _purging(req: webob.Request, body: bool) -> bool:
    """A PUT replaces the property set unless it uploads data or says purge-props false."""
    if body:
        return False
    value = req.headers.get(PURGE_PROPS)
    return value is None or im.bool_from_string(value)


def _with_html(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # HEAD and DELETE answer with an empty text/html body, as Glance (eventlet) does.
    return [*headers, ("Content-Type", "text/html; charset=UTF-8"), ("Content-Length", "0")]
