"""Image membership methods on every backend."""

import pytest
import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.db import models
from tests.helpers import admin_context, make_context

ALICE = make_context("alice")
BOB = make_context("bob")
CAROL = make_context("carol")
ADMIN = admin_context("admins")


@pytest.fixture
def image_id(database):
    return database.image_create(ALICE, {})["id"]


def members_of(database, image_id, context=ADMIN, **kw):
    return {m["member"]: m for m in database.image_member_find(context, image_id=image_id, **kw)}


def test_new_members_are_pending_and_cannot_share_by_default(database, image_id):
    database.image_member_set(ALICE, image_id, "bob", None)
    [bob] = database.image_member_find(ALICE, image_id=image_id)
    assert (bob["member"], bob["can_share"], bob["status"], bob["deleted"]) == (
        "bob", False, "pending", False
    )  # fmt: skip
    assert set(bob) == {
        "id", "image_id", "member", "can_share", "status", "created_at", "updated_at",
        "deleted_at", "deleted",
    }  # fmt: skip


def test_find_shows_non_admins_their_own_rows(database, image_id):
    database.image_members_replace(ALICE, image_id, {"bob": None, "carol": None})
    assert set(members_of(database, image_id, ALICE)) == {"bob", "carol"}
    assert set(members_of(database, image_id, BOB)) == {"bob"}
    assert members_of(database, image_id, make_context("dave")) == {}
    assert [m["member"] for m in database.image_member_find(BOB, member="bob")] == ["bob"]


def test_find_for_an_ownerless_caller_matches_ownerless_images(database):
    image = database.image_create(admin_context(None), {})
    database.image_member_set(ADMIN, image["id"], "bob", None)
    assert set(members_of(database, image["id"], make_context(None))) == {"bob"}


def test_replace_creates_updates_revives_and_deletes(database, image_id):
    database.image_members_replace(ALICE, image_id, {"bob": True, "carol": None})
    database.image_member_delete(ALICE, image_id, "carol")
    database.image_members_replace(
        ALICE, image_id, {"bob": None, "carol": None, "dave": True},
    )  # fmt: skip
    live = members_of(database, image_id)
    assert {m: row["can_share"] for m, row in live.items()} == {
        "bob": True, "carol": False, "dave": True
    }  # fmt: skip
    database.image_members_replace(ALICE, image_id, {"dave": False})
    assert {m: r["can_share"] for m, r in members_of(database, image_id).items()} == {"dave": False}
    with database.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(models.image_members)).scalar()
    assert rows == 3  # carol was revived in place, not duplicated


def test_set_updates_an_existing_row_when_can_share_is_given(database, image_id):
    database.image_member_set(ALICE, image_id, "bob", None)
    database.image_member_set(ALICE, image_id, "bob", True)
    assert members_of(database, image_id)["bob"]["can_share"] is True


def test_a_bodyless_set_does_not_revive_a_deleted_membership(database, image_id):
    database.image_member_set(ALICE, image_id, "bob", True)
    database.image_member_delete(ALICE, image_id, "bob")
    database.image_member_set(ALICE, image_id, "bob", None)
    assert members_of(database, image_id) == {}
    database.image_member_set(ALICE, image_id, "bob", False)
    assert members_of(database, image_id)["bob"]["can_share"] is False


def test_delete_of_an_absent_membership_is_not_found(database, image_id):
    database.image_member_set(ALICE, image_id, "bob", None)
    database.image_member_delete(ALICE, image_id, "bob")
    with pytest.raises(exceptions.NotFound, match=r"^Membership could not be found.$"):
        database.image_member_delete(ALICE, image_id, "bob")
    deleted = members_of(database, image_id, include_deleted=True)["bob"]
    assert deleted["deleted"] is True and deleted["deleted_at"] is not None


def test_find_lists_live_members_only(database, image_id):
    database.image_members_replace(ALICE, image_id, dict.fromkeys("abc"))
    database.image_member_delete(ALICE, image_id, "b")
    found = database.image_member_find(ALICE, image_id=image_id)
    assert [member["member"] for member in found] == ["a", "c"]


def test_sharing_needs_owner_admin_or_can_share(database, image_id):
    with pytest.raises(exceptions.NotFound):
        database.image_member_set(CAROL, image_id, "dave", None)
    database.image_member_set(ALICE, image_id, "bob", False)
    with pytest.raises(exceptions.Forbidden, match="No permission to share that image"):
        database.image_member_set(BOB, image_id, "carol", None)
    database.image_member_set(ALICE, image_id, "bob", True)
    database.image_member_set(BOB, image_id, "carol", None)
    database.image_member_delete(BOB, image_id, "carol")
    database.image_members_replace(ADMIN, image_id, {})
    assert members_of(database, image_id) == {}


def test_public_images_are_not_sharable_by_strangers(database):
    public = database.image_create(ALICE, {"is_public": True})
    with pytest.raises(exceptions.Forbidden):
        database.image_members_replace(CAROL, public["id"], {"carol": None})
    with pytest.raises(exceptions.Forbidden):
        database.image_member_set(make_context(None), public["id"], "x", None)
