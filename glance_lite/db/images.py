"""The image records: show, list, create, update and delete, and their locations.

Every method is one transaction (db/transactions.py) on statements compiled once per
dialect (statements.py, listing.py): these are the registry's hot paths. Values come
typed and checked by the registry (registry/images.py); what is left here is turning
them into rows. Behaviour follows Glance Queens' glance/db/sqlalchemy/api.py. Every
write that changes what an image's detail-listing entry shows stores that entry in the
same transaction (documents.py).
"""

import dataclasses
import datetime
import json
import logging
from collections.abc import Callable
from typing import TypedDict, Unpack

import sqlalchemy as sa

from glance_lite import exceptions, image_meta
from glance_lite.context import RequestContext
from glance_lite.db import documents, leases, listing, models, prepared, rows, statements
from glance_lite.db.errors import db_call
from glance_lite.db.transactions import Transactions

LOG = logging.getLogger(__name__)

images = models.images
locs = models.image_locations

# The v1 image dict: these columns plus is_public, properties, location, location_data.
IMAGE_COLUMNS = tuple(key for key in image_meta.CORE_FIELDS if key != "is_public")
_WRITABLE = frozenset(IMAGE_COLUMNS) | {"visibility"}


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


def _property_rows(image_id: str, properties: dict, now: datetime.datetime) -> list[dict]:
    """The values of statements.insert_property for new rows of `properties`."""
    return [
        {"v_image_id": image_id, "v_name": name, "v_value": value, "v_now": now}
        for name, value in properties.items()
    ]


def _insert_properties(cur: prepared.Cursor, new_rows: list[dict]) -> None:
    """Insert property rows; names the database takes for one another are a 400."""
    try:
        cur.execute_many(statements.insert_property, new_rows)
    except sa.exc.IntegrityError:
        # (image_id, name) is the only unique key here, and the names are distinct in
        # Python: MySQL/MariaDB compare them ignoring trailing spaces ("a" and "a ").
        names = [row["v_name"] for row in new_rows]
        spaced = [name for name in names if name != name.rstrip(" ")] or names
        raise exceptions.Invalid(
            "Property names must differ by more than trailing spaces: "
            + ", ".join(map(repr, sorted(spaced)))
        ) from None


def storage_usage(ownerless: bool, excluding: bool) -> sa.Select:
    """The sum of size times live locations of owner w_owner's images (prepared.py), or
    of the images without an owner; `excluding`: leave out the image w_image_id."""
    copies = (
        sa.select(sa.func.count())
        .where(locs.c.image_id == images.c.id, locs.c.status != "deleted")
        .scalar_subquery()
    )
    # literals, not a value list: that would be an expanding (run-time) IN
    gone = [sa.literal(status, images.c.status.type) for status in ("killed", "deleted")]
    # Summed as NUMERIC: legal sizes (up to 2**63 - 1) times their copies overflow BIGINT
    # (SQLite, which has no wider integer, goes over to a float). Read back as it comes.
    located = sa.cast(images.c.size, sa.Numeric(38, 0)) * copies
    total = sa.type_coerce(sa.func.coalesce(sa.func.sum(located), 0), sa.BigInteger)
    stmt = sa.select(total).where(
        images.c.owner.is_(None)
        if ownerless
        else images.c.owner == sa.bindparam("w_owner", type_=images.c.owner.type),
        images.c.size > 0,
        images.c.status.not_in(gone),
    )
    if excluding:
        stmt = stmt.where(images.c.id != sa.bindparam("w_image_id", type_=images.c.id.type))
    return stmt


def _check_quota(
    cur: prepared.Cursor,
    current: rows.ImageRow,
    row: dict,
    locations: list[dict] | None,
    storage_quota: tuple[str | None, int],
) -> None:
    """LimitExceeded if the owner's other images and this one, as the update leaves it,
    take more than the quota: Glance's check after an upload, here inside the write
    that activates the image, under the owner's row locks."""
    owner, limit = storage_quota
    size = row.get("size", current.size) or 0
    if size <= 0 or row.get("status", current.status) in ("killed", "deleted"):
        return
    if locations is None:
        live = cur.fetch(statements.location_ids, {"w_image_id": current.id})
        copies = sum(1 for _, deleted in live if not deleted)
    else:
        copies = sum(1 for location in locations if location["status"] != "deleted")
    values = {"w_owner": owner, "w_image_id": current.id}
    ((used,),) = cur.fetch(storage_usage, values, owner is None, True)
    remaining = limit - int(used)
    if copies and size * copies > remaining:
        raise exceptions.LimitExceeded(
            f"The size of the data {size} will exceed the limit. "
            f"{max(remaining, 0)} bytes remaining."
        )


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
    keys = listing.sort_keys(sort_key)
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


class Images(Transactions):
    """The image records behind glance-registry's /images routes."""

    @db_call
    def image_get(
        self, context: RequestContext, image_id: str, *, force_show_deleted: bool = False
    ) -> dict:
        with self._read() as cur:
            row = rows.visible_image(cur, context, image_id, force_show_deleted)
            return rows.image_dicts(cur, [row], with_deleted_locations=force_show_deleted)[0]

    @db_call
    def image_get_all(
        self,
        context: RequestContext,
        filters: dict,
        **options: Unpack[ListOptions],
    ) -> list[dict]:
        query = _list_query(context, filters, **options)
        with self._read() as cur:
            found = [rows.ImageRow._make(row) for row in self._list(cur, context, "rows", query)]
            return rows.image_dicts(cur, found, with_deleted_locations=query.showing_deleted)

    @db_call
    def image_get_all_documents(
        self,
        context: RequestContext,
        filters: dict,
        **options: Unpack[ListOptions],
    ) -> bytes:
        """image_get_all's images as their detail-listing JSON entries without locations,
        joined with ", " (b"" for none).

        Each entry is the text documents.listing_json gives for that image (ASCII),
        encoded: read from images.listing_doc, rendered from the rows where that is NULL.
        """
        query = _list_query(context, filters, **options)
        with self._read() as cur:
            # SQLite joins a detail listing's documents itself (listing.joined_documents).
            if self.sqlite and query.limit:
                ((joined,),) = self._list(
                    cur, context, "documents", query, build=listing.joined_documents
                )
                if joined is None:
                    return b""
                if listing.MISSING_DOCUMENT not in joined:
                    return joined
            listed = self._list(cur, context, "documents", query)
            missing = [image_id for image_id, doc in listed if doc is None]
            rendered = documents.render(cur, missing) if missing else {}
            return b", ".join(
                [rendered[image_id].encode() if doc is None else doc for image_id, doc in listed]
            )

    @db_call
    def image_get_all_index(
        self,
        context: RequestContext,
        filters: dict,
        **options: Unpack[ListOptions],
    ) -> list[dict]:
        """image_get_all's images with the brief-listing keys only (image_meta.INDEX_FIELDS)."""
        query = _list_query(context, filters, **options)
        with self._read() as cur:
            listed = self._list(cur, context, "index", query)
        fields = image_meta.INDEX_FIELDS
        return [dict(zip(fields, row, strict=True)) for row in listed]

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
                row = rows.visible_image(cur, context, query.marker, query.showing_deleted)
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

    @db_call
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
        insert["v_listing_doc"] = documents.listing_json(created)
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
                return rows.load_image(cur, row["id"])
        return created

    @db_call
    def image_update(
        self,
        context: RequestContext,
        image_id: str,
        values: dict,
        *,
        purge_props: bool = False,
        from_state: str | None = None,
        storage_quota: tuple[str | None, int] | None = None,
        lease: tuple[str, int] | None = None,
        held_by: str | None = None,
    ) -> dict:
        """Change an image from the registry's checked values (without id and
        timestamps); only an admin changes its owner. `storage_quota` (owner, bytes):
        LimitExceeded if that owner's images would then take more (_check_quota).
        A status change drops the image's upload lease; setting it `saving` with
        `lease` (holder, seconds) takes one (leases.py). `held_by`: Conflict unless that
        holder holds the image's upload lease (an upload's activation or kill, which
        must not act on an image another upload took over)."""
        row, properties, locations = _split_values(values)
        if not context.is_admin:
            row.pop("owner", None)
        now = models.utcnow()
        row["updated_at"] = now
        with self._write() as cur:
            if storage_quota is not None:
                # first, before any plain read: MySQL's snapshot then comes after the wait
                owner = storage_quota[0]
                cur.fetch(statements.owner_images_for_update, {"w_owner": owner}, owner is None)
            current = rows.visible_image(cur, context, image_id)
            rows.check_mutable(context, current)
            if held_by is not None:
                leases.check_held(cur, current.id, held_by)
            if storage_quota is not None:
                _check_quota(cur, current, row, locations, storage_quota)
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
            if "status" in row:
                leases.after_status_change(cur, current.id, row["status"], lease, now)
            self._set_properties(cur, current.id, properties, purge=purge_props, now=now)
            if locations:
                self._set_locations(cur, current.id, locations, now=now)
            return documents.store(cur, rows.load_image(cur, current.id))

    @db_call
    def image_destroy(self, context: RequestContext, image_id: str) -> dict:
        now = models.utcnow()
        with self._write() as cur:
            current = rows.visible_image(cur, context, image_id)
            rows.check_mutable(context, current)
            cur.execute(statements.soft_delete_image, {"w_id": current.id, "v_now": now})
            for table in models.IMAGE_CHILDREN:
                cur.execute(
                    statements.soft_delete_children,
                    {"w_image_id": current.id, "v_now": now},
                    table.name,
                )
            cur.execute(leases.delete_lease, {"w_image_id": current.id})
            return documents.store(cur, rows.load_image(cur, current.id))

    @db_call
    def user_get_storage_usage(
        self, context: RequestContext, owner: str, image_id: str | None = None
    ) -> int:
        """The bytes the owner's images take: size times live locations, the images
        killed or deleted left out, and `image_id` too when given."""
        if image_id is not None and len(image_id) > 36:
            raise exceptions.NotFound(f"No image found with ID {image_id}")
        values = {"w_owner": owner, "w_image_id": image_id}
        with self._read() as cur:
            ((usage,),) = cur.fetch(storage_usage, values, owner is None, image_id is not None)
        return int(usage)

    @db_call
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

    # --- image helpers -------------------------------------------------------------------

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
