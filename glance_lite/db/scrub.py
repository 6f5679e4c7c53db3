"""The end of a delayed delete: an image left `pending_delete` becomes `deleted` once
glance-scrubber has removed its data, or `active` again when an operator restores it.

Both are conditional on the image still being `pending_delete`, so a scrubber and a
restore racing for one image cannot both win.
"""

import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.context import RequestContext
from glance_lite.db import documents, models, rows, statements
from glance_lite.db.errors import db_call
from glance_lite.db.transactions import Transactions

PENDING = "pending_delete"
_images = statements.plain(models.images)
_locs = statements.plain(models.image_locations)
_RESTORED_CHILDREN = {
    table.name: statements.plain(table)
    for table in (models.image_properties, models.image_members, models.image_tags)
}


def _now(table: sa.TableClause) -> sa.BindParameter:
    return statements.bind("v_now", table.c.updated_at)


def pending_locations() -> sa.Select:
    locs = models.image_locations
    return sa.select(sa.func.count(locs.c.id)).where(
        locs.c.image_id == statements.bind("w_image_id", locs.c.image_id),
        locs.c.status == PENDING,
    )


def mark_scrubbed() -> sa.Update:
    return (
        _images.update()
        .where(_images.c.id == statements.bind("w_id", _images.c.id), _images.c.status == PENDING)
        .values(status="deleted", updated_at=_now(_images))
    )


def restore_image() -> sa.Update:
    return (
        _images.update()
        .where(_images.c.id == statements.bind("w_id", _images.c.id), _images.c.status == PENDING)
        .values(status="active", deleted=False, deleted_at=None, updated_at=_now(_images))
    )


def restore_locations() -> sa.Update:
    return (
        _locs.update()
        .where(
            _locs.c.image_id == statements.bind("w_image_id", _locs.c.image_id),
            _locs.c.status == PENDING,
        )
        .values(status="active", deleted=False, deleted_at=None, updated_at=_now(_locs))
    )


def restore_children(table_name: str) -> sa.Update:
    """The rows of one child table that the image's delete retired (same deleted_at)."""
    table = _RESTORED_CHILDREN[table_name]
    return (
        table.update()
        .where(
            table.c.image_id == statements.bind("w_image_id", table.c.image_id),
            table.c.deleted.is_(sa.true()),
            table.c.deleted_at == statements.bind("w_deleted_at", table.c.deleted_at),
        )
        .values(deleted=False, deleted_at=None, updated_at=_now(table))
    )


class Scrubbing(Transactions):
    @db_call
    def image_scrubbed(self, context: RequestContext, image_id: str) -> dict:
        """pending_delete -> deleted, once none of its locations is pending any more."""
        with self._write() as cur:
            row = self._pending(cur, context, image_id)
            left = cur.fetch(pending_locations, {"w_image_id": row.id})[0][0]
            if left:
                raise exceptions.Conflict(
                    f"Image {row.id} still has {left} location(s) whose data is to be deleted"
                )
            cur.execute(mark_scrubbed, {"w_id": row.id, "v_now": models.utcnow()})
            return documents.store(cur, rows.load_image(cur, row.id))

    @db_call
    def image_restore(self, context: RequestContext, image_id: str) -> dict:
        """pending_delete -> active: the image, its pending locations, and the properties,
        members and tags its delete retired come back."""
        now = models.utcnow()
        with self._write() as cur:
            row = self._pending(cur, context, image_id)
            cur.execute(restore_image, {"w_id": row.id, "v_now": now})
            cur.execute(restore_locations, {"w_image_id": row.id, "v_now": now})
            for name in _RESTORED_CHILDREN:
                values = {"w_image_id": row.id, "w_deleted_at": row.deleted_at, "v_now": now}
                cur.execute(restore_children, values, name)
            return documents.store(cur, rows.load_image(cur, row.id))

    @staticmethod
    def _pending(cur, context: RequestContext, image_id: str) -> rows.ImageRow:
        if not context.is_admin:
            raise exceptions.Forbidden("Only an admin may scrub or restore an image.")
        row = rows.visible_image(cur, context, image_id, force_show_deleted=True)
        if row.status != PENDING:
            raise exceptions.Conflict(
                f"Image {image_id} is {row.status}, not pending_delete: only an image "
                "deleted with delayed_delete can be scrubbed or restored"
            )
        return row
