"""Database image methods on every backend: create, get, update, destroy, usage, purge."""

import datetime
import uuid

import pytest
import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.db import models
from tests.helpers import admin_context, make_context

ALICE = make_context("alice")
BOB = make_context("bob")
ADMIN = admin_context("admins")

IMAGE_KEYS = {
    "id", "name", "status", "size", "virtual_size", "disk_format", "container_format",
    "min_disk", "min_ram", "is_public", "checksum", "owner", "protected", "created_at",
    "updated_at", "deleted_at", "deleted", "properties", "location", "location_data",
}  # fmt: skip


def test_create_applies_glance_defaults(database):
    image = database.image_create(ALICE, {"name": "cirros"})
    assert set(image) == IMAGE_KEYS
    assert uuid.UUID(image["id"])
    assert image["status"] == "active"
    assert image["owner"] == "alice"
    assert (image["protected"], image["min_disk"], image["min_ram"]) == (False, 0, 0)
    assert image["is_public"] is False
    assert image["deleted"] is False and image["deleted_at"] is None
    assert image["properties"] == {} and image["location"] is None
    assert image["location_data"] == []
    assert isinstance(image["created_at"], datetime.datetime)
    assert image["created_at"].tzinfo is None


def test_create_stores_shared_visibility_for_private_images(database):
    private = database.image_create(ALICE, {"is_public": False})
    default = database.image_create(ALICE, {})
    public = database.image_create(ALICE, {"is_public": True})
    with database.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(models.images.c.id, models.images.c.visibility)).all())
    assert rows[private["id"]] == rows[default["id"]] == "shared"
    assert rows[public["id"]] == "public" and public["is_public"] is True


def test_create_keeps_given_id_and_rejects_duplicates(database):
    image_id = str(uuid.uuid4())
    assert database.image_create(ALICE, {"id": image_id})["id"] == image_id
    with pytest.raises(exceptions.Conflict, match=f"Image with identifier {image_id} already"):
        database.image_create(BOB, {"id": image_id})


def test_owner_comes_from_the_context_unless_an_admin_gives_one(database):
    assert database.image_create(ALICE, {"owner": "bob"})["owner"] == "alice"
    assert database.image_create(ADMIN, {"owner": "bob"})["owner"] == "bob"
    assert database.image_create(ADMIN, {})["owner"] == "admins"
    assert database.image_create(admin_context(None), {})["owner"] is None


def test_three_byte_unicode_round_trips(database):
    image = database.image_create(ALICE, {"name": "Ω 漢字", "properties": {"é": "ü"}})
    assert database.image_get(ALICE, image["id"])["name"] == "Ω 漢字"
    assert image["properties"] == {"é": "ü"}


@pytest.mark.parametrize("field", ["min_ram", "min_disk"])
def test_min_disk_and_min_ram_hold_32_bit_ints(database, field):
    assert database.image_create(ALICE, {field: 2**31 - 1})[field] == 2**31 - 1


def test_sizes_hold_bigints(database):
    assert database.image_create(ALICE, {"size": 2**40})["size"] == 2**40


def test_location_and_location_data_merge_in_order(database):
    image = database.image_create(
        ALICE,
        {
            "location": "file:///a",
            "location_data": [
                {"url": "file:///b", "metadata": {"k": 1}, "status": "active"},
                {"url": "file:///a", "metadata": {"on": "a"}, "status": "active"},
            ],
        },
    )
    data = image["location_data"]
    assert [(loc["url"], loc["metadata"]) for loc in data] == [
        ("file:///a", {"on": "a"}),
        ("file:///b", {"k": 1}),
    ]
    assert all(isinstance(loc["id"], int) for loc in data)
    assert image["location"] == "file:///a"


def test_location_is_the_first_active_one(database):
    image = database.image_create(
        ALICE,
        {"location_data": [
            {"url": "file:///gone", "metadata": {}, "status": "pending_delete"},
            {"url": "file:///here", "metadata": {}, "status": "active"},
        ]},
    )  # fmt: skip
    assert image["location"] == "file:///here"
    assert [loc["url"] for loc in image["location_data"]] == ["file:///here"]


def test_create_accepts_timestamps(database):
    then = datetime.datetime(2017, 3, 4, 5, 6, 7)
    image = database.image_create(ALICE, {"created_at": then, "updated_at": then})
    assert image["created_at"] == then and image["updated_at"] == then


# --- get -----------------------------------------------------------------------------------


def test_get_of_a_missing_or_overlong_id_is_not_found(database):
    with pytest.raises(exceptions.NotFound, match="No image found with ID nope"):
        database.image_get(ALICE, "nope")
    with pytest.raises(exceptions.NotFound):
        database.image_get(ADMIN, "x" * 37)


def test_get_hides_private_images_from_strangers(database):
    image = database.image_create(ALICE, {"is_public": False})
    with pytest.raises(exceptions.NotFound):
        database.image_get(BOB, image["id"])
    assert database.image_get(ADMIN, image["id"])["id"] == image["id"]


def test_get_shows_ownerless_and_public_images_to_everyone(database):
    ownerless = database.image_create(admin_context(None), {})
    public = database.image_create(ALICE, {"is_public": True})
    for image in (ownerless, public):
        assert database.image_get(BOB, image["id"])["id"] == image["id"]
        assert database.image_get(make_context(None), image["id"])["id"] == image["id"]


def test_get_shows_shared_images_to_live_members_only(database):
    image = database.image_create(ALICE, {})
    database.image_member_set(ALICE, image["id"], "bob", None)
    assert database.image_get(BOB, image["id"])["id"] == image["id"]
    database.image_member_delete(ALICE, image["id"], "bob")
    with pytest.raises(exceptions.NotFound):
        database.image_get(BOB, image["id"])


def test_deleted_images_are_seen_by_admins_or_when_forced(database):
    image = database.image_create(ALICE, {"location": "file:///a"})
    database.image_destroy(ALICE, image["id"])
    with pytest.raises(exceptions.NotFound):
        database.image_get(ALICE, image["id"])
    assert database.image_get(ADMIN, image["id"])["deleted"] is True
    assert database.image_get(make_context("alice", show_deleted=True), image["id"])["deleted"]
    forced = database.image_get(ALICE, image["id"], force_show_deleted=True)
    assert [loc["status"] for loc in forced["location_data"]] == ["deleted"]


# --- update --------------------------------------------------------------------------------


def test_only_admins_change_the_owner(database):
    image = database.image_create(ALICE, {})
    assert database.image_update(ALICE, image["id"], {"owner": "bob"})["owner"] == "alice"
    assert database.image_update(ADMIN, image["id"], {"owner": "bob"})["owner"] == "bob"


def test_update_maps_is_public(database):
    image = database.image_create(ALICE, {})
    assert database.image_update(ALICE, image["id"], {"is_public": True})["is_public"]
    assert not database.image_update(ALICE, image["id"], {"is_public": False})["is_public"]
    assert not database.image_update(ALICE, image["id"], {"name": "n"})["is_public"]


def test_from_state_mismatch_conflicts_and_changes_nothing(database):
    image = database.image_create(ALICE, {"status": "queued", "name": "a"})
    with pytest.raises(exceptions.Conflict, match=r"^Image operation conflicts$"):
        database.image_update(
            ALICE, image["id"], {"status": "active", "name": "b"}, from_state="saving"
        )
    assert database.image_get(ALICE, image["id"])["name"] == "a"
    done = database.image_update(ALICE, image["id"], {"status": "saving"}, from_state="queued")
    assert done["status"] == "saving"


def test_properties_merge_by_default(database):
    image = database.image_create(ALICE, {"properties": {"a": "1", "b": "2"}})
    updated = database.image_update(ALICE, image["id"], {"properties": {"b": "3", "c": "4"}})
    assert updated["properties"] == {"a": "1", "b": "3", "c": "4"}


def test_purge_props_soft_deletes_the_rest_and_revives_on_reuse(database):
    image = database.image_create(ALICE, {"properties": {"a": "1", "b": "2"}})
    purged = database.image_update(ALICE, image["id"], {"properties": {"b": "2"}}, purge_props=True)
    assert purged["properties"] == {"b": "2"}
    revived = database.image_update(ALICE, image["id"], {"properties": {"a": "9"}})
    assert revived["properties"] == {"a": "9", "b": "2"}
    with database.engine.connect() as conn:
        rows = conn.execute(
            sa.select(models.image_properties.c.name, models.image_properties.c.deleted_at)
            .where(models.image_properties.c.image_id == image["id"])
        ).all()  # fmt: skip
    assert sorted(name for name, _ in rows) == ["a", "b"]  # revived in place, no new row
    assert all(deleted_at is None for _, deleted_at in rows)


def test_locations_are_replaced(database):
    image = database.image_create(
        ALICE, {"location_data": [
            {"url": "file:///a", "metadata": {}, "status": "active"},
            {"url": "file:///b", "metadata": {}, "status": "active"},
        ]},
    )  # fmt: skip
    keep = image["location_data"][1]
    updated = database.image_update(
        ALICE,
        image["id"],
        {"location_data": [
            {**keep, "metadata": {"kept": True}},
            {"url": "file:///c", "metadata": {}, "status": "active"},
        ]},
    )  # fmt: skip
    data = updated["location_data"]
    assert [loc["url"] for loc in data] == ["file:///b", "file:///c"]
    assert data[0]["id"] == keep["id"] and data[0]["metadata"] == {"kept": True}
    with database.engine.connect() as conn:
        old = conn.execute(
            sa.select(models.image_locations).where(models.image_locations.c.value == "file:///a")
        ).one()
    assert old.deleted and old.status == "deleted"


def test_an_unknown_location_id_is_not_found(database):
    image = database.image_create(ALICE, {"location": "file:///a"})
    bad = [{"id": 999999, "url": "file:///x", "metadata": {}, "status": "active"}]
    with pytest.raises(exceptions.NotFound, match="No location found with ID 999999"):
        database.image_update(ALICE, image["id"], {"location_data": bad})
    assert database.image_get(ALICE, image["id"])["location"] == "file:///a"


def test_non_owners_cannot_change_images(database):
    private = database.image_create(ALICE, {})
    public = database.image_create(ALICE, {"is_public": True})
    with pytest.raises(exceptions.NotFound):
        database.image_update(BOB, private["id"], {"name": "x"})
    with pytest.raises(exceptions.Forbidden):
        database.image_update(BOB, public["id"], {"name": "x"})
    with pytest.raises(exceptions.Forbidden):
        database.image_destroy(BOB, public["id"])
    database.image_member_set(ALICE, private["id"], "bob", True)
    with pytest.raises(exceptions.NotFound):
        database.image_update(BOB, private["id"], {"name": "x"})


def test_ownerless_images_are_mutable_by_admins_only(database):
    image = database.image_create(admin_context(None), {"is_public": True})
    with pytest.raises(exceptions.Forbidden):
        database.image_update(make_context(None), image["id"], {"name": "x"})
    assert database.image_update(ADMIN, image["id"], {"name": "x"})["name"] == "x"


# --- destroy -------------------------------------------------------------------------------


def test_destroy_soft_deletes_the_image_and_its_rows(database):
    image = database.image_create(
        ALICE, {"status": "active", "properties": {"a": "1"}, "location": "file:///a"}
    )
    database.image_member_set(ALICE, image["id"], "bob", False)
    with database.engine.begin() as conn:
        conn.execute(models.image_tags.insert().values(image_id=image["id"], value="t"))
    gone = database.image_destroy(ALICE, image["id"])
    assert gone["deleted"] is True and gone["status"] == "active"
    assert (gone["properties"], gone["location"], gone["location_data"]) == ({}, None, [])
    with database.engine.connect() as conn:
        for table in models.IMAGE_CHILDREN:
            rows = conn.execute(
                sa.select(table.c.deleted, table.c.deleted_at)
                .where(table.c.image_id == image["id"])
            ).all()  # fmt: skip
            assert rows == [(True, gone["deleted_at"])], table.name
        status = conn.execute(sa.select(models.image_locations.c.status)).scalar_one()
    assert status == "deleted"


def test_destroy_of_a_missing_image_is_not_found(database):
    with pytest.raises(exceptions.NotFound):
        database.image_destroy(ADMIN, str(uuid.uuid4()))


# --- storage usage -------------------------------------------------------------------------


def test_storage_usage_counts_size_times_live_locations(database):
    two = {"location_data": [
        {"url": "file:///1", "metadata": {}, "status": "active"},
        {"url": "file:///2", "metadata": {}, "status": "active"},
    ]}  # fmt: skip
    a = database.image_create(ALICE, {"size": 10, **two})
    database.image_create(ALICE, {"size": 5, "location": "file:///3"})
    database.image_create(ALICE, {"size": 7, "status": "killed", "location": "file:///4"})
    database.image_create(ALICE, {"size": 0, "location": "file:///5"})
    database.image_create(BOB, {"size": 100, "location": "file:///6"})
    assert database.user_get_storage_usage(ALICE, "alice") == 25
    assert database.user_get_storage_usage(ALICE, "alice", image_id=a["id"]) == 5
    assert database.user_get_storage_usage(ALICE, "nobody") == 0


# --- location delete -----------------------------------------------------------------------


def test_location_delete_marks_one_location(database):
    image = database.image_create(ALICE, {"location": "file:///a"})
    loc_id = image["location_data"][0]["id"]
    database.image_location_delete(ADMIN, image["id"], loc_id, "pending_delete")
    assert database.image_get(ADMIN, image["id"])["location_data"] == []
    with pytest.raises(exceptions.NotFound):
        database.image_location_delete(ADMIN, image["id"], loc_id + 1000, "deleted")


# --- purge ---------------------------------------------------------------------------------


def _age_rows(database, days: int) -> None:
    """Make every row deleted so far look deleted `days` ago."""
    then = models.utcnow() - datetime.timedelta(days=days)
    with database.engine.begin() as conn:
        for table in (*models.IMAGE_CHILDREN, models.tasks, models.images):
            conn.execute(
                table.update().where(table.c.deleted_at.is_not(None)).values(deleted_at=then)
            )


def test_purge_hard_deletes_old_soft_deleted_rows(database):
    old = database.image_create(ALICE, {"properties": {"a": "1"}, "location": "file:///a"})
    database.image_destroy(ALICE, old["id"])
    _age_rows(database, 40)
    recent = database.image_create(ALICE, {"properties": {"a": "1"}})
    database.image_destroy(ALICE, recent["id"])
    live = database.image_create(ALICE, {})
    counts = database.purge_deleted_rows(30, 100)
    assert counts["images"] == 1 and counts["image_properties"] == 1
    assert counts["image_locations"] == 1
    with database.engine.connect() as conn:
        ids = set(conn.execute(sa.select(models.images.c.id)).scalars())
    assert ids == {recent["id"], live["id"]}


def test_purge_respects_max_rows_and_never_orphans_children(database):
    image = database.image_create(ALICE, {"properties": {f"p{i}": "v" for i in range(3)}})
    database.image_destroy(ALICE, image["id"])
    _age_rows(database, 1)
    first = database.purge_deleted_rows(0, 2)
    assert first["image_properties"] == 2 and first["images"] == 0
    second = database.purge_deleted_rows(0, 2)
    assert second["image_properties"] == 1 and second["images"] == 1


def test_purge_removes_task_info_of_old_tasks(database):
    then = models.utcnow() - datetime.timedelta(days=2)
    with database.engine.begin() as conn:
        conn.execute(models.tasks.insert().values(
            id="t1", type="import", status="success", owner="alice", created_at=then,
            deleted=True, deleted_at=then))  # fmt: skip
        conn.execute(models.task_info.insert().values(task_id="t1", input="{}"))
    counts = database.purge_deleted_rows(1, 10)
    assert (counts["task_info"], counts["tasks"]) == (1, 1)


def test_purge_validates_its_arguments(sqlite_database):
    with pytest.raises(exceptions.Invalid, match="non-negative"):
        sqlite_database.purge_deleted_rows(-1, 10)
    with pytest.raises(exceptions.Invalid, match=r"Minimal rows limit is 1\."):
        sqlite_database.purge_deleted_rows(1, 0)


def test_create_returns_what_a_read_gives(database):
    then = datetime.datetime(2016, 5, 10, 21, 35, 15)
    for values in (
        {"name": "plain"},
        {"name": "full", "is_public": True, "properties": {"a": "1", "b": None}},
        {"updated_at": then, "deleted": True, "deleted_at": then, "min_ram": 5},
    ):
        created = database.image_create(ADMIN, values)
        assert created == database.image_get(ADMIN, created["id"], force_show_deleted=True)
