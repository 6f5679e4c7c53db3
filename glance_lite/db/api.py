"""The image database: every SQL statement glance-lite runs, behind `Database`.

Only the registry uses this module. Statements are SQLAlchemy Core on the tables of
models.py; every public method is one transaction (retried as a whole when SQLite is
busy or a server reports a deadlock) and returns plain dicts. Behaviour follows Glance
Queens' glance/db/sqlalchemy/api.py as described in registry-v1.md and api-v1.md.

The image paths (show, list, create, update, delete) run statements compiled once per
dialect on the DBAPI cursor (prepared.py, statements.py, listing.py); members, usage and
purge use Core directly. Every write that changes what an image's detail-listing entry
shows stores that entry's JSON in images.listing_doc in the same transaction
(`_finish_write`, or the INSERT of a create), so a detail listing reads text only.
"""

import collections
import contextlib
import dataclasses
import datetime
import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypedDict, Unpack

import sqlalchemy as sa

from glance_lite import exceptions, image_meta
from glance_lite.context import RequestContext
from glance_lite.db import listing, models, prepared, session, statements

LOG = logging.getLogger(__name__)

SORT_KEYS = image_meta.SORT_KEYS
SORT_DIRS = image_meta.SORT_DIRS

RETRY_ATTEMPTS = 12
RETRY_BASE_DELAY = 0.02
RETRY_MAX_DELAY = 1.0

images = models.images
locs = models.image_locations
members = models.image_members

# The v1 image dict: these columns plus is_public, properties, location, location_data.
IMAGE_COLUMNS = tuple(key for key in image_meta.CORE_FIELDS if key != "is_public")
_WRITABLE = frozenset(IMAGE_COLUMNS) | {"visibility"}
LISTING_DOC = ("listing_doc",)  # statements.update_image's shape for the listing entry
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


# --- typed values to rows ------------------------------------------------------------


def _location_list(values: dict) -> list[dict] | None:
    """The merged `location` + `location_data` list in Glance's order, None if not given.

    The single `location` comes first as an active location with no metadata unless
    location_data describes the same URL; location_data URLs follow in their order.
    """
    if "location" not in values and "location_data" not in values:
        return None
    location = values.get("location")
    described = {
        entry["url"]: {
            "url": entry["url"],
            "meta_data": json.dumps(entry.get("metadata") or {}),
            "status": entry.get("status", "active"),
            "id": entry.get("id"),
        }
        for entry in values.get("location_data") or ()
    }
    ordered = [location] if location is not None else []
    ordered += [url for url in described if url not in ordered]
    plain = {"meta_data": "{}", "status": "active", "id": None}
    return [described.get(url) or {"url": url, **plain} for url in ordered]


def _split_values(values: dict) -> tuple[dict, dict, list[dict] | None]:
    """(image columns, properties, locations) from the registry's typed values."""
    properties = values.get("properties") or {}
    locations = _location_list(values)
    row = {key: value for key, value in values.items() if key in _WRITABLE}
    if "is_public" in values:
        row["visibility"] = "public" if values["is_public"] else "shared"
    return row, properties, locations


# --- rows to dicts ------------------------------------------------------------------------


def _metadata(encoded: str | None) -> dict:
    try:
        decoded = json.loads(encoded or "{}")
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


# An image row as read: every column but the listing document.
ImageRow = collections.namedtuple("ImageRow", [column.name for column in listing.ROW_COLUMNS])


def _image_dict(row: ImageRow, properties: dict, locations: list[dict]) -> dict:
    image = row._asdict()  # every column of the image row (hot on listings)
    image["is_public"] = image.pop("visibility") == "public"
    image["properties"] = properties
    image["location_data"] = locations
    image["location"] = next((loc["url"] for loc in locations if loc["status"] == "active"), None)
    return image


def _property_rows(image_id: str, properties: dict, now: datetime.datetime) -> list[dict]:
    """The values of statements.insert_property for new rows of `properties`."""
    return [
        {"v_image_id": image_id, "v_name": name, "v_value": value, "v_now": now}
        for name, value in properties.items()
    ]


def _image_dicts(
    cur: prepared.Cursor, rows: Sequence[ImageRow], *, with_deleted_locations: bool
) -> list[dict]:
    """Image dicts for `rows`: their properties and locations, one IN query each."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    properties = _properties_of(cur, ids)
    locations: dict[str, list] = {image_id: [] for image_id in ids}
    for count, values in statements.chunks(ids):
        for image_id, loc_id, url, meta_data, status, deleted in cur.fetch(
            statements.locations_of, values, count
        ):
            if with_deleted_locations or not deleted:
                locations[image_id].append(
                    {"id": loc_id, "url": url, "metadata": _metadata(meta_data), "status": status}
                )
    return [_image_dict(row, properties[row.id], locations[row.id]) for row in rows]


def _properties_of(cur: prepared.Cursor, ids: Sequence[str]) -> dict[str, dict]:
    """The live properties of the images `ids`, one IN query per chunk of ids."""
    properties: dict[str, dict] = {image_id: {} for image_id in ids}
    for count, values in statements.chunks(ids):
        for image_id, name, value, deleted in cur.fetch(statements.properties_of, values, count):
            if not deleted:
                properties[image_id][name] = value
    return properties


def _render_documents(cur: prepared.Cursor, ids: Sequence[str]) -> dict[str, str]:
    """The listing entries of the images `ids` rendered from their rows (an entry shows
    no locations: none are read)."""
    rows = _image_rows(cur, ids)
    properties = _properties_of(cur, [row.id for row in rows])
    return {
        row.id: image_meta.listing_json(_image_dict(row, properties[row.id], [])) for row in rows
    }


def _image_rows(cur: prepared.Cursor, ids: Sequence[str]) -> list[ImageRow]:
    """The rows of the images `ids` (in no particular order)."""
    rows = []
    for count, values in statements.chunks(ids):
        rows += [ImageRow._make(row) for row in cur.fetch(statements.images_by_ids, values, count)]
    return rows


def _insert_properties(cur: prepared.Cursor, rows: list[dict]) -> None:
    """Insert property rows; names the database takes for one another are a 400."""
    try:
        cur.execute_many(statements.insert_property, rows)
    except sa.exc.IntegrityError:
        # (image_id, name) is the only unique key here, and the names are distinct in
        # Python: MySQL/MariaDB compare them ignoring trailing spaces ("a" and "a ").
        names = [row["v_name"] for row in rows]
        spaced = [name for name in names if name != name.rstrip(" ")] or names
        raise exceptions.Invalid(
            "Property names must differ by more than trailing spaces: "
            + ", ".join(map(repr, sorted(spaced)))
        ) from None


def _member_dict(row: sa.Row) -> dict:
    return {key: getattr(row, key) for key in MEMBER_COLUMNS}


# --- access rules ------------------------------------------------------------------------


def _is_mutable(context: RequestContext, row: ImageRow) -> bool:
    if context.is_admin:
        return True
    if row.owner is None or context.owner is None:
        return False
    return row.owner == context.owner


def _check_mutable(context: RequestContext, row: ImageRow) -> None:
    if _is_mutable(context, row):
        return
    if row.visibility in ("public", "community"):
        raise exceptions.Forbidden("You do not own this image")
    raise exceptions.NotFound(f"No image found with ID {row.id}")


@dataclasses.dataclass(frozen=True)
class _ListQuery:
    """A checked image_get_all query: its statement shape and bind values (listing.py)."""

    keys: tuple[str, ...]
    sort_dir: str
    filters: tuple
    visibility: tuple
    values: dict
    marker: str | None
    limit: int | None
    showing_deleted: bool


class ListOptions(TypedDict, total=False):
    """How a listing pages and sorts (the keyword arguments of the image_get_all_*)."""

    marker: str | None  # the id of the last image of the previous page
    limit: int | None
    sort_key: str  # default created_at
    sort_dir: str  # default desc
    admin_as_user: bool  # an admin sees what its tenant would (default False)


def _list_query(
    context: RequestContext,
    filters: dict,
    *,
    marker: str | None = None,
    limit: int | None = None,
    sort_key: str = "created_at",
    sort_dir: str = "desc",
    admin_as_user: bool = False,
) -> _ListQuery:
    filters = {key: value for key, value in (filters or {}).items() if value is not None}
    keys = listing.sort_keys(sort_key, sort_dir)
    if limit is not None and limit < 0:
        raise exceptions.Invalid("limit param must be positive")
    filter_shape, values = listing.filter_plan(filters)
    regular = not context.is_admin or admin_as_user
    visibility_shape, visibility_values = listing.visibility_plan(context, regular)
    values.update(visibility_values)
    if limit is not None:
        values["limit"] = limit
    return _ListQuery(
        keys=keys,
        sort_dir=sort_dir,
        filters=filter_shape,
        visibility=visibility_shape,
        values=values,
        marker=marker,
        limit=limit,
        showing_deleted="changes_since" in filters or filters.get("deleted") is True,
    )


class Database:
    """The image database behind glance-registry (see the contract in the module doc)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._writer = session.writer(engine)
        self._statements = prepared.Statements(engine.dialect)
        # SQLite has one writer at a time. Writers of this process queue here (a green
        # lock under eventlet) instead of in SQLite's busy handler, which sleeps without
        # yielding and would stall the green thread that holds the lock.
        sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if sqlite else contextlib.nullcontext()
        # On SQLite we emit BEGIN ourselves (session.py); a writer takes the lock up front.
        self._begin_read = "BEGIN" if sqlite else None
        self._begin_write = "BEGIN IMMEDIATE" if sqlite else None
        # SQLite joins a detail listing's documents itself (listing.joined_documents).
        self._joins_in_sql = sqlite

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
                busy_wait_in_sqlite=False,
            )
        )

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _read(self) -> Iterator[prepared.Cursor]:
        with prepared.transaction(self.engine, self._statements, begin=self._begin_read) as cur:
            yield cur

    @contextlib.contextmanager
    def _write(self) -> Iterator[prepared.Cursor]:
        with (
            self._write_lock,
            prepared.transaction(self.engine, self._statements, begin=self._begin_write) as cur,
        ):
            yield cur

    @contextlib.contextmanager
    def _core_read(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _core_write(self) -> Iterator[sa.Connection]:
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    def _cursor(self, conn: sa.Connection) -> prepared.Cursor:
        return prepared.of_connection(conn, self._statements)

    # --- images -------------------------------------------------------------------------

    @_db_call
    def image_get(
        self, context: RequestContext, image_id: str, *, force_show_deleted: bool = False
    ) -> dict:
        with self._read() as cur:
            row = self._visible_image(cur, context, image_id, force_show_deleted)
            return _image_dicts(cur, [row], with_deleted_locations=force_show_deleted)[0]

    @_db_call
    def image_get_all(
        self,
        context: RequestContext,
        filters: dict,
        **options: Unpack[ListOptions],
    ) -> list[dict]:
        query = _list_query(context, filters, **options)
        with self._read() as cur:
            rows = [ImageRow._make(row) for row in self._list(cur, context, "rows", query)]
            return _image_dicts(cur, rows, with_deleted_locations=query.showing_deleted)

    @_db_call
    def image_get_all_documents(
        self,
        context: RequestContext,
        filters: dict,
        **options: Unpack[ListOptions],
    ) -> bytes:
        """image_get_all's images as their detail-listing JSON entries without locations,
        joined with ", " (b"" for none).

        Each entry is the text image_meta.listing_json gives for that image (ASCII),
        encoded: read from images.listing_doc, rendered from the rows where that is NULL.
        """
        query = _list_query(context, filters, **options)
        with self._read() as cur:
            if self._joins_in_sql and query.limit:
                ((joined,),) = self._list(
                    cur, context, "documents", query, build=listing.joined_documents
                )
                if joined is None:
                    return b""
                if listing.MISSING_DOCUMENT not in joined:
                    return joined
            rows = self._list(cur, context, "documents", query)
            missing = [image_id for image_id, doc in rows if doc is None]
            rendered = _render_documents(cur, missing) if missing else {}
            return b", ".join(
                [rendered[image_id].encode() if doc is None else doc for image_id, doc in rows]
            )

    @_db_call
    def image_get_all_index(
        self,
        context: RequestContext,
        filters: dict,
        **options: Unpack[ListOptions],
    ) -> list[dict]:
        """image_get_all's images with the brief-listing keys only (image_meta.INDEX_FIELDS)."""
        query = _list_query(context, filters, **options)
        with self._read() as cur:
            rows = self._list(cur, context, "index", query)
        fields = image_meta.INDEX_FIELDS
        return [dict(zip(fields, row, strict=True)) for row in rows]

    def _list(
        self,
        cur: prepared.Cursor,
        context: RequestContext,
        select: str,
        query: _ListQuery,
        *,
        build: Callable[..., sa.Select] = listing.statement,
    ) -> list[tuple]:
        """The rows of one listing query, `select` naming the columns (listing.SELECTS);
        `build` makes the statement of its shape."""
        values = query.values
        if query.marker is not None:
            try:
                row = self._visible_image(cur, context, query.marker, query.showing_deleted)
            except exceptions.NotFound:
                raise exceptions.Invalid("Invalid marker. Image could not be found.") from None
            values = {**values, **listing.marker_values(query.keys, row)}
        if query.limit == 0:
            return []
        return cur.fetch(
            build,
            values,
            select,
            query.filters,
            query.visibility,
            query.keys,
            query.sort_dir,
            query.marker is not None,
            query.limit is not None,
        )

    @_db_call
    def image_create(self, context: RequestContext, values: dict) -> dict:
        """Store a new image from the registry's checked values (registry.images'
        image_values and check_storable); only an admin chooses its owner."""
        row, properties, locations = _split_values(values)
        row.setdefault("status", "active")
        if not context.is_admin or "owner" not in row:
            row["owner"] = context.owner
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
        row["deleted"] = bool(row.get("deleted"))
        if self.engine.dialect.name == "mysql":
            # Glance's DATETIME columns hold whole seconds there; store and return the same.
            for key in ("created_at", "updated_at", "deleted_at"):
                if isinstance(row.get(key), datetime.datetime):
                    row[key] = row[key].replace(microsecond=0)
        # Nothing but what is written here: no need to read it back.
        created = {key: row.get(key) for key in IMAGE_COLUMNS}
        created["is_public"] = row["visibility"] == "public"
        created.update(properties=dict(properties), location_data=[], location=None)
        insert = {f"v_{key}": row.get(key) for key in statements.INSERT_COLUMNS}
        # The listing entry shows no locations: the values above are all it needs.
        insert["v_listing_doc"] = image_meta.listing_json(created)
        with self._write() as cur:
            try:
                cur.execute(statements.insert_image, insert)
            except sa.exc.IntegrityError:
                # the id is the only unique column a create can collide on
                raise exceptions.Conflict(
                    f"Image with identifier {row['id']} already exists!"
                ) from None
            if properties:
                _insert_properties(cur, _property_rows(row["id"], properties, now))
            if locations:
                self._set_locations(cur, row["id"], locations, now=now)
                return self._load_image(cur, row["id"])
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
        """Change an image from the registry's checked values (without id and
        timestamps); only an admin changes its owner."""
        row, properties, locations = _split_values(values)
        if not context.is_admin:
            row.pop("owner", None)
        now = models.utcnow()
        row["updated_at"] = now
        with self._write() as cur:
            current = self._visible_image(cur, context, image_id)
            _check_mutable(context, current)
            params = {f"v_{key}": value for key, value in row.items()}
            params.update(w_id=current.id, w_from_state=from_state)
            keys = tuple(sorted(row))
            if cur.execute(statements.update_image, params, keys, from_state is not None) == 0:
                LOG.info(
                    "cannot transition from %s to %s in update (wanted from_state=%s)",
                    current.status,
                    row.get("status"),
                    from_state,
                )
                raise exceptions.Conflict("Image operation conflicts")
            self._set_properties(cur, current.id, properties, purge=purge_props, now=now)
            if locations:
                self._set_locations(cur, current.id, locations, now=now)
            return self._finish_write(cur, self._load_image(cur, current.id))

    @_db_call
    def image_destroy(self, context: RequestContext, image_id: str) -> dict:
        now = models.utcnow()
        with self._write() as cur:
            current = self._visible_image(cur, context, image_id)
            _check_mutable(context, current)
            cur.execute(statements.soft_delete_image, {"w_id": current.id, "v_now": now})
            for table in models.IMAGE_CHILDREN:
                cur.execute(
                    statements.soft_delete_children,
                    {"w_image_id": current.id, "v_now": now},
                    table.name,
                )
            return self._finish_write(cur, self._load_image(cur, current.id))

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
        with self._core_read() as conn:
            return int(conn.execute(stmt).scalar_one())

    @_db_call
    def image_location_delete(
        self, context: RequestContext, image_id: str, location_id: int, status: str
    ) -> None:
        """Mark one location deleted (status 'deleted' or 'pending_delete'), as Glance's.

        The image's listing document shows no locations, so it stays as it is.
        """
        now = models.utcnow()
        with self._write() as cur:
            done = cur.execute(
                statements.retire_location,
                {"w_id": location_id, "w_image_id": image_id, "v_status": status, "v_now": now},
            )
            if done == 0:
                raise exceptions.NotFound(
                    f"No location found with ID {location_id} from image {image_id}"
                )

    @_db_call
    def rebuild_listing_documents(self) -> int:
        """Render every image's listing document again (after another program wrote rows
        without them, e.g. Glance itself); the number of images."""
        with self._write() as cur:
            ids = [row[0] for row in cur.fetch(statements.all_image_ids, {})]
            for start in range(0, len(ids), statements.CHUNK):
                rendered = [
                    {"w_id": image_id, "v_listing_doc": document}
                    for image_id, document in _render_documents(
                        cur, ids[start : start + statements.CHUNK]
                    ).items()
                ]
                cur.execute_many(statements.update_image, rendered, LISTING_DOC, False)
        return len(ids)

    # --- image helpers -------------------------------------------------------------------

    def _finish_write(self, cur: prepared.Cursor, image: dict) -> dict:
        """Store the listing document of `image`, just read back inside the write: the
        last step of every write that changes what an image's listing entry shows."""
        cur.execute(
            statements.update_image,
            {"w_id": image["id"], "v_listing_doc": image_meta.listing_json(image)},
            LISTING_DOC,
            False,
        )
        return image

    def _visible_image(
        self,
        cur: prepared.Cursor,
        context: RequestContext,
        image_id: str,
        force_show_deleted: bool = False,
    ) -> ImageRow:
        """The image row if it exists and the caller may see it, else NotFound."""
        not_found = exceptions.NotFound(f"No image found with ID {image_id}")
        if not isinstance(image_id, str) or len(image_id) > 36:
            raise not_found
        found = cur.fetch(statements.image_by_id, {"w_id": image_id})
        if not found:
            raise not_found
        row = ImageRow._make(found[0])
        if row.deleted and not (force_show_deleted or context.can_see_deleted):
            raise not_found
        if not self._is_visible(cur, context, row):
            raise not_found
        return row

    def _is_visible(self, cur: prepared.Cursor, context: RequestContext, row: ImageRow) -> bool:
        if context.is_admin or row.owner is None:
            return True
        if row.visibility in ("public", "community"):
            return True
        if context.owner is None:
            return False
        if row.owner == context.owner:
            return True
        return row.visibility == "shared" and self._live_member(cur, row.id, context.owner)

    def _live_member(self, cur: prepared.Cursor, image_id: str, member: str) -> tuple | None:
        """The live membership (can_share,) of `member` in the image, None without one."""
        found = cur.fetch(statements.live_membership, {"w_image_id": image_id, "w_member": member})
        return found[0] if found else None

    def _load_image(self, cur: prepared.Cursor, image_id: str) -> dict:
        row = ImageRow._make(cur.fetch(statements.image_by_id, {"w_id": image_id})[0])
        return _image_dicts(cur, [row], with_deleted_locations=False)[0]

    def _set_properties(
        self,
        cur: prepared.Cursor,
        image_id: str,
        properties: dict,
        *,
        purge: bool,
        now: datetime.datetime,
    ) -> None:
        """Merge `properties` in (reviving deleted rows); with purge, drop the others."""
        existing = {
            name: (prop_id, deleted)
            for prop_id, name, deleted in cur.fetch(
                statements.property_names, {"w_image_id": image_id}
            )
        }
        updates = [
            {"w_id": existing[name][0], "v_value": value, "v_now": now}
            for name, value in properties.items()
            if name in existing
        ]
        inserts = _property_rows(
            image_id, {k: v for k, v in properties.items() if k not in existing}, now
        )
        if updates:
            cur.execute_many(statements.revive_property, updates)
        if inserts:
            _insert_properties(cur, inserts)
        if purge:
            stale = [
                {"w_id": prop_id, "v_now": now}
                for name, (prop_id, deleted) in existing.items()
                if name not in properties and not deleted
            ]
            if stale:
                cur.execute_many(statements.retire_property, stale)

    def _set_locations(
        self, cur: prepared.Cursor, image_id: str, locations: list[dict], *, now: datetime.datetime
    ) -> None:
        """Make `locations` the image's live location list (Glance's _image_locations_set)."""
        keep = {loc["id"] for loc in locations if loc["id"] is not None}
        retired = [
            {"w_id": loc_id, "w_image_id": image_id, "v_status": "deleted", "v_now": now}
            for loc_id, deleted in cur.fetch(statements.location_ids, {"w_image_id": image_id})
            if not deleted and loc_id not in keep
        ]
        if retired:
            cur.execute_many(statements.retire_location, retired)
        for loc in locations:
            gone = loc["status"] in ("deleted", "pending_delete")
            values = {
                "v_value": loc["url"],
                "v_meta_data": loc["meta_data"],
                "v_status": loc["status"],
                "v_deleted": gone,
                "v_deleted_at": now if gone else None,
                "v_now": now,
                "v_image_id": image_id,
            }
            if loc["id"] is None:
                cur.execute(statements.insert_location, values)
                continue
            done = cur.execute(
                statements.update_location, {**values, "w_id": loc["id"], "w_image_id": image_id}
            )
            if done == 0:
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
            stmt = stmt.where(listing.live(members))
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
        with self._core_read() as conn:
            return [_member_dict(row) for row in conn.execute(stmt)]

    @_db_call
    def image_members_replace(
        self, context: RequestContext, image_id: str, wanted: dict[str, bool | None]
    ) -> None:
        """Make `wanted` (member id -> can_share, None: keep) the image's memberships."""
        now = models.utcnow()
        with self._core_write() as conn:
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
        now = models.utcnow()
        with self._core_write() as conn:
            image = self._sharable_image(conn, context, image_id)
            row = self._member_rows(conn, image.id, member).get(member)
            if row is not None and can_share is None:
                return  # Glance's wart: a body-less PUT leaves a deleted membership deleted.
            self._put_member(conn, image.id, member, can_share, row, now)

    @_db_call
    def image_member_delete(self, context: RequestContext, image_id: str, member: str) -> None:
        now = models.utcnow()
        with self._core_write() as conn:
            image = self._sharable_image(conn, context, image_id)
            row = self._member_rows(conn, image.id, member).get(member)
            if row is None or row.deleted:
                raise exceptions.NotFound("Membership could not be found.")
            conn.execute(
                members.update()
                .where(members.c.id == row.id)
                .values(deleted=True, deleted_at=now, updated_at=now)
            )

    def _sharable_image(
        self, conn: sa.Connection, context: RequestContext, image_id: str
    ) -> ImageRow:
        cur = self._cursor(conn)
        image = self._visible_image(cur, context, image_id)
        if context.is_admin:
            return image
        if context.owner is not None:
            if image.owner == context.owner:
                return image
            own = self._live_member(cur, image.id, context.owner)
            if own is not None and own[0]:
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
        with self._core_write() as conn:
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
        with self._core_write() as conn:
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
