"""The /v1/images resource: list, show (HEAD/GET), create, update, delete.

Controllers orchestrate: serializers.py parses and renders headers, the repository
(with its layers) does the work, bodies.py reads image data from the request.
"""

import webob

from glance_lite import exceptions, wsgi
from glance_lite import image_meta as im
from glance_lite.api import bodies, serializers
from glance_lite.context import RequestContext, from_environ
from glance_lite.registry.headers import PURGE_PROPS

# Headers naming a data source other than the body; served once the stores work lands.
EXTERNAL_SOURCES = ("location", "copy_from")
# Fields of the parsed metadata that steer the request rather than describe the image.
NOT_STORED = ("location", "copy_from", "store", "uri")


class ImagesController:
    def __init__(
        self,
        make_repo,
        *,
        disk_formats: tuple[str, ...],
        container_formats: tuple[str, ...],
        store_schemes: frozenset[str],
        size_cap: int,
        reader: bodies.BodyReader,
    ):
        self.make_repo = make_repo
        self.disk_formats = disk_formats
        self.container_formats = container_formats
        self.store_schemes = store_schemes
        self.size_cap = size_cap
        self.reader = reader

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
        return webob.Response(headerlist=_with_html(serializers.image_meta_to_headers(image)))

    def show(self, req: webob.Request, image_id: str) -> webob.Response:
        repo = self._repo(req)
        image = repo.get(image_id)
        if image["status"] == "deactivated":
            repo.check_download(None)
            raise exceptions.Forbidden(f"Image {image_id} is deactivated")
        if image["status"] != "active":
            repo.check_download(None)
            raise exceptions.NotFound(f"Image {image_id} is not active")
        chunks, size = repo.download(image)
        file_wrapper = req.environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and hasattr(chunks, "fileno"):
            # a server that knows its own wrapper may send the file with sendfile()
            chunks = file_wrapper(chunks)
        resp = webob.Response(
            app_iter=chunks, content_type="application/octet-stream", charset=None
        )
        resp.headers.extend(serializers.image_meta_to_headers(image))
        resp.content_length = size
        return resp

    # --- writing ------------------------------------------------------------------

    def create(self, req: webob.Request) -> webob.Response:
        headers = serializers.request_headers(req.environ)
        meta = self._parse(headers)
        repo = self._repo(req)
        body = serializers.has_body(req.method, headers)
        self._check_sources(meta)
        if body:
            repo.check_upload()
        store = self._store(meta)
        record = {k: v for k, v in meta.items() if k not in NOT_STORED}
        record["status"] = "active" if meta.get("size") == 0 else "queued"
        record.setdefault("size", 0)
        image = repo.create(record)
        if body:
            image = self._upload(req, repo, image, store)
        headers = {"Location": f"{req.application_url}/images/{image['id']}"}
        if image.get("checksum"):
            headers["ETag"] = image["checksum"]
        body_json = {"image": serializers.image_to_json(image)}
        return wsgi.json_response(body_json, status=201, headers=headers)

    def update(self, req: webob.Request, image_id: str) -> webob.Response:
        headers = serializers.request_headers(req.environ)
        meta = self._parse(headers)
        repo = self._repo(req)
        body = serializers.has_body(req.method, headers)
        if body:
            repo.check_upload()
        image = repo.get(image_id)
        check_update_allowed(from_environ(req.environ), image, meta)
        if body and image["status"] != "queued":
            raise exceptions.Conflict("Cannot upload to an unqueued image")
        self._check_sources(meta)
        store = self._store(meta)
        changes = {k: v for k, v in meta.items() if k not in NOT_STORED}
        purge = _purging(req, body)
        if not changes["properties"] and not purge:
            del changes["properties"]
        image = repo.update(image, changes, purge_props=purge)
        if body:
            image = self._upload(req, repo, image, store)
        headers = {"ETag": image["checksum"]} if image.get("checksum") else None
        return wsgi.json_response({"image": serializers.image_to_json(image)}, headers=headers)

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
    def _check_sources(meta: dict) -> None:
        for key in EXTERNAL_SOURCES:
            if key in meta:
                if not meta[key]:
                    raise exceptions.Invalid("External source should not be empty")
                raise exceptions.Invalid(f"External sources are not supported: '{meta[key]}'")

    def _store(self, meta: dict) -> str | None:
        scheme = meta.get("store")
        if scheme is not None and scheme not in self.store_schemes:
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


def _purging(req: webob.Request, body: bool) -> bool:
    """A PUT replaces the property set unless it uploads data or says purge-props false."""
    if body:
        return False
    value = req.headers.get(PURGE_PROPS)
    return value is None or im.bool_from_string(value)


def _with_html(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # HEAD and DELETE answer with an empty text/html body, as Glance (eventlet) does.
    return [*headers, ("Content-Type", "text/html; charset=UTF-8"), ("Content-Length", "0")]
