"""Image members (/v1/images/{id}/members[/{member}]) and /v1/shared-images/{member}."""

import webob

from glance_lite import exceptions, wsgi
from glance_lite.context import from_environ


class MembersController:
    def __init__(self, make_repo, *, max_json_body: int):
        self.make_repo = make_repo
        self.max_json_body = max_json_body

    def _live_image(self, repo, image_id: str) -> dict:
        image = repo.get(image_id)
        if image["status"] == "deleted" or image.get("deleted"):
            raise exceptions.NotFound(f"Image with identifier {image_id} has been deleted.")
        return image

    def _sharing_repo(self, req: webob.Request):
        ctx = from_environ(req.environ)
        if ctx.owner is None and not ctx.is_admin:
            raise exceptions.NotAuthenticated("No authenticated user")
        return self.make_repo(ctx)

    def index(self, req: webob.Request, image_id: str) -> webob.Response:
        repo = self.make_repo(from_environ(req.environ))
        self._live_image(repo, image_id)
        members = repo.members(image_id)
        return wsgi.json_response({"members": members})

    def update_all(self, req: webob.Request, image_id: str) -> webob.Response:
        repo = self._sharing_repo(req)
        image = self._live_image(repo, image_id)
        # The registry checks the document; it goes there as the client sent it.
        repo.replace_members(image_id, wsgi.json_body(req, limit=self.max_json_body))
        repo.update_store_acls(image)
        return webob.Response(status=204)

    def update(self, req: webob.Request, image_id: str, member: str) -> webob.Response:
        repo = self._sharing_repo(req)
        image = self._live_image(repo, image_id)
        body = wsgi.json_body(req, limit=self.max_json_body, required=False)
        member_body = body.get("member") if isinstance(body, dict) else None
        can_share = None
        if isinstance(member_body, dict) and "can_share" in member_body:
            can_share = bool(member_body["can_share"])
        repo.set_member(image_id, member, can_share)
        repo.update_store_acls(image)
        return webob.Response(status=204)

    def delete(self, req: webob.Request, image_id: str, member: str) -> webob.Response:
        repo = self._sharing_repo(req)
        image = self._live_image(repo, image_id)
        repo.delete_member(image_id, member)
        repo.update_store_acls(image)
        return webob.Response(status=204)

    def shared_images(self, req: webob.Request, member: str) -> webob.Response:
        repo = self.make_repo(from_environ(req.environ))
        return wsgi.json_response({"shared_images": repo.member_images(member)})
