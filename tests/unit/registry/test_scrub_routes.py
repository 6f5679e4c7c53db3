"""The registry's routes for glance-scrubber: the pending queue, scrubbed, restore."""

from tests.unit.registry.conftest import Registry


def pending(reg: Registry, name: str) -> tuple[str, int]:
    """An image deleted with delayed_delete, as glance-api leaves it."""
    admin = reg.admin
    image = admin.create(
        name=name,
        status="active",
        size=4,
        location_data=[{"url": f"file:///data/{name}", "metadata": {}, "status": "active"}],
    )
    image_id = image["id"]
    assert (
        admin.put(f"/images/{image_id}", {"image": {"status": "pending_delete"}}).status_int == 200
    )
    [location] = admin.get(f"/images/{image_id}").json["image"]["location_data"]
    path = f"/images/{image_id}/locations/{location['id']}?status=pending_delete"
    assert admin.delete(path).status_int == 204
    assert admin.delete(f"/images/{image_id}").status_int == 200
    return image_id, location["id"]


def test_the_queue_then_scrubbed_once_the_data_is_gone(sqlite_database):
    reg = Registry(sqlite_database)
    admin = reg.admin
    image_id, location_id = pending(reg, "doomed")
    queue = admin.listing("deleted=true&status=pending_delete&is_public=none", detail=True)
    assert [(i["id"], [loc["status"] for loc in i["location_data"]]) for i in queue] == [
        (image_id, ["pending_delete"])
    ]
    early = admin.post(f"/images/{image_id}/scrubbed")
    assert early.status_int == 409 and "still has 1 location" in early.text
    assert (
        admin.delete(f"/images/{image_id}/locations/{location_id}?status=deleted").status_int == 204
    )
    done = admin.post(f"/images/{image_id}/scrubbed")
    assert done.status_int == 200 and done.json["image"]["status"] == "deleted"
    assert admin.listing("deleted=true&status=pending_delete&is_public=none", detail=True) == []


def test_restore_and_who_may(sqlite_database):
    reg = Registry(sqlite_database)
    image_id, _ = pending(reg, "saved")
    refused = reg.tenant("alice").post(f"/images/{image_id}/restore")
    assert refused.status_int == 403
    restored = reg.admin.post(f"/images/{image_id}/restore")
    assert restored.status_int == 200
    image = restored.json["image"]
    assert (image["status"], image["deleted"]) == ("active", False)
    assert [loc["status"] for loc in image["location_data"]] == ["active"]
    again = reg.admin.post(f"/images/{image_id}/restore")
    assert again.status_int == 409 and "is active, not pending_delete" in again.text
