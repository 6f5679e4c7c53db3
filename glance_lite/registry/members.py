"""The registry's membership resource: who an image is shared with, and what a member
can see (`/shared-images/{member}`).
"""

import webob
import webob.exc

from glance_lite import context, exceptions, wsgi
from glance_lite import image_meta as im
from glance_lite.registry.access import writable_context


class MembersController:
    def __init__(self, database, *, max_json_body: int):
        self.db = database
        self.max_json_body = max_json_body

    def index(self, req: webob.Request, image_id: str) -> webob.Response:
        ctx = context.from_environ(req.environ)
        self._image(ctx, image_id)
        members = self.db.image_member_find(ctx, image_id=image_id)
        listing = [{"member_id": m["member"], "can_share": m["can_share"]} for m in members]
        return wsgi.json_response({"members": listing})

    def update_all(self, req: webob.Request, image_id: str) -> webob.Response:
        body = wsgi.json_body(req, limit=self.max_json_body, required=False)
        ctx = writable_context(req)
        if body is None:
            raise exceptions.Invalid("Request body must be a JSON object with 'memberships'.")
        self._check_can_share(ctx, image_id)
        self.db.image_members_replace(ctx, image_id, memberships(body))
        return webob.exc.HTTPNoContent()

    def update(self, req: webob.Request, image_id: str, member: str) -> webob.Response:
        body = wsgi.json_body(req, limit=self.max_json_body, required=False)
        ctx = writable_context(req)
        self._check_can_share(ctx, image_id)
        check_member_id(member)
        self.db.image_member_set(ctx, image_id, member, requested_can_share(body))
        return webob.exc.HTTPNoContent()

    def delete(self, req: webob.Request, image_id: str, member: str) -> webob.Response:
        ctx = writable_context(req)
        self._check_can_share(ctx, image_id)
        self.db.image_member_delete(ctx, image_id, member)
        return webob.exc.HTTPNoContent()

    def index_shared_images(self, req: webob.Request, member: str) -> webob.Response:
        ctx = context.from_environ(req.environ)
        members = self.db.image_member_find(ctx, member=member)
        listing = [{"image_id": m["image_id"], "can_share": m["can_share"]} for m in members]
        return wsgi.json_response({"shared_images": listing})

    def _image(self, ctx, image_id: str) -> dict:
        try:
            return self.db.image_get(ctx, image_id)
        except exceptions.NotFound:
            raise exceptions.NotFound(f"Image {image_id} not found") from None

    def _check_can_share(self, ctx, image_id: str) -> None:
        """Glance's order: 401 without an owner, 404 invisible image, 403 cannot share."""
        if ctx.owner is None and not ctx.is_admin:
            raise exceptions.NotAuthenticated("No authenticated user")
        image = self._image(ctx, image_id)
        if not self._can_share(ctx, image):
            raise exceptions.Forbidden("No permission to share that image")

    def _can_share(self, ctx, image: dict) -> bool:
        if ctx.is_admin:
            return True
        if ctx.owner is None:
            return False
        if ctx.owner == image["owner"]:
            return True
        own = self.db.image_member_find(ctx, image_id=image["id"], member=ctx.owner)
        return bool(own and own[0]["can_share"])


def memberships(body) -> dict[str, bool | None]:
    """member id -> can_share from the `memberships` list of PUT
    /images/{image_id}/members, checked and typed (a repeated member: the last wins).

    `can_share` goes by truthiness, as in Glance; absent means "keep" (None).
    """
    entries = body.get("memberships") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise exceptions.Invalid("Invalid membership association: 'memberships'")
    wanted: dict[str, bool | None] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "member_id" not in entry:
            raise exceptions.Invalid("Invalid membership association: 'member_id'")
        check_member_id(entry["member_id"])
        wanted[entry["member_id"]] = bool(entry["can_share"]) if "can_share" in entry else None
    for member in wanted:
        if not member:
            raise exceptions.Invalid(f"Invalid member id: {member!r}")
    return wanted


def requested_can_share(body) -> bool | None:
    """`{"member": {"can_share": x}}` -> bool(x); an empty or falsy body -> None."""
    if not body:
        return None
    member = body.get("member") if isinstance(body, dict) else None
    if not isinstance(member, dict):
        raise exceptions.Invalid("Invalid membership association: 'member'")
    if "can_share" not in member:
        raise exceptions.Invalid("Invalid membership association: 'can_share'")
    return bool(member["can_share"])


def check_member_id(member) -> None:
    if not isinstance(member, str):
        raise exceptions.Invalid("Invalid membership association: 'member_id' must be a string")
    if len(member) > im.COLUMN_LENGTHS["member"]:
        raise exceptions.Invalid(
            f"Invalid membership association: member id is {len(member)} characters long, "
            f"at most {im.COLUMN_LENGTHS['member']}"
        )
