"""The image database: every SQL statement glance-lite runs, behind `Database`.

Only the registry uses this module. Statements are SQLAlchemy Core on the tables of
models.py; every public method is one transaction (retried as a whole when SQLite is
busy or a server reports a deadlock) and returns plain dicts. Behaviour follows Glance
Queens' glance/db/sqlalchemy/api.py as described in registry-v1.md and api-v1.md.
"""

import contextlib
import datetime
import functools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa

from glance_lite import exceptions, image_meta
from glance_lite.context import RequestContext
from glance_lite.db import models, session

LOG = logging.getLogger(__name__)

LOCATION_STATUSES = ("active", "pending_delete", "deleted")
STATUSES = image_meta.STATUSES
SORT_KEYS = image_meta.SORT_KEYS
SORT_DIRS = image_meta.SORT_DIRS
MAX_INT = image_meta.INT_MAX
MAX_BIGINT = image_meta.BIGINT_MAX
EPOCH = datetime.datetime(1970, 1, 1)

RETRY_ATTEMPTS = 12
RETRY_BASE_DELAY = 0.02
RETRY_MAX_DELAY = 1.0

_FOUR_BYTE = re.compile("[\U00010000-\U0010ffff]")

images = models.images
props = models.image_properties
locs = models.image_locations
members = models.image_members
tags = models.image_tags

# The v1 image dict: these columns plus is_public, properties, location, location_data.
IMAGE_COLUMNS = tuple(key for key in image_meta.CORE_FIELDS if key != "is_public")
_WRITABLE = frozenset(IMAGE_COLUMNS) | {"visibility"}
_PROTECTED_ON_UPDATE = ("created_at", "updated_at", "deleted_at", "deleted")
_INT_LIMITS = {
    "min_disk": (-MAX_INT - 1, MAX_INT),
    "min_ram": (-MAX_INT - 1, MAX_INT),
    "size": (-MAX_BIGINT - 1, MAX_BIGINT),
    "virtual_size": (-MAX_BIGINT - 1, MAX_BIGINT),
}
_STRING_FIELDS = ("id", "name", "disk_format", "container_format", "checksum", "owner")
MEMBER_COLUMNS = (
    "id",
    "image_id",
    "member",
    "can_share",
    "status",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
)


# --- errors and retries --------------------------------------------------------------


def _dbapi_message(err: sa.exc.DBAPIError, password: str | None) -> str:
    text = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else type(err).__name__
    if password:
        text = text.replace(password, "***")
    return text


def _is_retryable(err: sa.exc.DBAPIError) -> bool:
    orig = err.orig
    text = str(orig).lower()
    if "database is locked" in text or "database table is locked" in text:
        return True
    code = orig.args[0] if getattr(orig, "args", None) else None
    if code in (1205, 1213):  # MySQL lock wait timeout, deadlock
        return True
    return getattr(orig, "sqlstate", None) in ("40001", "40P01")


def _is_missing_table(err: sa.exc.DBAPIError) -> bool:
    orig = err.orig
    code = orig.args[0] if getattr(orig, "args", None) else None
    return (
        "no such table" in str(orig) or getattr(orig, "sqlstate", None) == "42P01" or code == 1146
    )


def translate_error(err: Exception, password: str | None) -> exceptions.GlanceLiteError | None:
    """The domain error a database failure stands for, or None to let it through."""
    if isinstance(err, sa.exc.TimeoutError):
        return exceptions.ServiceUnavailable(
            f"Could not reach the image database: no free connection in the pool ({err})"
        )
    if not isinstance(err, sa.exc.DBAPIError):
        return None
    if _is_missing_table(err):
        return exceptions.ServiceUnavailable(
            "The image database has no glance-lite schema; run 'glance-manage db sync': "
            + _dbapi_message(err, password)
        )
    if isinstance(err, sa.exc.OperationalError | sa.exc.InterfaceError) or (
        err.connection_invalidated
    ):
        return exceptions.ServiceUnavailable(
            "Could not reach the image database: " + _dbapi_message(err, password)
        )
    return None


def _db_call(method: Callable) -> Callable:
    """Run a Database method as a unit: retry it when busy, translate connection errors."""

    @functools.wraps(method)
    def wrapper(self: "Database", *args, **kwargs):
        for attempt in range(RETRY_ATTEMPTS):
            try:
                return method(self, *args, **kwargs)
            except sa.exc.DBAPIError as err:
                if attempt + 1 < RETRY_ATTEMPTS and _is_retryable(err):
                    delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**attempt)
                    time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
                    continue
                translated = translate_error(err, self.engine.url.password)
                if translated is None:
                    raise
                raise translated from None
            except sa.exc.TimeoutError as err:
                raise translate_error(err, None) from None
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


# --- value checks ----------------------------------------------------------------------


def is_uuid_like(value: object) -> bool:
    """True for what oslo's is_uuid_like accepts: any spelling uuid.UUID takes."""
    if not isinstance(value, str):
        return False
    try:
        canonical = str(uuid.UUID(value)).replace("-", "")
    except ValueError:
        return False
    stripped = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
    return canonical == stripped.lower()


def _has_four_byte(value: object) -> bool:
    return isinstance(value, str) and _FOUR_BYTE.search(value) is not None


def _check_four_byte(values: dict, properties: dict) -> None:
    _check_no_nul(values, properties)
    for key, value in values.items():
        if _has_four_byte(value):
            raise exceptions.Invalid(f"{key.title()} can't contain 4 byte unicode characters.")
    for name, value in properties.items():
        if _has_four_byte(name):
            raise exceptions.Invalid("Property names can't contain 4 byte unicode.")
        if _has_four_byte(value):
            raise exceptions.Invalid(f"{name.title()} can't contain 4 byte unicode characters.")


def _check_no_nul(values: dict, properties: dict) -> None:
    """PostgreSQL cannot store a NUL character in text; refuse it on every backend."""
    for key, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            raise exceptions.Invalid(f"{key.title()} can't contain NUL characters.")
    for name, value in properties.items():
        if "\x00" in name:
            raise exceptions.Invalid("Property names can't contain NUL characters.")
        if isinstance(value, str) and "\x00" in value:
            raise exceptions.Invalid(f"{name.title()} can't contain NUL characters.")


def _as_int(key: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise exceptions.Invalid(
            f"Invalid value for '{key}': {value!r} is not an integer."
        ) from None
    low, high = _INT_LIMITS[key]
    if number > high:
        raise exceptions.Invalid(f"'{key}' value out of range, must not exceed {high}.")
    if number < low:
        raise exceptions.Invalid(f"'{key}' value out of range, must not be below {low}.")
    return number


def _as_datetime(key: str, value: object) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise exceptions.Invalid(f"Invalid datetime value for '{key}': {value!r}") from None
    else:
        raise exceptions.Invalid(f"Invalid datetime value for '{key}': {value!r}")
    if parsed is not None and parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
    return parsed


def _check_status(status: object) -> None:
    if status not in STATUSES:
        raise exceptions.Invalid(f"Invalid image status '{status}' for image.")


def _check_string(key: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise exceptions.Invalid(f"Invalid value for '{key}': {value!r} is not a string.")
    limit = images.c[key].type.length
    if len(value) > limit:
        raise exceptions.Invalid(f"{key.title()} is too long: at most {limit} characters.")


def _normalize_values(values: dict) -> dict:
    """Image column values checked and typed, keys not in the schema dropped."""
    row = {key: value for key, value in values.items() if key in _WRITABLE}
    for key in _STRING_FIELDS:
        if key in row:
            _check_string(key, row[key])
    for key in _INT_LIMITS:
        if key in row:
            row[key] = _as_int(key, row[key])
    for key in ("min_disk", "min_ram"):
        if key in row and row[key] is None:
            row[key] = 0
    for key in ("protected", "deleted"):
        if key in row:
            row[key] = bool(row[key])
    for key in ("created_at", "updated_at", "deleted_at"):
        if key in row:
            row[key] = _as_datetime(key, row[key])
    if "owner" in row and not row["owner"]:
        row["owner"] = None
    if "visibility" in row and row["visibility"] not in models.IMAGE_VISIBILITIES:
        raise exceptions.Invalid(f"Invalid visibility value: {row['visibility']}")
    return row


def _normalize_properties(properties: object) -> dict[str, str | None]:
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise exceptions.Invalid("Image properties must be a mapping of names to values.")
    normalized = {}
    for name, value in properties.items():
        if not isinstance(name, str) or len(name) > 255:
            raise exceptions.Invalid(f"Invalid property name: {name!r}")
        normalized[name] = None if value is None else str(value)
    return normalized


def _location_entry(entry: object) -> dict:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise exceptions.Invalid("Invalid location_data: each entry needs a 'url' string.")
    metadata = entry.get("metadata") or {}
    status = entry.get("status", "active")
    loc_id = entry.get("id")
    if not isinstance(metadata, dict):
        raise exceptions.Invalid("Invalid location_data: 'metadata' must be a mapping.")
    if status not in LOCATION_STATUSES:
        raise exceptions.Invalid(f"Invalid location status '{status}'.")
    if loc_id is not None and (isinstance(loc_id, bool) or not isinstance(loc_id, int)):
        raise exceptions.Invalid(f"The location data has an invalid ID: {loc_id!r}")
    try:
        encoded = json.dumps(metadata)
    except (TypeError, ValueError):
        raise exceptions.Invalid("Invalid location_data: 'metadata' is not JSON.") from None
    return {"url": entry["url"], "meta_data": encoded, "status": status, "id": loc_id}


def _location_list(values: dict) -> list[dict] | None:
    """The merged `location` + `location_data` list in Glance's order, None if not given.

    The single `location` comes first as an active location with no metadata unless
    location_data describes the same URL; location_data URLs follow in their order.
    """
    if "location" not in values and "location_data" not in values:
        return None
    location = values.get("location")
    data = values.get("location_data") or []
    if not isinstance(data, list):
        raise exceptions.Invalid("Invalid location_data: a list is required.")
    if location is not None and not isinstance(location, str):
        raise exceptions.Invalid("Invalid location: a URL string is required.")
    described = {}
    for entry in data:
        checked = _location_entry(entry)
        described[checked["url"]] = checked
    ordered = [location] if location is not None else []
    ordered += [url for url in described if url not in ordered]
    plain = {"meta_data": "{}", "status": "active", "id": None}
    return [described.get(url) or {"url": url, **plain} for url in ordered]


def _split_values(values: dict) -> tuple[dict, dict, list[dict] | None]:
    """(image columns, properties, locations) from a v1 values dict."""
    values = dict(values)
    properties = _normalize_properties(values.pop("properties", None))
    locations = _location_list(values)
    values.pop("location", None)
    values.pop("location_data", None)
    _check_four_byte(values, properties)
    if "is_public" in values:
        values["visibility"] = "public" if values.pop("is_public") else "shared"
    return _normalize_values(values), properties, locations


# --- rows to dicts ------------------------------------------------------------------------


def _metadata(encoded: str | None) -> dict:
    try:
        decoded = json.loads(encoded or "{}")
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _image_dict(row: sa.Row, properties: dict, locations: list[dict]) -> dict:
    image = row._asdict()  # every column of the images table (hot on listings)
    image["is_public"] = image.pop("visibility") == "public"
    image["properties"] = properties
    image["location_data"] = locations
    image["location"] = next((loc["url"] for loc in locations if loc["status"] == "active"), None)
    return image


def _property_rows(image_id: str, properties: dict, now: datetime.datetime) -> list[dict]:
    """New image_properties rows for `properties`."""
    return [
        {
            "image_id": image_id,
            "name": name,
            "value": value,
            "created_at": now,
            "updated_at": now,
            "deleted": False,
        }
        for name, value in properties.items()
    ]


def _member_dict(row: sa.Row) -> dict:
    return {key: getattr(row, key) for key in MEMBER_COLUMNS}


# --- access rules ------------------------------------------------------------------------


def _is_mutable(context: RequestContext, row: sa.Row) -> bool:
    if context.is_admin:
        return True
    if row.owner is None or context.owner is None:
        return False
    return row.owner == context.owner


def _check_mutable(context: RequestContext, row: sa.Row) -> None:
    if _is_mutable(context, row):
        return
    if row.visibility in ("public", "community"):
        raise exceptions.Forbidden("You do not own this image")
    raise exceptions.NotFound(f"No image found with ID {row.id}")


def _regular_visibility(context: RequestContext) -> sa.ColumnElement[bool]:
    """The listing rule for a non-admin (or admin acting as a user), registry-v1 §2.1."""
    live_member = sa.and_(members.c.image_id == images.c.id, members.c.deleted.is_(sa.false()))
    if context.owner is not None:
        live_member = sa.and_(live_member, members.c.member == context.owner)
    arms = [
        images.c.visibility.in_(("public", "community")),
        sa.and_(images.c.visibility == "shared", sa.exists().where(live_member)),
    ]
    if context.owner is not None:
        arms.append(images.c.owner == context.owner)
        community = sa.or_(images.c.visibility != "community", images.c.owner == context.owner)
    else:
        community = images.c.visibility != "community"
    return sa.and_(sa.or_(*arms), community)


# --- filters and ordering ---------------------------------------------------------------

_EXACT_FILTERS = ("name", "status", "container_format", "disk_format", "id")
_KNOWN_FILTERS = frozenset(
    (
        *_EXACT_FILTERS,
        "size_min",
        "size_max",
        "min_ram",
        "min_disk",
        "protected",
        "changes_since",
        "deleted",
        "is_public",
        "properties",
    )
)


def _filter_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise exceptions.Invalid(f"Bad value passed to filter {key} got {value}")
    try:
        return int(value)
    except ValueError:
        raise exceptions.Invalid(f"Bad value passed to filter {key} got {value}") from None


def _property_match(name: str, value: object) -> sa.ColumnElement[bool]:
    return sa.exists().where(
        props.c.image_id == images.c.id,
        props.c.name == name,
        props.c.value == (None if value is None else str(value)),
        props.c.deleted.is_(sa.false()),
    )


def _filter_conditions(filters: dict) -> list[sa.ColumnElement[bool]]:
    unknown = set(filters) - _KNOWN_FILTERS
    if unknown:
        raise exceptions.Invalid(f"Unknown filter: {', '.join(sorted(unknown))}")
    conds = []
    for key in _EXACT_FILTERS:
        if key in filters:
            value = filters[key]
            column = images.c[key]
            is_list = isinstance(value, list | tuple)
            conds.append(column.in_(list(value)) if is_list else column == value)
    if "size_min" in filters:
        conds.append(images.c.size >= _filter_int("size_min", filters["size_min"]))
    if "size_max" in filters:
        conds.append(images.c.size <= _filter_int("size_max", filters["size_max"]))
    for key in ("min_ram", "min_disk"):
        if key in filters:
            conds.append(images.c[key] == _filter_int(key, filters[key]))
    if "protected" in filters:
        conds.append(images.c.protected == bool(filters["protected"]))
    if "changes_since" in filters:
        since = _as_datetime("changes_since", filters["changes_since"])
        conds.append(images.c.updated_at > since)
    if "is_public" in filters:
        public = images.c.visibility == "public"
        conds.append(public if filters["is_public"] else images.c.visibility != "public")
    conds += [_property_match(n, v) for n, v in (filters.get("properties") or {}).items()]
    if "deleted" not in filters and "changes_since" not in filters:
        filters = {**filters, "deleted": False}
    if "deleted" in filters:
        conds.append(images.c.deleted == bool(filters["deleted"]))
        if not filters["deleted"]:
            conds.append(images.c.status != "killed")
    return conds


_NULL_AS = {
    "name": "",
    "container_format": "",
    "disk_format": "",
    "size": 0,
    "updated_at": EPOCH,
}


def _sort_expression(key: str) -> sa.ColumnElement:
    """The ordered value of `key`: NULL counts as ''/0/epoch, as in the marker comparison."""
    column = images.c[key]
    if key not in _NULL_AS:
        return column
    return sa.func.coalesce(column, sa.literal(_NULL_AS[key], column.type))


def _marker_condition(
    keys: Sequence[str], direction: str, marker: sa.Row
) -> sa.ColumnElement[bool]:
    """Rows strictly after `marker` in the (keys, direction) order."""
    after = []
    for i, key in enumerate(keys):
        crit = []
        for previous in keys[:i]:
            crit.append(_sort_expression(previous) == _marker_value(marker, previous))
        expr, value = _sort_expression(key), _marker_value(marker, key)
        crit.append(expr < value if direction == "desc" else expr > value)
        after.append(sa.and_(*crit))
    return sa.or_(*after)


def _marker_value(marker: sa.Row, key: str) -> object:
    value = getattr(marker, key)
    return _NULL_AS.get(key) if value is None else value


def _sort_keys(sort_key: str, sort_dir: str) -> list[str]:
    if sort_key not in SORT_KEYS:
        raise exceptions.Invalid("Unsupported sort_key. Acceptable values: " + ", ".join(SORT_KEYS))
    if sort_dir not in SORT_DIRS:
        raise exceptions.Invalid("Unsupported sort_dir. Acceptable values: asc, desc")
    return [sort_key] + [key for key in ("created_at", "id") if key != sort_key]


class Database:
    """The image database behind glance-registry (see the contract in the module doc)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._writer = session.writer(engine)
        # SQLite has one writer at a time. Writers of this process queue here (a green
        # lock under eventlet) instead of in SQLite's busy handler, which sleeps without
        # yielding and would stall the green thread that holds the lock.
        sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if sqlite else contextlib.nullcontext()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_pool_size: int = 5,
        max_overflow: int = 50,
        pool_timeout: int | None = None,
        connection_recycle_time: int = 3600,
    ) -> "Database":
        return cls(
            session.create_engine(
                url,
                max_pool_size=max_pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                connection_recycle_time=connection_recycle_time,
            )
        )

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    # --- images -------------------------------------------------------------------------

    @_db_call
    def image_get(
        self, context: RequestContext, image_id: str, *, force_show_deleted: bool = False
    ) -> dict:
        with self._read() as conn:
            row = self._visible_image(conn, context, image_id, force_show_deleted)
            return self._image_dicts(conn, [row], with_deleted_locations=force_show_deleted)[0]

    @_db_call
    def image_get_all(
        self,
        context: RequestContext,
        filters: dict,
        *,
        marker: str | None = None,
        limit: int | None = None,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
        admin_as_user: bool = False,
    ) -> list[dict]:
        filters = {key: value for key, value in (filters or {}).items() if value is not None}
        keys = _sort_keys(sort_key, sort_dir)
        if limit is not None and limit < 0:
            raise exceptions.Invalid("limit param must be positive")
        showing_deleted = "changes_since" in filters or filters.get("deleted") is True
        conds = _filter_conditions(filters)
        if not context.is_admin or admin_as_user:
            conds.append(_regular_visibility(context))
        with self._read() as conn:
            if marker is not None:
                conds.append(self._marker(conn, context, marker, keys, sort_dir, showing_deleted))
            if limit == 0:
                return []
            direction = sa.desc if sort_dir == "desc" else sa.asc
            stmt = (
                sa.select(images)
                .where(*conds)
                .order_by(*(direction(_sort_expression(key)) for key in keys))
                .limit(limit)
            )
            rows = conn.execute(stmt).all()
            return self._image_dicts(conn, rows, with_deleted_locations=showing_deleted)

    def _marker(
        self,
        conn: sa.Connection,
        context: RequestContext,
        marker: str,
        keys: list[str],
        sort_dir: str,
        showing_deleted: bool,
    ) -> sa.ColumnElement[bool]:
        try:
            row = self._visible_image(conn, context, marker, showing_deleted)
        except exceptions.NotFound:
            raise exceptions.Invalid("Invalid marker. Image could not be found.") from None
        return _marker_condition(keys, sort_dir, row)

    @_db_call
    def image_create(self, context: RequestContext, values: dict) -> dict:
        row, properties, locations = _split_values(values)
        row.setdefault("status", "active")
        _check_status(row["status"])
        if not context.is_admin or "owner" not in row:
            row["owner"] = context.owner
        if "id" in row and row["id"] is not None and not is_uuid_like(row["id"]):
            raise exceptions.Invalid("Invalid image id format")
        if not row.get("id"):
            row["id"] = models.new_uuid()
        now = models.utcnow()
        for key in ("created_at", "updated_at"):
            if row.get(key) is None:
                row[key] = now
        row.setdefault("visibility", "shared")
        row.setdefault("protected", False)
        row.setdefault("min_disk", 0)
        row.setdefault("min_ram", 0)
        if self.engine.dialect.name == "mysql":
            # Glance's DATETIME columns hold whole seconds there; store and return the same.
            for key in ("created_at", "updated_at", "deleted_at"):
                if isinstance(row.get(key), datetime.datetime):
                    row[key] = row[key].replace(microsecond=0)
        with self._write() as conn:
            try:
                conn.execute(images.insert().values(**row))
            except sa.exc.IntegrityError:
                # the id is the only unique column a create can collide on
                raise exceptions.Conflict(
                    f"Image with identifier {row['id']} already exists!"
                ) from None
            if properties:
                conn.execute(props.insert(), _property_rows(row["id"], properties, now))
            if locations:
                self._set_locations(conn, row["id"], locations, now=now)
                return self._load_image(conn, row["id"])
        # Nothing but what was just written: no need to read it back.
        created = {key: row.get(key) for key in IMAGE_COLUMNS}
        created["deleted"] = bool(created["deleted"])
        created["is_public"] = row["visibility"] == "public"
        created.update(properties=dict(properties), location_data=[], location=None)
        return created

    @_db_call
    def image_update(
        self,
        context: RequestContext,
        image_id: str,
        values: dict,
        *,
        purge_props: bool = False,
        from_state: str | None = None,
    ) -> dict:
        values = {k: v for k, v in values.items() if k not in _PROTECTED_ON_UPDATE}
        if not context.is_admin:
            values.pop("owner", None)
        values.pop("id", None)
        row, properties, locations = _split_values(values)
        if "status" in row:
            _check_status(row["status"])
        now = models.utcnow()
        row["updated_at"] = now
        with self._write() as conn:
            current = self._visible_image(conn, context, image_id)
            _check_mutable(context, current)
            stmt = images.update().where(images.c.id == current.id).values(**row)
            if from_state is not None:
                stmt = stmt.where(images.c.status == from_state)
            if conn.execute(stmt).rowcount == 0:
                LOG.info(
                    "cannot transition from %s to %s in update (wanted from_state=%s)",
                    current.status,
                    row.get("status"),
                    from_state,
                )
                raise exceptions.Conflict("Image operation conflicts")
            self._set_properties(conn, current.id, properties, purge=purge_props, now=now)
            if locations:
                self._set_locations(conn, current.id, locations, now=now)
            return self._load_image(conn, current.id)

    @_db_call
    def image_destroy(self, context: RequestContext, image_id: str) -> dict:
        now = models.utcnow()
        gone = {"deleted": True, "deleted_at": now, "updated_at": now}
        with self._write() as conn:
            current = self._visible_image(conn, context, image_id)
            _check_mutable(context, current)
            conn.execute(images.update().where(images.c.id == current.id).values(**gone))
            for table in models.IMAGE_CHILDREN:
                extra = {"status": "deleted"} if table is locs else {}
                conn.execute(
                    table.update()
                    .where(table.c.image_id == current.id, table.c.deleted.is_(sa.false()))
                    .values(**gone, **extra)
                )
            return self._load_image(conn, current.id)

    @_db_call
    def user_get_storage_usage(
        self, context: RequestContext, owner: str, image_id: str | None = None
    ) -> int:
        if image_id is not None and len(image_id) > 36:
            raise exceptions.NotFound(f"No image found with ID {image_id}")
        copies = (
            sa.select(sa.func.count())
            .where(locs.c.image_id == images.c.id, locs.c.status != "deleted")
            .scalar_subquery()
        )
        stmt = sa.select(sa.func.coalesce(sa.func.sum(images.c.size * copies), 0)).where(
            images.c.owner == owner,
            images.c.size > 0,
            images.c.status.not_in(("killed", "deleted")),
        )
        if image_id is not None:
            stmt = stmt.where(images.c.id != image_id)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    @_db_call
    def image_location_delete(
        self, context: RequestContext, image_id: str, location_id: int, status: str
    ) -> None:
        """Mark one location deleted (status 'deleted' or 'pending_delete'), as Glance's."""
        if status not in ("deleted", "pending_delete"):
            raise exceptions.Invalid(
                "The status of deleted image location can only be set to "
                "'pending_delete' or 'deleted'"
            )
        now = models.utcnow()
        with self._write() as conn:
            done = conn.execute(
                locs.update()
                .where(locs.c.id == location_id, locs.c.image_id == image_id)
                .values(deleted=True, status=status, deleted_at=now, updated_at=now)
            )
            if done.rowcount == 0:
                raise exceptions.NotFound(
                    f"No location found with ID {location_id} from image {image_id}"
                )

    # --- image helpers -------------------------------------------------------------------

    def _visible_image(
        self,
        conn: sa.Connection,
        context: RequestContext,
        image_id: str,
        force_show_deleted: bool = False,
    ) -> sa.Row:
        """The image row if it exists and the caller may see it, else NotFound."""
        not_found = exceptions.NotFound(f"No image found with ID {image_id}")
        if not isinstance(image_id, str) or len(image_id) > 36:
            raise not_found
        stmt = sa.select(images).where(images.c.id == image_id)
        if not (force_show_deleted or context.can_see_deleted):
            stmt = stmt.where(images.c.deleted.is_(sa.false()))
        row = conn.execute(stmt).first()
        if row is None or not self._is_visible(conn, context, row):
            raise not_found
        return row

    def _is_visible(self, conn: sa.Connection, context: RequestContext, row: sa.Row) -> bool:
        if context.is_admin or row.owner is None:
            return True
        if row.visibility in ("public", "community"):
            return True
        if context.owner is None:
            return False
        if row.owner == context.owner:
            return True
        return row.visibility == "shared" and self._live_member(conn, row.id, context.owner)

    def _live_member(self, conn: sa.Connection, image_id: str, member: str) -> sa.Row | None:
        return conn.execute(
            sa.select(members)
            .where(
                members.c.image_id == image_id,
                members.c.member == member,
                members.c.deleted.is_(sa.false()),
            )
            .order_by(members.c.id)
        ).first()

    def _load_image(self, conn: sa.Connection, image_id: str) -> dict:
        row = conn.execute(sa.select(images).where(images.c.id == image_id)).one()
        return self._image_dicts(conn, [row], with_deleted_locations=False)[0]

    def _image_dicts(
        self, conn: sa.Connection, rows: Sequence[sa.Row], *, with_deleted_locations: bool
    ) -> list[dict]:
        """Image dicts for `rows`: one query for their properties, one for locations."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        properties = {image_id: {} for image_id in ids}
        prop_rows = conn.execute(
            sa.select(props.c.image_id, props.c.name, props.c.value)
            .where(props.c.image_id.in_(ids), props.c.deleted.is_(sa.false()))
            .order_by(props.c.id)
        )
        for prop in prop_rows:
            properties[prop.image_id][prop.name] = prop.value
        locations = {image_id: [] for image_id in ids}
        stmt = sa.select(locs).where(locs.c.image_id.in_(ids)).order_by(locs.c.id)
        if not with_deleted_locations:
            stmt = stmt.where(locs.c.deleted.is_(sa.false()))
        for loc in conn.execute(stmt):
            locations[loc.image_id].append(
                {
                    "id": loc.id,
                    "url": loc.value,
                    "metadata": _metadata(loc.meta_data),
                    "status": loc.status,
                }
            )
        return [_image_dict(row, properties[row.id], locations[row.id]) for row in rows]

    def _set_properties(
        self,
        conn: sa.Connection,
        image_id: str,
        properties: dict,
        *,
        purge: bool,
        now: datetime.datetime,
    ) -> None:
        """Merge `properties` in (reviving deleted rows); with purge, drop the others."""
        existing = {
            row.name: row
            for row in conn.execute(
                sa.select(props.c.id, props.c.name, props.c.deleted).where(
                    props.c.image_id == image_id
                )
            )
        }
        updates = [
            {"prop_id": existing[name].id, "value": value}
            for name, value in properties.items()
            if name in existing
        ]
        inserts = _property_rows(
            image_id, {k: v for k, v in properties.items() if k not in existing}, now
        )
        if updates:
            conn.execute(
                props.update()
                .where(props.c.id == sa.bindparam("prop_id"))
                .values(deleted=False, deleted_at=None, updated_at=now),
                updates,
            )
        if inserts:
            conn.execute(props.insert(), inserts)
        if purge:
            stale = [
                row.id
                for name, row in existing.items()
                if name not in properties and not row.deleted
            ]
            if stale:
                conn.execute(
                    props.update()
                    .where(props.c.id.in_(stale))
                    .values(deleted=True, deleted_at=now, updated_at=now)
                )

    def _set_locations(
        self, conn: sa.Connection, image_id: str, locations: list[dict], *, now: datetime.datetime
    ) -> None:
        """Make `locations` the image's live location list (Glance's _image_locations_set)."""
        keep = [loc["id"] for loc in locations if loc["id"] is not None]
        conn.execute(
            locs.update()
            .where(
                locs.c.image_id == image_id,
                locs.c.deleted.is_(sa.false()),
                locs.c.id.not_in(keep),
            )
            .values(deleted=True, status="deleted", deleted_at=now, updated_at=now)
        )
        for loc in locations:
            gone = loc["status"] in ("deleted", "pending_delete")
            values = {
                "value": loc["url"],
                "meta_data": loc["meta_data"],
                "status": loc["status"],
                "deleted": gone,
                "deleted_at": now if gone else None,
                "updated_at": now,
            }
            if loc["id"] is None:
                conn.execute(locs.insert().values(image_id=image_id, created_at=now, **values))
                continue
            done = conn.execute(
                locs.update()
                .where(locs.c.id == loc["id"], locs.c.image_id == image_id)
                .values(**values)
            )
            if done.rowcount == 0:
                raise exceptions.NotFound(
                    f"No location found with ID {loc['id']} from image {image_id}"
                )

    # --- members -----------------------------------------------------------------------

    @_db_call
    def image_member_find(
        self,
        context: RequestContext,
        *,
        image_id: str | None = None,
        member: str | None = None,
        include_deleted: bool = False,
    ) -> list[dict]:
        stmt = sa.select(members).order_by(members.c.id)
        if not include_deleted:
            stmt = stmt.where(members.c.deleted.is_(sa.false()))
        if not context.is_admin:
            owner_match = (
                images.c.owner.is_(None)
                if context.owner is None
                else images.c.owner == context.owner
            )
            stmt = stmt.join(images, images.c.id == members.c.image_id).where(
                sa.or_(owner_match, members.c.member == context.owner)
            )
        if image_id is not None:
            stmt = stmt.where(members.c.image_id == image_id)
        if member is not None:
            stmt = stmt.where(members.c.member == member)
        with self._read() as conn:
            return [_member_dict(row) for row in conn.execute(stmt)]

    @_db_call
    def image_members_replace(
        self, context: RequestContext, image_id: str, memberships: list[dict]
    ) -> None:
        wanted = _memberships(memberships)
        now = models.utcnow()
        with self._write() as conn:
            image = self._sharable_image(conn, context, image_id)
            rows = self._member_rows(conn, image.id)
            for member_id, can_share in wanted.items():
                self._put_member(conn, image.id, member_id, can_share, rows.get(member_id), now)
            stale = [
                row.id
                for member_id, row in rows.items()
                if member_id not in wanted and not row.deleted
            ]
            if stale:
                conn.execute(
                    members.update()
                    .where(members.c.id.in_(stale))
                    .values(deleted=True, deleted_at=now, updated_at=now)
                )

    @_db_call
    def image_member_set(
        self, context: RequestContext, image_id: str, member: str, can_share: bool | None
    ) -> None:
        _check_member_id(member)
        now = models.utcnow()
        with self._write() as conn:
            image = self._sharable_image(conn, context, image_id)
            row = self._member_rows(conn, image.id, member).get(member)
            if row is not None and can_share is None:
                return  # Glance's wart: a body-less PUT leaves a deleted membership deleted.
            self._put_member(conn, image.id, member, can_share, row, now)

    @_db_call
    def image_member_delete(self, context: RequestContext, image_id: str, member: str) -> None:
        now = models.utcnow()
        with self._write() as conn:
            image = self._sharable_image(conn, context, image_id)
            row = self._member_rows(conn, image.id, member).get(member)
            if row is None or row.deleted:
                raise exceptions.NotFound("Membership could not be found.")
            conn.execute(
                members.update()
                .where(members.c.id == row.id)
                .values(deleted=True, deleted_at=now, updated_at=now)
            )

    @_db_call
    def image_member_count(self, context: RequestContext, image_id: str) -> int:
        stmt = sa.select(sa.func.count()).where(
            members.c.image_id == image_id, members.c.deleted.is_(sa.false())
        )
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _sharable_image(self, conn: sa.Connection, context: RequestContext, image_id: str):
        image = self._visible_image(conn, context, image_id)
        if context.is_admin:
            return image
        if context.owner is not None:
            if image.owner == context.owner:
                return image
            own = self._live_member(conn, image.id, context.owner)
            if own is not None and own.can_share:
                return image
        raise exceptions.Forbidden("No permission to share that image")

    def _member_rows(
        self, conn: sa.Connection, image_id: str, member: str | None = None
    ) -> dict[str, sa.Row]:
        """One row per member of the image: the live one, else the latest deleted one."""
        stmt = sa.select(members).where(members.c.image_id == image_id).order_by(members.c.id)
        if member is not None:
            stmt = stmt.where(members.c.member == member)
        chosen: dict[str, sa.Row] = {}
        for row in conn.execute(stmt):
            previous = chosen.get(row.member)
            if previous is None or previous.deleted:
                chosen[row.member] = row
        return chosen

    def _put_member(
        self,
        conn: sa.Connection,
        image_id: str,
        member: str,
        can_share: bool | None,
        row: sa.Row | None,
        now: datetime.datetime,
    ) -> None:
        """Create the membership, or update and revive the existing row."""
        if row is None:
            conn.execute(
                members.insert().values(
                    image_id=image_id,
                    member=member,
                    can_share=bool(can_share),
                    status="pending",
                    created_at=now,
                    updated_at=now,
                    deleted=False,
                )
            )
            return
        share = row.can_share if can_share is None else bool(can_share)
        conn.execute(
            members.update()
            .where(members.c.id == row.id)
            .values(can_share=share, deleted=False, deleted_at=None, updated_at=now)
        )

    # --- maintenance -------------------------------------------------------------------

    @_db_call
    def purge_deleted_rows(self, age_in_days: int, max_rows: int) -> dict[str, int]:
        """Hard-delete soft-deleted rows older than `age_in_days`, at most `max_rows` a table.

        task_info rows of purgeable tasks go first, then the image children, then tasks
        and images that no longer have children (so a foreign key never blocks the purge).
        """
        if age_in_days < 0:
            raise exceptions.Invalid("Must supply a non-negative value for age.")
        if max_rows < 1:
            raise exceptions.Invalid("Minimal rows limit is 1.")
        cutoff = models.utcnow() - datetime.timedelta(days=age_in_days)
        counts = {"task_info": self._purge_task_info(cutoff, max_rows)}
        for table in (*models.IMAGE_CHILDREN, models.tasks, images):
            counts[table.name] = self._purge_table(table, cutoff, max_rows)
            LOG.info("Deleted %d row(s) from table %s", counts[table.name], table.name)
        return counts

    def _purge_task_info(self, cutoff: datetime.datetime, max_rows: int) -> int:
        task_info, tasks = models.task_info, models.tasks
        with self._write() as conn:
            ids = (
                conn.execute(
                    sa.select(task_info.c.task_id)
                    .join(tasks, tasks.c.id == task_info.c.task_id)
                    .where(tasks.c.deleted.is_(sa.true()), tasks.c.deleted_at < cutoff)
                    .order_by(tasks.c.deleted_at)
                    .limit(max_rows)
                )
                .scalars()
                .all()
            )
            if ids:
                conn.execute(task_info.delete().where(task_info.c.task_id.in_(ids)))
        LOG.info("Deleted %d row(s) from table task_info", len(ids))
        return len(ids)

    def _purge_table(self, table: sa.Table, cutoff: datetime.datetime, max_rows: int) -> int:
        stmt = (
            sa.select(table.c.id)
            .where(table.c.deleted.is_(sa.true()), table.c.deleted_at < cutoff)
            .order_by(table.c.deleted_at)
            .limit(max_rows)
        )
        for child in _children_of(table):
            stmt = stmt.where(~sa.exists().where(child.c[_fk_column(child)] == table.c.id))
        with self._write() as conn:
            ids = conn.execute(stmt).scalars().all()
            if ids:
                conn.execute(table.delete().where(table.c.id.in_(ids)))
        return len(ids)


def _children_of(table: sa.Table) -> tuple[sa.Table, ...]:
    if table is images:
        return models.IMAGE_CHILDREN
    if table is models.tasks:
        return (models.task_info,)
    return ()


def _fk_column(child: sa.Table) -> str:
    return "task_id" if child is models.task_info else "image_id"


def _check_member_id(member: object) -> None:
    if not isinstance(member, str) or not member or len(member) > 255:
        raise exceptions.Invalid(f"Invalid member id: {member!r}")


def _memberships(memberships: object) -> dict[str, bool | None]:
    """member_id -> can_share (None: keep) from the replace-all body list."""
    if not isinstance(memberships, list):
        raise exceptions.Invalid("Invalid membership association: a list is required")
    wanted: dict[str, bool | None] = {}
    for entry in memberships:
        if not isinstance(entry, dict) or "member_id" not in entry:
            raise exceptions.Invalid("Invalid membership association: 'member_id'")
        _check_member_id(entry["member_id"])
        can_share = entry.get("can_share")
        wanted[entry["member_id"]] = None if can_share is None else bool(can_share)
    return wanted
