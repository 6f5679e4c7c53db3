"""Maintenance of the image database for glance-manage: purging soft-deleted rows and
rendering the stored listing entries again.

Each table is purged in a transaction of its own on the same path as every other method
(transactions.py), its statements built once per table below.
"""

import datetime
import logging

import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.db import documents, models, statements
from glance_lite.db.errors import db_call
from glance_lite.db.transactions import Transactions

LOG = logging.getLogger(__name__)

_TABLES = {table.name: table for table in (*models.IMAGE_CHILDREN, models.tasks, models.images)}


def _children_of(table: sa.Table) -> tuple[sa.Table, ...]:
    if table is models.images:
        return models.IMAGE_CHILDREN
    if table is models.tasks:
        return (models.task_info,)
    return ()


def _fk_column(child: sa.Table) -> str:
    return "task_id" if child is models.task_info else "image_id"


def _limit() -> sa.BindParameter:
    return sa.bindparam("limit", type_=sa.Integer)


def purgeable_task_info() -> sa.Select:
    """The task_info rows of tasks deleted before w_cutoff, the oldest first."""
    task_info, tasks = models.task_info, models.tasks
    return (
        sa.select(task_info.c.task_id)
        .join(tasks, tasks.c.id == task_info.c.task_id)
        .where(
            tasks.c.deleted.is_(sa.true()),
            tasks.c.deleted_at < sa.bindparam("w_cutoff", type_=tasks.c.deleted_at.type),
        )
        .order_by(tasks.c.deleted_at)
        .limit(_limit())
    )


def delete_task_info() -> sa.Delete:
    task_info = models.task_info
    return task_info.delete().where(
        task_info.c.task_id == sa.bindparam("w_id", type_=task_info.c.task_id.type)
    )


def purgeable_rows(table_name: str) -> sa.Select:
    """The rows of the table deleted before w_cutoff that no row refers to, the oldest
    first."""
    table = _TABLES[table_name]
    stmt = (
        sa.select(table.c.id)
        .where(
            table.c.deleted.is_(sa.true()),
            table.c.deleted_at < sa.bindparam("w_cutoff", type_=table.c.deleted_at.type),
        )
        .order_by(table.c.deleted_at)
        .limit(_limit())
    )
    for child in _children_of(table):
        stmt = stmt.where(~sa.exists().where(child.c[_fk_column(child)] == table.c.id))
    return stmt


def delete_row(table_name: str) -> sa.Delete:
    table = _TABLES[table_name]
    return table.delete().where(table.c.id == sa.bindparam("w_id", type_=table.c.id.type))


class Maintenance(Transactions):
    """What glance-manage does to the database besides migrating it."""

    @db_call
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
        counts = {"task_info": self._purge(cutoff, max_rows, purgeable_task_info, delete_task_info)}
        LOG.info("Deleted %d row(s) from table task_info", counts["task_info"])
        for table in (*models.IMAGE_CHILDREN, models.tasks, models.images):
            counts[table.name] = self._purge(
                cutoff, max_rows, purgeable_rows, delete_row, table.name
            )
            LOG.info("Deleted %d row(s) from table %s", counts[table.name], table.name)
        return counts

    def _purge(self, cutoff: datetime.datetime, max_rows: int, select, delete, *shape) -> int:
        """Delete the rows `select` finds (at most max_rows), in one transaction."""
        with self._write() as cur:
            ids = [
                row[0] for row in cur.fetch(select, {"w_cutoff": cutoff, "limit": max_rows}, *shape)
            ]
            if ids:
                cur.execute_many(delete, [{"w_id": row_id} for row_id in ids], *shape)
        return len(ids)

    @db_call
    def rebuild_listing_documents(self) -> int:
        """Render every image's listing document again (after another program wrote rows
        without them, e.g. Glance itself); the number of images."""
        with self._write() as cur:
            ids = [row[0] for row in cur.fetch(statements.all_image_ids, {})]
            for start in range(0, len(ids), statements.CHUNK):
                rendered = [
                    {"w_id": image_id, "v_listing_doc": document}
                    for image_id, document in documents.render(
                        cur, ids[start : start + statements.CHUNK]
                    ).items()
                ]
                cur.execute_many(statements.update_image, rendered, documents.LISTING_DOC, False)
        return len(ids)
