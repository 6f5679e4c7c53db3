"""Routes of glance-lite's own, for callers Glance let touch the database directly
(docs/differences.md, docs/registry.md):

- `GET /storage-usage?owner=`: the bytes an owner's images take (no `owner`: the images
  without one), for glance-api's user_storage_quota, which counts each image's size once
  per live location;
- `DELETE /images/{image_id}/locations/{location_id}?status=...`: marks one location
  deleted or pending_delete, for delayed delete and the scrubber;
- `POST /images/{image_id}/scrubbed`: a pending_delete image whose data glance-scrubber
  removed becomes deleted (409 while a location is still pending);
- `POST /images/{image_id}/restore`: a pending_delete image becomes active again, with
  its locations, properties, members and tags (glance-scrubber --restore).
Both are for an admin only, and answer 409 for an image that is not pending_delete.
"""

import webob

from glance_lite import context, exceptions, wsgi
from glance_lite import image_meta as im
from glance_lite.registry.access import writable_context


class UsageController:
    def __init__(self, database):
        self.db = database

    def scrubbed(self, req: webob.Request, image_id: str) -> webob.Response:
        image = self.db.image_scrubbed(writable_context(req), image_id)
        return wsgi.json_response({"image": im.image_to_json(image)})

    def restore(self, req: webob.Request, image_id: str) -> webob.Response:
        image = self.db.image_restore(writable_context(req), image_id)
        return wsgi.json_response({"image": im.image_to_json(image)})

    def show(self, req: webob.Request) -> webob.Response:
        ctx = context.from_environ(req.environ)
        owner = req.GET.get("owner")
        if not ctx.is_admin and ctx.owner != owner:
            raise exceptions.Forbidden("Only an admin or the owner may read an owner's usage.")
        exclude = req.GET.get("exclude_image_id") or None
        usage = self.db.user_get_storage_usage(ctx, owner, exclude)
        return wsgi.json_response({"owner": owner, "usage": usage})

    def delete_location(
        self, req: webob.Request, image_id: str, location_id: str
    ) -> webob.Response:
        ctx = writable_context(req)
        try:
            loc = int(location_id)
        except ValueError:
            raise exceptions.NotFound(f"No location {location_id} on image {image_id}") from None
        im.check_range("location_id", loc, im.INT_RANGE)
        image = self.db.image_get(ctx, image_id, force_show_deleted=True)
        if not ctx.is_admin and (image["owner"] is None or image["owner"] != ctx.owner):
            raise exceptions.Forbidden("Only an admin or the owner may change locations.")
        status = req.GET.get("status", "deleted")
        if status not in ("deleted", "pending_delete"):
            raise exceptions.Invalid(
                "The status of deleted image location can only be set to "
                "'pending_delete' or 'deleted'"
            )
        self.db.image_location_delete(ctx, image_id, loc, status)
        return webob.Response(status=204)
