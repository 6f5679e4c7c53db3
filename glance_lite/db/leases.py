"""Upload leases: which api node is uploading an image, until when (docs/registry.md).

A lease is a row of image_leases: image, holder (the api node's id), expiry, and where
the upload's partial data is when the store needs to be told. It is taken in the same
transaction that sets the image `saving` (Images.image_update with `lease`), renewed by
its holder while the bytes stream, and removed in the transaction that moves the image
out of `saving` (to active, killed, deleted, ...), so it never outlives the upload.

A sweep kills the `saving` images whose lease expired, and those that have none (set
`saving` by an older version or by Glance) once `grace` seconds passed since their
updated_at. It locks the image rows, then their leases, and decides on what it reads
under those locks: a renewal (which locks the image row first too) or an activation
that came first wins, so a live upload is never killed and two sweeps never both act.
Times are the registry's clock: a node asks for a duration, never for a moment.
"""

import datetime

import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.context import RequestContext
from glance_lite.db import documents, models, prepared, rows, statements
from glance_lite.db.errors import db_call
from glance_lite.db.transactions import Transactions

SAVING = "saving"

_images = statements.plain(models.images)
_leases = statements.plain(models.image_leases)


def _bind(name: str, column) -> sa.BindParameter:
    return statements.bind(name, column)


# --- statements (one builder each, compiled once per dialect: prepared.py) ---------------


def delete_lease() -> sa.Delete:
    return _leases.delete().where(_leases.c.image_id == _bind("w_image_id", _leases.c.image_id))


def insert_lease() -> sa.Insert:
    return _leases.insert().values(
        {column.name: _bind(f"v_{column.name}", column) for column in _leases.c}
    )


def renew_lease() -> sa.Update:
    return (
        _leases.update()
        .where(_leases.c.image_id == _bind("w_image_id", _leases.c.image_id))
        .values(
            holder=_bind("v_holder", _leases.c.holder),
            expires_at=_bind("v_expires_at", _leases.c.expires_at),
            partial_location=_bind("v_partial_location", _leases.c.partial_location),
            updated_at=_bind("v_updated_at", _leases.c.updated_at),
        )
    )


def image_status_for_update() -> sa.Select:
    """Image w_id's status, its row locked (no row locks on SQLite: BEGIN IMMEDIATE)."""
    return (
        sa.select(_images.c.status)
        .where(_images.c.id == _bind("w_id", _images.c.id))
        .with_for_update()
    )


def lease_of() -> sa.Select:
    return (
        sa.select(_leases.c.holder, _leases.c.expires_at, _leases.c.partial_location)
        .where(_leases.c.image_id == _bind("w_image_id", _leases.c.image_id))
        .with_for_update()
    )


def expired_candidates() -> sa.Select:
    """Up to `limit` ids of `saving` images whose lease expired before w_now, or that
    have none and were last updated before w_cutoff (read without locks: a hint)."""
    images, leases = models.images, models.image_leases
    return (
        sa.select(images.c.id)
        .select_from(images.outerjoin(leases, leases.c.image_id == images.c.id))
        .where(
            images.c.status == SAVING,
            sa.or_(
                leases.c.expires_at < _bind("w_now", leases.c.expires_at),
                sa.and_(
                    leases.c.image_id.is_(None),
                    images.c.updated_at < _bind("w_cutoff", images.c.updated_at),
                ),
            ),
        )
        .order_by(images.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def saving_for_update(count: int) -> sa.Select:
    """The ids and updated_at of those of `count` images still `saving`, locked in id order."""
    return (
        sa.select(_images.c.id, _images.c.updated_at)
        .where(
            _images.c.id.in_([_bind(f"w_id_{i}", _images.c.id) for i in range(count)]),
            _images.c.status == SAVING,
        )
        .order_by(_images.c.id)
        .with_for_update()
    )


def leases_for_update(count: int) -> sa.Select:
    return (
        sa.select(
            _leases.c.image_id, _leases.c.holder, _leases.c.expires_at, _leases.c.partial_location
        )
        .where(
            _leases.c.image_id.in_([_bind(f"w_id_{i}", _leases.c.image_id) for i in range(count)])
        )
        .order_by(_leases.c.image_id)
        .with_for_update()
    )


# --- what image_update and image_destroy do with a lease ----------------------------------


def after_status_change(
    cur: prepared.Cursor,
    image_id: str,
    status: str,
    lease: tuple[str, int] | None,
    now: datetime.datetime,
) -> None:
    """Inside a write that sets the image's status: its lease goes, and setting it
    `saving` with `lease` (holder, seconds) takes a new one."""
    cur.execute(delete_lease, {"w_image_id": image_id})
    if status == SAVING and lease is not None:
        holder, duration = lease
        cur.execute(insert_lease, _lease_values(image_id, holder, duration, None, now))


def check_held(cur: prepared.Cursor, image_id: str, holder: str) -> None:
    """Inside a write, before it changes image `image_id`: Conflict unless `holder` holds
    its upload lease (expired or not: an expired lease the sweep has not acted on is
    still the upload's). The image row is locked first, then the lease, as a renewal does."""
    cur.fetch(image_status_for_update, {"w_id": image_id})
    found = cur.fetch(lease_of, {"w_image_id": image_id})
    if not found or found[0][0] != holder:
        raise exceptions.Conflict(
            f"The upload of image {image_id} is not {holder}'s any more: "
            f"{'another upload holds it' if found else 'it holds no lease'}"
        )


def _lease_values(
    image_id: str, holder: str, duration: int, partial: str | None, now: datetime.datetime
) -> dict:
    return {
        "v_image_id": image_id,
        "v_holder": holder,
        "v_expires_at": now + datetime.timedelta(seconds=duration),
        "v_partial_location": partial,
        "v_created_at": now,
        "v_updated_at": now,
    }


def lease_dict(image_id: str, holder: str, expires_at, partial: str | None) -> dict:
    return {
        "image_id": image_id,
        "holder": holder,
        "expires_at": expires_at,
        "partial_location": partial,
    }


class Leases(Transactions):
    """Taking, renewing, releasing and sweeping upload leases (the registry's /leases
    routes)."""

    @db_call
    def image_lease_renew(
        self,
        context: RequestContext,
        image_id: str,
        holder: str,
        duration: int,
        partial_location: str | None = None,
    ) -> dict:
        """Give `holder` the lease of a `saving` image for `duration` seconds from now:
        a renewal of its own lease, or a new one where there is none or it expired.
        Conflict when the image is not `saving` (the upload is over, or was swept) or
        another holder's lease is live."""
        now = models.utcnow()
        with self._write() as cur:
            row = rows.visible_image(cur, context, image_id)
            rows.check_mutable(context, row)
            (status,) = cur.fetch(image_status_for_update, {"w_id": row.id})[0]
            if status != SAVING:
                raise exceptions.Conflict(
                    f"Image {row.id} is {status}, not saving: it has no upload to lease"
                )
            found = cur.fetch(lease_of, {"w_image_id": row.id})
            values = _lease_values(row.id, holder, duration, partial_location, now)
            if not found:
                cur.execute(insert_lease, values)
            else:
                current_holder, expires_at, _ = found[0]
                if current_holder != holder and expires_at >= now:
                    raise exceptions.Conflict(
                        f"The upload of image {row.id} is leased by {current_holder} "
                        f"until {expires_at.isoformat()}"
                    )
                cur.execute(renew_lease, {**values, "w_image_id": row.id})
        return lease_dict(row.id, holder, values["v_expires_at"], partial_location)

    @db_call
    def image_lease_release(self, context: RequestContext, image_id: str, holder: str) -> None:
        """Give up `holder`'s lease (none: nothing to do); Conflict if another holds it."""
        with self._write() as cur:
            row = rows.visible_image(cur, context, image_id, force_show_deleted=True)
            rows.check_mutable(context, row)
            cur.fetch(image_status_for_update, {"w_id": row.id})
            found = cur.fetch(lease_of, {"w_image_id": row.id})
            if not found:
                return
            if found[0][0] != holder:
                raise exceptions.Conflict(f"The lease of image {row.id} is held by {found[0][0]}")
            cur.execute(delete_lease, {"w_image_id": row.id})

    @db_call
    def image_leases_sweep(self, context: RequestContext, grace: int, limit: int) -> list[dict]:
        """Kill up to `limit` `saving` images whose upload lease expired (or that have
        none and were not updated for `grace` seconds); their leases as they were, for
        the caller to remove the partial data. An admin's call."""
        if not context.is_admin:
            raise exceptions.Forbidden("Only an admin may sweep upload leases.")
        now = models.utcnow()
        cutoff = now - datetime.timedelta(seconds=grace)
        values = {"w_now": now, "w_cutoff": cutoff, "limit": limit}
        with self._read() as cur:  # the usual answer, none, without taking a write lock
            ids = [image_id for (image_id,) in cur.fetch(expired_candidates, values)]
        if not ids:
            return []
        killed = []
        with self._write() as cur:
            for count, values in statements.chunks(ids):
                saving = dict(cur.fetch(saving_for_update, values, count))
                leased = {
                    image_id: (holder, expires_at, partial)
                    for image_id, holder, expires_at, partial in cur.fetch(
                        leases_for_update, values, count
                    )
                }
                for image_id, updated_at in saving.items():
                    holder, expires_at, partial = leased.get(image_id, (None, None, None))
                    expired = expires_at < now if expires_at else updated_at < cutoff
                    if expired and self._kill(cur, image_id, now):
                        killed.append(lease_dict(image_id, holder, expires_at, partial))
            return killed

    def _kill(self, cur: prepared.Cursor, image_id: str, now: datetime.datetime) -> bool:
        params = {
            "w_id": image_id,
            "w_from_state": SAVING,
            "v_status": "killed",
            "v_updated_at": now,
        }
        if cur.execute(statements.update_image, params, ("status", "updated_at"), True) == 0:
            return False
        cur.execute(delete_lease, {"w_image_id": image_id})
        documents.store(cur, rows.load_image(cur, image_id))
        return True
