"""The fixed statements of the image paths, one builder each, run through prepared.py.

A builder depends on its shape arguments only (never on values), so its statement is
compiled once per dialect. Bind parameters are named w_* in WHERE clauses and v_* for
the values written (SQLAlchemy reserves the bare column names in INSERT and UPDATE).

Reads of an image's children select by image_id alone and leave the `deleted` test to
the caller: without statistics SQLite picks the `deleted` index for `image_id = ? AND
deleted = 0`, which walks every live row of the table.
"""

from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from glance_lite.db import listing, models

images = models.images
props = models.image_properties
locs = models.image_locations
members = models.image_members


def plain(table: sa.Table) -> sa.TableClause:
    """The table's name and typed columns without their Python-side defaults (such as
    updated_at's onupdate): the writes below set every value they mean to, and nothing
    else. prepared.Prepared refuses a statement that would need a default."""
    return sa.table(table.name, *(sa.column(column.name, column.type) for column in table.c))


_images = plain(images)
_props = plain(props)
_locs = plain(locs)
_CHILDREN = {table.name: plain(table) for table in models.IMAGE_CHILDREN}

# Largest IN list of one statement; shorter lists are padded to a power of two, so a
# dozen statements serve every length.
CHUNK = 1024


def bind(name: str, column: sa.Column) -> sa.BindParameter:
    return sa.bindparam(name, type_=column.type)


def chunks(ids: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """(count, {w_id_<i>: id}) for IN lists over `ids`, padded by repeating the last id."""
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        count = 1 << (len(chunk) - 1).bit_length()
        chunk += [chunk[-1]] * (count - len(chunk))
        yield count, {f"w_id_{i}": image_id for i, image_id in enumerate(chunk)}


def _ids_in(column: sa.Column, count: int) -> sa.ColumnElement[bool]:
    return column.in_([bind(f"w_id_{i}", column) for i in range(count)])


# --- reads ------------------------------------------------------------------------------


def image_by_id() -> sa.Select:
    return sa.select(*listing.ROW_COLUMNS).where(images.c.id == bind("w_id", images.c.id))


def all_image_ids() -> sa.Select:
    return sa.select(images.c.id).order_by(images.c.id)


def images_by_ids(count: int) -> sa.Select:
    return sa.select(*listing.ROW_COLUMNS).where(_ids_in(images.c.id, count))


def properties_of(count: int) -> sa.Select:
    return (
        sa.select(props.c.image_id, props.c.name, props.c.value, props.c.deleted)
        .where(_ids_in(props.c.image_id, count))
        .order_by(props.c.id)
    )


def locations_of(count: int) -> sa.Select:
    return (
        sa.select(
            locs.c.image_id,
            locs.c.id,
            locs.c.value,
            locs.c.meta_data,
            locs.c.status,
            locs.c.deleted,
        )
        .where(_ids_in(locs.c.image_id, count))
        .order_by(locs.c.id)
    )


def property_names() -> sa.Select:
    return sa.select(props.c.id, props.c.name, props.c.deleted).where(
        props.c.image_id == bind("w_image_id", props.c.image_id)
    )


def location_ids() -> sa.Select:
    return sa.select(locs.c.id, locs.c.deleted).where(
        locs.c.image_id == bind("w_image_id", locs.c.image_id)
    )


def owner_images_for_update(ownerless: bool) -> sa.Select:
    """Lock the live image rows of owner w_owner (or of the images without one) in id
    order. A quota-checked update takes these locks first, so that two of one owner run
    one after the other and the second counts what the first wrote. SQLite has no row
    locks (SQLAlchemy leaves the clause out): BEGIN IMMEDIATE serializes its writers."""
    owner = (
        _images.c.owner.is_(None)
        if ownerless
        else _images.c.owner == bind("w_owner", _images.c.owner)
    )
    return (
        sa.select(_images.c.id)
        .where(owner, _images.c.deleted.is_(sa.false()))
        .order_by(_images.c.id)
        .with_for_update()
    )


def live_membership() -> sa.Select:
    """can_share of the image's live memberships of one member, oldest first."""
    return (
        sa.select(members.c.can_share)
        .where(
            members.c.image_id == bind("w_image_id", members.c.image_id),
            members.c.member == bind("w_member", members.c.member),
            listing.live(members),
        )
        .order_by(members.c.id)
    )


# --- image writes ------------------------------------------------------------------------

INSERT_COLUMNS = tuple(column.name for column in _images.c)


def insert_image() -> sa.Insert:
    """Every column of the image row (v_<column>), the listing document included."""
    return _images.insert().values({c.name: bind(f"v_{c.name}", c) for c in _images.c})


def update_image(keys: tuple[str, ...], with_from_state: bool) -> sa.Update:
    """Set the columns `keys` (v_<key>) of image w_id, if its status is w_from_state."""
    stmt = _images.update().where(_images.c.id == bind("w_id", _images.c.id))
    if with_from_state:
        stmt = stmt.where(_images.c.status == bind("w_from_state", _images.c.status))
    return stmt.values({key: bind(f"v_{key}", _images.c[key]) for key in keys})


def retired(table: sa.TableClause) -> dict:
    """The values that soft-delete a row of `table` at v_now."""
    return {
        "deleted": True,
        "deleted_at": bind("v_now", table.c.deleted_at),
        "updated_at": bind("v_now", table.c.updated_at),
    }


def soft_delete_image() -> sa.Update:
    return (
        _images.update().where(_images.c.id == bind("w_id", _images.c.id)).values(retired(_images))
    )


def soft_delete_children(table_name: str) -> sa.Update:
    """Mark the live rows of one child table of image w_image_id deleted."""
    table = _CHILDREN[table_name]
    values = retired(table)
    if table_name == locs.name:
        values["status"] = "deleted"
    return (
        table.update()
        .where(
            table.c.image_id == bind("w_image_id", table.c.image_id),
            listing.live(table),
        )
        .values(values)
    )


def insert_property() -> sa.Insert:
    return _props.insert().values(
        image_id=bind("v_image_id", _props.c.image_id),
        name=bind("v_name", _props.c.name),
        value=bind("v_value", _props.c.value),
        created_at=bind("v_now", _props.c.created_at),
        updated_at=bind("v_now", _props.c.updated_at),
        deleted=False,
    )


def revive_property() -> sa.Update:
    """Give property w_id the value v_value and make it live again."""
    return (
        _props.update()
        .where(_props.c.id == bind("w_id", _props.c.id))
        .values(
            value=bind("v_value", _props.c.value),
            deleted=False,
            deleted_at=None,
            updated_at=bind("v_now", _props.c.updated_at),
        )
    )


def retire_property() -> sa.Update:
    return _props.update().where(_props.c.id == bind("w_id", _props.c.id)).values(retired(_props))


def _location_values() -> dict:
    """The binds of a location's own columns, as inserts and rewrites set them."""
    names = ("value", "meta_data", "status", "deleted", "deleted_at")
    return {name: bind(f"v_{name}", _locs.c[name]) for name in names}


def _one_location() -> tuple:
    """Location w_id of image w_image_id."""
    return (
        _locs.c.id == bind("w_id", _locs.c.id),
        _locs.c.image_id == bind("w_image_id", _locs.c.image_id),
    )


def insert_location() -> sa.Insert:
    return _locs.insert().values(
        image_id=bind("v_image_id", _locs.c.image_id),
        **_location_values(),
        created_at=bind("v_now", _locs.c.created_at),
        updated_at=bind("v_now", _locs.c.updated_at),
    )


def update_location() -> sa.Update:
    """Rewrite location w_id of image w_image_id."""
    return (
        _locs.update()
        .where(*_one_location())
        .values(**_location_values(), updated_at=bind("v_now", _locs.c.updated_at))
    )


def retire_location() -> sa.Update:
    """Mark location w_id deleted with status v_status (Glance: deleted or pending_delete)."""
    return (
        _locs.update()
        .where(*_one_location())
        .values(**retired(_locs), status=bind("v_status", _locs.c.status))
    )
