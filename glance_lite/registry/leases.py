"""Upload leases, glance-lite's own routes (docs/registry.md "Upload leases"):

- `PUT /images/{image_id}` with `"lease": {"holder": ..., "duration": ...}` next to
  `"image": {"status": "saving"}` takes the lease in the same transaction (the upload's
  start costs no call of its own; registry/images.py reads it with `lease_param`);
- `PUT /images/{image_id}/lease`: the holder renews it (or takes it where there is none
  or it expired); 409 once the image is not `saving` or another holder's lease is live;
- `DELETE /images/{image_id}/lease?holder=...`: the holder gives it up;
- `POST /leases/sweep` (admin): kill the `saving` images whose lease expired, and
  answer their leases, for the caller to remove their partial data.

A lease goes by itself when its image leaves `saving`.
"""

import webob

from glance_lite import context, exceptions, wsgi
from glance_lite import image_meta as im
from glance_lite.registry.access import writable_context

# Longest lease and longest grace a caller may ask for (a day): beyond that, a dead
# upload would stay `saving` for longer than anyone waits for it.
MAX_SECONDS = 86400
# Most images one sweep call kills; the caller asks again while it gets this many.
MAX_SWEEP = 1000
HOLDER_LENGTH = 255


class LeasesController:
    def __init__(self, database, *, max_json_body: int):
        self.db = database
        self.max_json_body = max_json_body

    def renew(self, req: webob.Request, image_id: str) -> webob.Response:
        body = wsgi.json_body(req, limit=self.max_json_body)
        holder, duration = lease_param(body)
        partial = body["lease"].get("partial_location")
        if partial is not None and not isinstance(partial, str):
            raise exceptions.Invalid("lease partial_location must be a string or null.")
        lease = self.db.image_lease_renew(
            writable_context(req), image_id, holder, duration, partial
        )
        return wsgi.json_response({"lease": lease_json(lease)})

    def release(self, req: webob.Request, image_id: str) -> webob.Response:
        holder = req.GET.get("holder")
        if not holder:
            raise exceptions.Invalid("The lease's holder is required (?holder=).")
        self.db.image_lease_release(writable_context(req), image_id, holder)
        return webob.Response(status=204)

    def sweep(self, req: webob.Request) -> webob.Response:
        body = wsgi.json_body(req, limit=self.max_json_body)
        if not isinstance(body, dict):
            raise exceptions.Invalid('The sweep body must be {"grace": <seconds>, "limit": <n>}.')
        grace = seconds(body, "grace")
        limit = body.get("limit", MAX_SWEEP)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SWEEP:
            raise exceptions.Invalid(f"limit must be an integer from 1 to {MAX_SWEEP}.")
        ctx = context.from_environ(req.environ)
        killed = self.db.image_leases_sweep(ctx, grace, limit)
        return wsgi.json_response({"killed": [lease_json(lease) for lease in killed]})


def lease_param(body) -> tuple[str, int]:
    """(holder, seconds) of a body's `"lease": {"holder": ..., "duration": ...}`."""
    lease = body.get("lease") if isinstance(body, dict) else None
    if not isinstance(lease, dict):
        raise exceptions.Invalid('lease must be {"holder": <node id>, "duration": <seconds>}.')
    holder = lease.get("holder")
    if not isinstance(holder, str) or not 0 < len(holder) <= HOLDER_LENGTH:
        raise exceptions.Invalid(
            f"lease holder must be a string of 1 to {HOLDER_LENGTH} characters."
        )
    if "\x00" in holder:
        raise exceptions.Invalid("lease holder can't contain NUL characters.")
    return holder, seconds(lease, "duration")


def seconds(body: dict, key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SECONDS:
        raise exceptions.Invalid(f"{key} must be a number of seconds from 1 to {MAX_SECONDS}.")
    return value


def lease_json(lease: dict) -> dict:
    return {**lease, "expires_at": im.format_time(lease["expires_at"])}
