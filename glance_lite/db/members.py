"""Image memberships: who an image is shared with, and whether they may share it on.

Each method is one transaction on the same path as the image records (transactions.py),
its statements built once per shape below. Member ids come checked by the registry
(registry/members.py).
"""

import collections
import datetime

import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.context import RequestContext
from glance_lite.db import listing, models, prepared, rows, statements
from glance_lite.db.errors import db_call
from glance_lite.db.statements import bind
from glance_lite.db.transactions import Transactions

images = models.images
members = models.image_members
_members = statements.plain(members)

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
MemberRow = collections.namedtuple("MemberRow", MEMBER_COLUMNS)


# --- statements (prepared.py: built once per shape) ----------------------------------------


def find_members(
    include_deleted: bool, admin: bool, anonymous: bool, by_image: bool, by_member: bool
) -> sa.Select:
    """Memberships in id order; a non-admin sees those of the images owned by w_owner
    and its own (`anonymous`: the caller has no owner, NULL matching NULL)."""
    stmt = sa.select(*(members.c[key] for key in MEMBER_COLUMNS)).order_by(members.c.id)
    if not include_deleted:
        stmt = stmt.where(listing.live(members))
    if not admin:
        if anonymous:
            mine = sa.or_(images.c.owner.is_(None), members.c.member.is_(None))
        else:
            owner = bind("w_owner", images.c.owner)
            mine = sa.or_(images.c.owner == owner, members.c.member == owner)
        stmt = stmt.join(images, images.c.id == members.c.image_id).where(mine)
    if by_image:
        stmt = stmt.where(members.c.image_id == bind("w_image_id", members.c.image_id))
    if by_member:
        stmt = stmt.where(members.c.member == bind("w_member", members.c.member))
    return stmt


def member_rows(by_member: bool) -> sa.Select:
    """Every membership row of image w_image_id (of member w_member only), in id order."""
    stmt = (
        sa.select(*(members.c[key] for key in MEMBER_COLUMNS))
        .where(members.c.image_id == bind("w_image_id", members.c.image_id))
        .order_by(members.c.id)
    )
    if by_member:
        stmt = stmt.where(members.c.member == bind("w_member", members.c.member))
    return stmt


def insert_member() -> sa.Insert:
    return _members.insert().values(
        image_id=bind("v_image_id", members.c.image_id),
        member=bind("v_member", members.c.member),
        can_share=bind("v_can_share", members.c.can_share),
        status="pending",
        created_at=bind("v_now", members.c.created_at),
        updated_at=bind("v_now", members.c.updated_at),
        deleted=False,
    )


def revive_member() -> sa.Update:
    return (
        _members.update()
        .where(_members.c.id == bind("w_id", members.c.id))
        .values(
            can_share=bind("v_can_share", members.c.can_share),
            deleted=False,
            deleted_at=None,
            updated_at=bind("v_now", members.c.updated_at),
        )
    )


def retire_member() -> sa.Update:
    where = _members.c.id == bind("w_id", members.c.id)
    return _members.update().where(where).values(statements.retired(_members))


# --- the methods -----------------------------------------------------------------------------


class Members(Transactions):
    """The memberships behind glance-registry's /images/{image_id}/members routes."""

    @db_call
    def image_member_find(
        self,
        context: RequestContext,
        *,
        image_id: str | None = None,
        member: str | None = None,
        include_deleted: bool = False,
    ) -> list[dict]:
        shape = (
            include_deleted,
            context.is_admin,
            context.owner is None,
            image_id is not None,
            member is not None,
        )
        values = {"w_owner": context.owner, "w_image_id": image_id, "w_member": member}
        with self._read() as cur:
            found = cur.fetch(find_members, values, *shape)
        return [MemberRow._make(row)._asdict() for row in found]

    @db_call
    def image_members_replace(
        self, context: RequestContext, image_id: str, wanted: dict[str, bool | None]
    ) -> None:
        """Make `wanted` (member id -> can_share, None: keep) the image's memberships."""
        now = models.utcnow()
        with self._write() as cur:
            image = _sharable_image(cur, context, image_id)
            current = _member_rows(cur, image.id)
            for member_id, can_share in wanted.items():
                _put_member(cur, image.id, member_id, can_share, current.get(member_id), now)
            stale = [
                {"w_id": row.id, "v_now": now}
                for member_id, row in current.items()
                if member_id not in wanted and not row.deleted
            ]
            if stale:
                cur.execute_many(retire_member, stale)

    @db_call
    def image_member_set(
        self, context: RequestContext, image_id: str, member: str, can_share: bool | None
    ) -> None:
        now = models.utcnow()
        with self._write() as cur:
            image = _sharable_image(cur, context, image_id)
            row = _member_rows(cur, image.id, member).get(member)
            if row is not None and can_share is None:
                return  # Glance's wart: a body-less PUT leaves a deleted membership deleted.
            _put_member(cur, image.id, member, can_share, row, now)

    @db_call
    def image_member_delete(self, context: RequestContext, image_id: str, member: str) -> None:
        now = models.utcnow()
        with self._write() as cur:
            image = _sharable_image(cur, context, image_id)
            row = _member_rows(cur, image.id, member).get(member)
            if row is None or row.deleted:
                raise exceptions.NotFound("Membership could not be found.")
            cur.execute(retire_member, {"w_id": row.id, "v_now": now})


def _sharable_image(cur: prepared.Cursor, context: RequestContext, image_id: str) -> rows.ImageRow:
    """The image if the caller may see and share it: 404 unseen, 403 not sharable."""
    image = rows.visible_image(cur, context, image_id)
    if context.is_admin:
        return image
    if context.owner is not None:
        if image.owner == context.owner:
            return image
        own = rows.live_member(cur, image.id, context.owner)
        if own is not None and own[0]:
            return image
    raise exceptions.Forbidden("No permission to share that image")


def _member_rows(
    cur: prepared.Cursor, image_id: str, member: str | None = None
) -> dict[str, MemberRow]:
    """One row per member of the image: the live one, else the latest deleted one."""
    found = cur.fetch(member_rows, {"w_image_id": image_id, "w_member": member}, member is not None)
    chosen: dict[str, MemberRow] = {}
    for row in map(MemberRow._make, found):
        previous = chosen.get(row.member)
        if previous is None or previous.deleted:
            chosen[row.member] = row
    return chosen


def _put_member(
    cur: prepared.Cursor,
    image_id: str,
    member: str,
    can_share: bool | None,
    row: MemberRow | None,
    now: datetime.datetime,
) -> None:
    """Create the membership, or update and revive the existing row."""
    if row is None:
        values = {"v_image_id": image_id, "v_member": member, "v_can_share": bool(can_share)}
        cur.execute(insert_member, {**values, "v_now": now})
        return
    share = row.can_share if can_share is None else bool(can_share)
    cur.execute(revive_member, {"w_id": row.id, "v_can_share": share, "v_now": now})
