"""The image listing query: filters, visibility, marker and order as a shape plus values.

The *_plan functions turn image_get_all's arguments into a hashable *shape* (which
conditions, how many values, which sort; never a value) and the bind values;
`statement()` builds the Core SELECT of a shape, with named bind parameters for those
values. A shape's statement is compiled once per dialect (prepared.py), so a listing
builds no SQL at run time. Behaviour follows Glance Queens' image_get_all; the filters
and the visibility rule are described in docs/registry.md.
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from glance_lite import image_meta
from glance_lite.context import RequestContext
from glance_lite.db import models

images = models.images
props = models.image_properties
members = models.image_members

EPOCH = datetime.datetime(1970, 1, 1)


class AsBytes(sa.sql.functions.FunctionElement):
    """A text column's value as the bytes of its UTF-8 text, so that the driver hands
    them over without decoding them (a listing joins the documents as bytes)."""

    type = sa.types.NullType()  # no result processing: the driver's bytes as they come
    name = "as_bytes"
    inherit_cache = True


@compiles(AsBytes)
def _as_blob(element, compiler, **kw) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS BLOB)"


@compiles(AsBytes, "postgresql")
def _as_bytea(element, compiler, **kw) -> str:
    # text::bytea would read backslashes as escapes; convert_to copies the bytes.
    return f"convert_to({compiler.process(element.clauses, **kw)}, 'UTF8')"


@compiles(AsBytes, "mysql")
@compiles(AsBytes, "mariadb")
def _as_binary(element, compiler, **kw) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS BINARY)"


class Unindexed(sa.sql.functions.FunctionElement):
    """A column whose index the query must not use: on SQLite `+column`.

    Without statistics SQLite takes the single-column `deleted` index of a child table
    for `image_id = ? AND deleted = 0`, walking every live row instead of one image's.
    """

    name = "unindexed"
    inherit_cache = True

    @property
    def type(self):
        return self.clauses.clauses[0].type


@compiles(Unindexed)
def _plain_column(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(Unindexed, "sqlite")
def _unary_plus(element, compiler, **kw) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def live(table: sa.Table) -> sa.ColumnElement[bool]:
    """The row is not soft-deleted (without using the table's `deleted` index)."""
    return Unindexed(table.c.deleted).is_(sa.false())


# What a listing selects: every image column but the document, the documents (as
# bytes), or the columns of a brief listing.
ROW_COLUMNS = tuple(column for column in images.c if column.name != "listing_doc")
SELECTS = {
    "rows": ROW_COLUMNS,
    "documents": (images.c.id, AsBytes(images.c.listing_doc).label("document")),
    "index": tuple(images.c[key] for key in image_meta.INDEX_FIELDS),
}

EXACT_FILTERS = ("name", "status", "container_format", "disk_format", "id")
_SIZE_FILTERS = ("size_min", "size_max")
_EQUAL_INT_FILTERS = ("min_ram", "min_disk")

# The value NULL takes in ordering and marker comparisons.
NULL_AS = {
    "name": "",
    "container_format": "",
    "disk_format": "",
    "size": 0,
    "updated_at": EPOCH,
}


def sort_keys(sort_key: str) -> tuple[str, ...]:
    """The full order of a listing sorted by `sort_key` (one of image_meta.SORT_KEYS):
    created_at and id break ties."""
    return (sort_key, *(key for key in ("created_at", "id") if key != sort_key))


# --- shape and values --------------------------------------------------------------------


def filter_plan(filters: dict) -> tuple[tuple, dict]:
    """(shape, values) of the filter conditions; the registry gives them typed."""
    shape: list = []
    values: dict = {}
    for key in EXACT_FILTERS:
        if key in filters:
            value = filters[key]
            if isinstance(value, list | tuple):
                shape.append((key, len(value)))
                values.update({f"f_{key}_{i}": item for i, item in enumerate(value)})
            else:
                shape.append((key, None))
                values[f"f_{key}"] = value
    for key in (*_SIZE_FILTERS, *_EQUAL_INT_FILTERS):
        if key in filters:
            shape.append((key,))
            values[f"f_{key}"] = filters[key]
    if "protected" in filters:
        shape.append(("protected",))
        values["f_protected"] = bool(filters["protected"])
    if "changes_since" in filters:
        shape.append(("changes_since",))
        values["f_changes_since"] = filters["changes_since"]
    if "is_public" in filters:
        shape.append(("is_public", bool(filters["is_public"])))
    properties = filters.get("properties") or {}
    if properties:
        nulls = []
        for i, (name, value) in enumerate(properties.items()):
            values[f"p_name_{i}"] = name
            nulls.append(value is None)
            if value is not None:
                values[f"p_value_{i}"] = str(value)
        shape.append(("properties", tuple(nulls)))
    deleted = filters.get("deleted")
    if "deleted" not in filters and "changes_since" not in filters:
        deleted = False
    if deleted is not None:
        shape.append(("deleted", bool(deleted)))
    return tuple(shape), values


def visibility_plan(context: RequestContext, regular: bool) -> tuple[tuple, dict]:
    """The visibility rule's shape: none for an admin, the regular rule otherwise."""
    if not regular:
        return ("all",), {}
    if context.owner is None:
        return ("regular", False), {}
    return ("regular", True), {"v_owner": context.owner}


def marker_values(keys: Sequence[str], marker: object) -> dict:
    """The bind values of the marker condition from the marker image's row."""
    values = {}
    for key in keys:
        value = getattr(marker, key)
        values[f"m_{key}"] = NULL_AS.get(key) if value is None else value
    return values


# --- statements -----------------------------------------------------------------------------


def _param(name: str, column: sa.Column) -> sa.BindParameter:
    return sa.bindparam(name, type_=column.type)


_NULL_PARAMS = {
    key: sa.bindparam(f"null_{key}", value, type_=images.c[key].type)
    for key, value in NULL_AS.items()
}


def sort_expression(key: str) -> sa.ColumnElement:
    """The ordered value of `key`: NULL counts as ''/0/epoch, as in the marker comparison."""
    column = images.c[key]
    if key not in NULL_AS:
        return column
    return sa.func.coalesce(column, _NULL_PARAMS[key])


# literals, not a value list: that would be an expanding (run-time) IN
_NOT_LISTED_STATUSES = [
    sa.literal(status, images.c.status.type) for status in ("killed", "deleted", "pending_delete")
]


def _filter_conditions(shape: tuple) -> list[sa.ColumnElement[bool]]:
    conds = []
    for entry in shape:
        key = entry[0]
        if key in EXACT_FILTERS:
            column, count = images.c[key], entry[1]
            if count is None:
                conds.append(column == _param(f"f_{key}", column))
            elif count == 0:
                conds.append(sa.false())
            else:
                conds.append(column.in_([_param(f"f_{key}_{i}", column) for i in range(count)]))
        elif key in _SIZE_FILTERS:
            param = _param(f"f_{key}", images.c.size)
            conds.append(images.c.size >= param if key == "size_min" else images.c.size <= param)
        elif key in _EQUAL_INT_FILTERS:
            conds.append(images.c[key] == _param(f"f_{key}", images.c[key]))
        elif key == "protected":
            conds.append(images.c.protected == _param("f_protected", images.c.protected))
        elif key == "changes_since":
            conds.append(images.c.updated_at > _param("f_changes_since", images.c.updated_at))
        elif key == "is_public":
            public = entry[1]
            conds.append(
                images.c.visibility == "public" if public else images.c.visibility != "public"
            )
        elif key == "properties":
            conds += [_property_match(i, is_null) for i, is_null in enumerate(entry[1])]
        elif key == "deleted":
            conds.append(images.c.deleted == (sa.true() if entry[1] else sa.false()))
            if not entry[1]:
                # killed images are left out, as in Glance; so is an image a delete set
                # deleted or pending_delete but stopped before removing (docs/api.md)
                conds.append(images.c.status.not_in(_NOT_LISTED_STATUSES))
        else:  # pragma: no cover - filter_plan makes no other entry
            raise AssertionError(f"unknown filter shape {entry!r}")
    return conds


def _property_match(i: int, is_null: bool) -> sa.ColumnElement[bool]:
    if is_null:
        value = props.c.value.is_(None)
    else:
        value = props.c.value == _param(f"p_value_{i}", props.c.value)
    return sa.exists().where(
        props.c.image_id == images.c.id,
        props.c.name == _param(f"p_name_{i}", props.c.name),
        value,
        live(props),
    )


def _visibility_condition(shape: tuple) -> sa.ColumnElement[bool] | None:
    """The listing rule for a non-admin (or an admin acting as a user): public and
    community images, shared images the caller is a live member of, and the caller's
    own; another tenant's community image is left out, as Glance's listing does.

    A caller without a tenant (anonymous, or an identity without one) is nobody's member
    and owns nothing: it lists public images only. Glance dropped the member condition
    for it instead, listing every shared image that had any member.
    """
    if shape[0] == "all":
        return None
    if not shape[1]:
        return images.c.visibility == "public"
    owner = _param("v_owner", images.c.owner)
    live_member = sa.and_(
        members.c.image_id == images.c.id, live(members), members.c.member == owner
    )
    arms = [
        images.c.visibility.in_(  # literals, as _NOT_LISTED_STATUSES
            [sa.literal(value, images.c.visibility.type) for value in ("public", "community")]
        ),
        sa.and_(images.c.visibility == "shared", sa.exists().where(live_member)),
        images.c.owner == owner,
    ]
    community = sa.or_(images.c.visibility != "community", images.c.owner == owner)
    return sa.and_(sa.or_(*arms), community)


def _marker_condition(keys: Sequence[str], direction: str) -> sa.ColumnElement[bool]:
    """Rows strictly after the marker (values m_<key>) in the (keys, direction) order."""
    marker = {key: _param(f"m_{key}", images.c[key]) for key in keys}
    after = []
    for i, key in enumerate(keys):
        crit = [sort_expression(previous) == marker[previous] for previous in keys[:i]]
        expr = sort_expression(key)
        crit.append(expr < marker[key] if direction == "desc" else expr > marker[key])
        after.append(sa.and_(*crit))
    return sa.or_(*after)


def statement(
    select: str,
    filters: tuple,
    visibility: tuple,
    keys: tuple[str, ...],
    sort_dir: str,
    has_marker: bool,
    has_limit: bool,
) -> sa.Select:
    """The SELECT of one listing shape; its bind values come from the *_plan functions."""
    conds = _filter_conditions(filters)
    rule = _visibility_condition(visibility)
    if rule is not None:
        conds.append(rule)
    if has_marker:
        conds.append(_marker_condition(keys, sort_dir))
    direction = sa.desc if sort_dir == "desc" else sa.asc
    stmt = (
        sa.select(*SELECTS[select])
        .where(*conds)
        .order_by(*(direction(sort_expression(key)) for key in keys))
    )
    if has_limit:
        stmt = stmt.limit(sa.bindparam("limit", type_=sa.Integer))
    return stmt


class JoinedBytes(sa.sql.functions.FunctionElement):
    """SQLite: the bytes of a column's values in the order the rows come, joined with
    ", ", a NULL value showing as one NUL byte (which JSON text never holds)."""

    type = sa.types.NullType()
    name = "joined_bytes"
    inherit_cache = True


MISSING_DOCUMENT = b"\x00"  # where joined_documents found an image without its entry


@compiles(JoinedBytes, "sqlite")
def _group_concat(element, compiler, **kw) -> str:
    value = compiler.process(element.clauses, **kw)
    marker = f"X'{MISSING_DOCUMENT.hex()}'"
    return f"CAST(group_concat(coalesce({value}, {marker}), ', ') AS BLOB)"


def joined_documents(*shape) -> sa.Select:
    """SQLite only, for a "documents" shape with a limit: one row holding the entries of
    that listing joined with ", " (NULL when it lists nothing), MISSING_DOCUMENT in
    place of any entry not stored yet.

    The rows are joined in the order the listing gives them: the subquery's LIMIT keeps
    SQLite from flattening it or dropping its ORDER BY, and group_concat takes the rows
    as the subquery yields them. Joining in SQL spares building a Python object per row,
    which took longer than the query itself; a NUL marker spares counting the entries.
    """
    listed = statement(*shape).subquery()
    return sa.select(JoinedBytes(listed.c.document))
