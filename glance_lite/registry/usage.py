"""`GET /storage-usage/{owner}`: the bytes an owner's images take, for glance-api's
user_storage_quota (lifecycle.md §3). Not a Glance route: Glance's api read the database
directly for this, and ours never touches it (docs/differences.md).
"""

import webob

from glance_lite import context, exceptions, wsgi


class UsageController:
    def __init__(self, database):
        self.db = database

    def show(self, req: webob.Request, owner: str) -> webob.Response:
        ctx = context.from_environ(req.environ)
        if not ctx.is_admin and ctx.owner != owner:
            raise exceptions.Forbidden("Only an admin or the owner may read an owner's usage.")
        exclude = req.GET.get("exclude_image_id") or None
        usage = self.db.user_get_storage_usage(ctx, owner, exclude)
        return wsgi.json_response({"owner": owner, "usage": usage})
