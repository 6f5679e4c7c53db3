"""The registry's image resource: list, show, create, update and delete image records.

Query strings and JSON bodies are parsed, checked and typed here, once; the database
(glance_lite/db/api.py) gets plain Python values and raises domain errors.
"""

import contextlib
import re

import webob

from glance_lite import context, exceptions, wsgi
from glance_lite import image_meta as im
from glance_lite.registry import headers
from glance_lite.registry.access import writable_context
from glance_lite.registry.leases import lease_param

# Fields a caller may not set through an update (the database ignores them as well).
UPDATE_IGNORED = frozenset({"created_at", "updated_at", "deleted_at", "deleted"})
# Glance's registry answers a refused update or delete with webob's bare 403, whose
# explanation is this text.
ACCESS_DENIED = "Access was denied to this resource."


class ImagesController:
    def __init__(
        self, database, *, api_limit_max: int, limit_param_default: int, max_json_body: int
    ):
        self.db = database
        self.api_limit_max = api_limit_max
        self.limit_param_default = limit_param_default
        self.max_json_body = max_json_body

    # --- listing -------------------------------------------------------------------

    def index(self, req: webob.Request) -> webob.Response:
        images = self._list(req, self.db.image_get_all_index)
        # the database hands them over with exactly the brief keys (im.INDEX_FIELDS)
        return wsgi.json_response({"images": images})

    def detail(self, req: webob.Request) -> webob.Response:
        if req.headers.get(headers.OMIT_LOCATIONS) == "true":
            entries = self._list(req, self.db.image_get_all_documents)
            return json_bytes(listing_body(entries))
        images = self._list(req, self.db.image_get_all)
        return wsgi.json_response({"images": [im.image_to_json(i) for i in images]})

    def _list(self, req: webob.Request, method):
        ctx = context.from_environ(req.environ)
        query = list_query(
            req.GET,
            ctx,
            limit_param_default=self.limit_param_default,
            api_limit_max=self.api_limit_max,
        )
        return method(ctx, **query)

    # --- one image -----------------------------------------------------------------

    def show(self, req: webob.Request, image_id: str) -> webob.Response:
        image = self.db.image_get(context.from_environ(req.environ), image_id)
        return wsgi.json_response({"image": im.image_to_json(image)})

    def create(self, req: webob.Request) -> webob.Response:
        body = wsgi.json_body(req, limit=self.max_json_body, required=False)
        ctx = writable_context(req)
        with explained("Failed to add image metadata. Got error: "):
            values = image_values(body_member(body, "image"), creating=True)
            values.setdefault("status", "active")
            if not ctx.is_admin or "owner" not in values:
                values["owner"] = ctx.owner
        image_id = values.get("id")
        if image_id is not None and (len(image_id) > 36 or not im.is_uuid_like(image_id)):
            raise exceptions.Invalid("Invalid image id format")
        # A duplicate id is the database's Conflict `Image with identifier <id> already exists!`
        with explained("Failed to add image metadata. Got error: "):
            check_storable(values)
            image = self.db.image_create(ctx, values)
        return wsgi.json_response({"image": im.image_to_json(image)})

    def update(self, req: webob.Request, image_id: str) -> webob.Response:
        body = wsgi.json_body(req, limit=self.max_json_body, required=False)
        ctx = writable_context(req)
        with explained("Failed to update image metadata. Got error: "):
            values = image_values(body_member(body, "image"), creating=False)
            from_state = optional_string(body, "from_state") or None
            quota = storage_quota(body)
            lease = upload_lease(body, values)
            held_by = optional_string(body, "held_by") or None
            check_id_unchanged(values, image_id)
        if not ctx.is_admin:
            values.pop("owner", None)
        # Only this exact lowercase value purges, as in Glance ("True" merges).
        purge = req.headers.get(headers.PURGE_PROPS, "false") == "true"
        try:
            with explained("Failed to update image metadata. Got error: "):
                check_storable(values)
                image = self.db.image_update(
                    ctx,
                    image_id,
                    values,
                    purge_props=purge,
                    from_state=from_state,
                    storage_quota=quota,
                    lease=lease,
                    held_by=held_by,
                )
        except exceptions.NotFound:
            raise exceptions.NotFound("Image not found") from None
        except exceptions.Forbidden:
            raise exceptions.Forbidden(ACCESS_DENIED) from None
        except exceptions.Conflict:
            raise exceptions.Conflict("Image operation conflicts") from None
        return wsgi.json_response({"image": im.image_to_json(image)})

    def delete(self, req: webob.Request, image_id: str) -> webob.Response:
        ctx = writable_context(req)
        try:
            image = self.db.image_destroy(ctx, image_id)
        except exceptions.Forbidden:
            raise exceptions.Forbidden(ACCESS_DENIED) from None
        body = im.image_to_json(image)
        # Glance's delete reply is built without the v1 translation: no is_public.
        del body["is_public"]
        return wsgi.json_response({"image": body})


# --- shared by the registry's resources ----------------------------------------------


def listing_body(entries: bytes) -> bytes:
    """`{"images": [...]}` around JSON entries joined with ", ", as json.dumps writes it."""
    return b'{"images": [' + entries + b"]}"


def json_bytes(body: bytes) -> webob.Response:
    """A 200 with a JSON body already encoded, headers as wsgi.json_response gives."""
    resp = webob.Response(status=200, content_type="application/json", charset=None)
    resp.body = body
    return resp


@contextlib.contextmanager
def explained(prefix: str):
    """Re-raise a 400 with `prefix` in front of its message."""
    try:
        yield
    except exceptions.Invalid as err:
        raise exceptions.Invalid(f"{prefix}{err}") from None


def body_member(body, key: str) -> dict:
    """body[key], which must be a JSON object; 400 naming what is wrong."""
    if not isinstance(body, dict) or key not in body:
        raise exceptions.Invalid(f"Request body must be a JSON object with an '{key}' key.")
    if not isinstance(body[key], dict):
        raise exceptions.Invalid(f"'{key}' must be a JSON object.")
    return body[key]


def optional_string(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise exceptions.Invalid(f"{key} must be a string or null.")
    return value


def storage_quota(body: dict) -> tuple[str | None, int] | None:
    """An update's `storage_quota`, glance-lite's own: {"owner": <string or null>,
    "limit": <bytes>}, the update refused if that owner's images would take more."""
    quota = body.get("storage_quota")
    if quota is None:
        return None
    owner = quota.get("owner") if isinstance(quota, dict) else None
    limit = quota.get("limit") if isinstance(quota, dict) else None
    if (
        not isinstance(quota, dict)
        or not (owner is None or isinstance(owner, str))
        or not isinstance(limit, int)
        or isinstance(limit, bool)
        or not 0 <= limit <= im.BIGINT_MAX
    ):
        raise exceptions.Invalid(
            'storage_quota must be {"owner": <string or null>, "limit": <bytes>}.'
        )
    return owner, limit


def upload_lease(body: dict, values: dict) -> tuple[str, int] | None:
    """An update's `lease` (glance-lite's own, registry/leases.py): taken as the update
    sets the image `saving`, and only then."""
    if body.get("lease") is None:
        return None
    if values.get("status") != "saving":
        raise exceptions.Invalid("A lease is taken only by an update that sets status saving.")
    return lease_param(body)


def check_id_unchanged(values: dict, image_id: str) -> None:
    """An update may repeat the image's id but not change it."""
    given = values.pop("id", image_id)
    if given != image_id:
        raise exceptions.Invalid("The image id cannot be changed.")


# --- the query string of GET /images[/detail] ----------------------------------------


def list_query(params, ctx, *, limit_param_default: int, api_limit_max: int) -> dict:
    """image_get_all's keyword arguments from the query string (last repeat wins).

    Checks run in Glance's order, so a query with several faults names the same one.
    """
    for name, value in params.items():
        if "\x00" in name or "\x00" in value:  # no database compares text with NUL
            raise exceptions.Invalid(f"Bad value passed to filter {name!r}: a NUL character")
    filters = glance_filters(params, ctx)
    query = {
        "filters": filters,
        "limit": page_limit(params, limit_param_default, api_limit_max),
        "sort_key": choice(params, "sort_key", "created_at", im.SORT_KEYS),
        "sort_dir": choice(params, "sort_dir", "desc", im.SORT_DIRS),
        "marker": marker(params),
    }
    if ctx.is_admin:
        is_public = admin_is_public(params)
        if is_public is True:
            query["admin_as_user"] = True  # "act as a regular user", not "public only"
        elif is_public is False:
            filters["is_public"] = False
    filters.update(typed_filters(params))
    return query


def glance_filters(params, ctx) -> dict:
    """The filters Glance itself checks: changes-since, protected, deleted, property-*."""
    filters = {}
    if "changes-since" in params:
        try:
            filters["changes_since"] = im.parse_isotime(params["changes-since"])
        except ValueError:
            raise exceptions.Invalid("Unrecognized changes-since value") from None
    if "protected" in params:
        protected = im.strict_bool(params["protected"])
        if protected is None:
            raise exceptions.Invalid("protected must be True, or False")
        filters["protected"] = protected
    if ctx.is_admin and "deleted" in params:
        filters["deleted"] = im.bool_from_string(params["deleted"])
    elif "changes_since" not in filters:
        filters["deleted"] = False
    properties = {
        name.removeprefix("property-"): params[name]
        for name in params
        if name.startswith("property-")
    }
    if properties:
        filters["properties"] = properties
    return filters


def typed_filters(params) -> dict:
    """Filters Glance hands to the database unchecked (a bad value is a 500 there)."""
    filters = {}
    for name in im.STRING_FILTERS:
        if name in params:
            filters[name] = im.parse_string_filter(params[name])
    for name in im.INT_FILTERS:
        if name in params:
            filters[name] = im.parse_int_filter(name, params[name])
    return filters


def page_limit(params, default: int, maximum: int) -> int:
    try:
        limit = int(params.get("limit", default))
    except ValueError:
        raise exceptions.Invalid("limit param must be an integer") from None
    if limit < 0:
        raise exceptions.Invalid("limit param must be positive")
    return min(maximum, limit)


def choice(params, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise exceptions.Invalid(f"Unsupported {name}. Acceptable values: {', '.join(allowed)}")
    return value


def marker(params) -> str | None:
    value = params.get("marker")
    if not value:
        return None
    if not im.is_uuid_like(value):
        raise exceptions.Invalid("Invalid marker format")
    return value


def admin_is_public(params) -> bool | None:
    """Absent -> True (act as a user), `none` -> None (everything), else true/false."""
    value = params.get("is_public")
    if value is None:
        return True
    if value.lower() == "none":
        return None
    parsed = im.strict_bool(value)
    if parsed is None:
        raise exceptions.Invalid("is_public must be None, True, or False")
    return parsed


# --- the JSON body of POST and PUT /images[/{image_id}] -------------------------------------


def image_values(image: dict, *, creating: bool) -> dict:
    """The database values for an image dict from a request body, checked and typed.

    Unknown keys are ignored, as Glance ignores them. On update the timestamps and
    `deleted` are dropped before they are looked at (Glance never stores them there).
    """
    values = {}
    for key, value in image.items():
        if not creating and key in UPDATE_IGNORED:
            continue
        parse = FIELD_PARSERS.get(key)
        if parse is not None:
            values[key] = parse(key, value)
    if values.get("owner") == "":
        values["owner"] = None
    if values.get("id") in (None, ""):
        values.pop("id", None)
    if "location" in values and values["location"] is None:
        del values["location"]
    if values.get("location_data") == [] and "location" not in values:
        del values["location_data"]  # Glance leaves the locations alone then
    return values


def _string(key: str, value):
    if value is not None and not isinstance(value, str):
        raise exceptions.Invalid(f"{key} must be a string or null.")
    if value is not None and key in im.COLUMN_LENGTHS and len(value) > im.COLUMN_LENGTHS[key]:
        raise exceptions.Invalid(
            f"{key} is too long: {len(value)} characters, at most {im.COLUMN_LENGTHS[key]}."
        )
    return value


def _status(key: str, value):
    if value is None:
        raise exceptions.Invalid("Image status is required.")
    return _string(key, value)


def _integer(key: str, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise exceptions.Invalid(f"{key} must be an integer.")
    try:
        number = int(value)
    except ValueError:
        raise exceptions.Invalid(f"{key} must be an integer.") from None
    return im.check_range(key, number, im.BIGINT_RANGE)


def _integer_or_zero(key: str, value):
    return _integer(key, value) or 0


def _boolean(key: str, value):
    if value is None:
        return False
    if not isinstance(value, bool):
        raise exceptions.Invalid(f"{key} must be true or false.")
    return value


def _timestamp(key: str, value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise exceptions.Invalid(f"Invalid time format for {key}.")
    return im.parse_field_time(key, value)


def _properties(key: str, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exceptions.Invalid("properties must be a JSON object.")
    for name, prop in value.items():
        if prop is not None and not isinstance(prop, str):
            raise exceptions.Invalid(f"Property '{name}' must be a string or null.")
        if len(name) > im.COLUMN_LENGTHS["property"]:
            raise exceptions.Invalid(
                f"Property name is too long: {len(name)} characters, at most "
                f"{im.COLUMN_LENGTHS['property']}."
            )
    return dict(value)


def _location_data(key: str, value):
    if not isinstance(value, list):
        raise exceptions.Invalid("location_data must be a list.")
    return [_location(entry) for entry in value]


def _location(entry) -> dict:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise exceptions.Invalid("Each location_data entry must be an object with a 'url'.")
    location = {
        "url": entry["url"],
        "metadata": entry.get("metadata") or {},
        "status": entry.get("status") or "active",
    }
    if not isinstance(location["metadata"], dict):
        raise exceptions.Invalid("location_data metadata must be a JSON object.")
    if not isinstance(location["status"], str):
        raise exceptions.Invalid("location_data status must be a string.")
    if entry.get("id") is not None:
        if isinstance(entry["id"], bool) or not isinstance(entry["id"], int):
            raise exceptions.Invalid("location_data id must be an integer.")
        location["id"] = im.check_range("location_data id", entry["id"], im.INT_RANGE)
    return location


FIELD_PARSERS = {
    "id": _string,
    "name": _string,
    "status": _status,
    "size": _integer,
    "virtual_size": _integer,
    "disk_format": _string,
    "container_format": _string,
    "min_disk": _integer_or_zero,
    "min_ram": _integer_or_zero,
    "is_public": _boolean,
    "checksum": _string,
    "owner": _string,
    "protected": _boolean,
    "created_at": _timestamp,
    "updated_at": _timestamp,
    "deleted_at": _timestamp,
    "deleted": _boolean,
    "properties": _properties,
    "location": _string,
    "location_data": _location_data,
}


# --- what every backend can store -----------------------------------------------------

LOCATION_STATUSES = ("active", "pending_delete", "deleted")
# The image columns holding min_disk and min_ram are 32-bit integers.
INT_LIMITS = {"min_disk": im.INT_RANGE, "min_ram": im.INT_RANGE}
_FOUR_BYTE = re.compile("[\U00010000-\U0010ffff]")


def check_storable(values: dict) -> None:
    """400 for typed values (image_values') that some database could not store alike.

    Checked here so that every backend answers the same: property values longer than
    MySQL's TEXT, unknown location statuses, NUL characters (PostgreSQL cannot store
    them), 4-byte UTF-8 (MySQL's utf8 cannot), min_disk/min_ram beyond 32 bits, and
    image statuses outside im.STATUSES; in that order, as Glance's database layer.
    """
    properties = values.get("properties") or {}
    for name, value in properties.items():
        if value is not None and len(value.encode("utf-8", "surrogatepass")) > (
            im.PROPERTY_VALUE_BYTES
        ):
            raise exceptions.Invalid(
                f"Property '{name}' is too long: at most {im.PROPERTY_VALUE_BYTES} bytes."
            )
    for location in values.get("location_data") or ():
        if location["status"] not in LOCATION_STATUSES:
            raise exceptions.Invalid(f"Invalid location status '{location['status']}'.")
    columns = {key: value for key, value in values.items() if key not in _NOT_COLUMNS}
    _check_text(
        columns, properties, lambda text: "\x00" in text, "NUL characters.", "NUL characters."
    )
    _check_text(
        columns,
        properties,
        lambda text: _FOUR_BYTE.search(text) is not None,
        "4 byte unicode characters.",
        "4 byte unicode.",
    )
    for key, bounds in INT_LIMITS.items():
        if values.get(key) is not None:
            im.check_range(key, values[key], bounds)
    if "status" in values and values["status"] not in im.STATUSES:
        raise exceptions.Invalid(f"Invalid image status '{values['status']}' for image.")


_NOT_COLUMNS = frozenset({"properties", "location", "location_data"})


def _check_text(columns: dict, properties: dict, bad, what: str, names_what: str) -> None:
    """Invalid for the first string value (then property name, then value) that is `bad`."""
    for key, value in columns.items():
        if isinstance(value, str) and bad(value):
            raise exceptions.Invalid(f"{key.title()} can't contain {what}")
    for name, value in properties.items():
        if bad(name):
            raise exceptions.Invalid(f"Property names can't contain {names_what}")
        if value is not None and bad(value):
            raise exceptions.Invalid(f"{name.title()} can't contain {what}")
