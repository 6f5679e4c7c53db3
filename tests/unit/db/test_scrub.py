"""The end of a delayed delete, on every backend: scrubbed once its data is gone, or
restored with what its delete retired."""

import pytest

from glance_lite import exceptions
from tests.helpers import admin_context, make_context

ALICE = make_context("alice")
ADMIN = admin_context("admins")


def pending_image(database) -> dict:
    """An image deleted as glance-api does with delayed_delete: pending_delete, its
    location pending, the row soft-deleted."""
    image = database.image_create(
        ALICE,
        {
            "name": "doomed",
            "status": "active",
            "size": 3,
            "properties": {"os": "linux"},
            "location_data": [{"url": "file:///data/doomed", "metadata": {}, "status": "active"}],
        },
    )
    database.image_member_set(ALICE, image["id"], "bob", False)
    database.image_update(ALICE, image["id"], {"status": "pending_delete"})
    [location] = database.image_get(ALICE, image["id"])["location_data"]
    database.image_location_delete(ADMIN, image["id"], location["id"], "pending_delete")
    database.image_destroy(ALICE, image["id"])
    return {**image, "location_id": location["id"]}


def test_an_image_is_scrubbed_only_once_its_data_is_gone(database):
    image = pending_image(database)
    with pytest.raises(exceptions.Conflict, match="still has 1 location"):
        database.image_scrubbed(ADMIN, image["id"])
    database.image_location_delete(ADMIN, image["id"], image["location_id"], "deleted")
    scrubbed = database.image_scrubbed(ADMIN, image["id"])
    assert scrubbed["status"] == "deleted" and scrubbed["deleted"]
    with pytest.raises(exceptions.Conflict, match="is deleted, not pending_delete"):
        database.image_scrubbed(ADMIN, image["id"])
    with pytest.raises(exceptions.Conflict, match="is deleted, not pending_delete"):
        database.image_restore(ADMIN, image["id"])


def test_a_restored_image_is_active_with_its_data_properties_and_members(database):
    image = pending_image(database)
    restored = database.image_restore(ADMIN, image["id"])
    assert (restored["status"], restored["deleted"], restored["deleted_at"]) == (
        "active",
        False,
        None,
    )
    assert [loc["url"] for loc in restored["location_data"]] == ["file:///data/doomed"]
    assert restored["location_data"][0]["status"] == "active"
    assert restored["properties"] == {"os": "linux"}
    assert [m["member"] for m in database.image_member_find(ALICE, image_id=image["id"])] == ["bob"]
    assert database.image_get(ALICE, image["id"])["status"] == "active"


def test_only_an_admin_may_and_only_a_pending_image(database):
    image = pending_image(database)
    with pytest.raises(exceptions.Forbidden):
        database.image_restore(ALICE, image["id"])
    live = database.image_create(ALICE, {"name": "alive"})
    with pytest.raises(exceptions.Conflict, match="not pending_delete"):
        database.image_restore(ADMIN, live["id"])
    with pytest.raises(exceptions.NotFound):
        database.image_restore(ADMIN, "6b3e8a9e-6f0e-4a6f-9d6c-0d9f6b7a1c2d")
