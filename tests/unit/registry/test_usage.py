"""glance-lite's own registry routes: an owner's storage usage and one location's delete."""

import pytest


@pytest.fixture
def located(admin) -> dict:
    return admin.create(location="file:///a", size=10, owner="alice")


def test_deleting_a_location_marks_it_and_answers_204(admin, located):
    loc_id = located["location_data"][0]["id"]
    path = f"/images/{located['id']}/locations/{loc_id}?status=pending_delete"
    assert admin.delete(path).status_int == 204
    assert admin.get(f"/images/{located['id']}").json["image"]["location_data"] == []


@pytest.mark.parametrize("status", ["active", "killed"])
def test_a_location_can_only_be_deleted_or_pending_delete(admin, located, status):
    loc_id = located["location_data"][0]["id"]
    resp = admin.delete(f"/images/{located['id']}/locations/{loc_id}?status={status}")
    assert resp.status_int == 400
    assert (
        "The status of deleted image location can only be set to 'pending_delete' or 'deleted'"
        in resp.text
    )


def test_an_unknown_location_is_a_404(admin, located):
    resp = admin.delete(f"/images/{located['id']}/locations/999999")
    assert resp.status_int == 404
    assert "No location found with ID 999999" in resp.text


def test_usage_counts_an_owners_located_bytes(registry, located):
    resp = registry.tenant("alice").get("/storage-usage?owner=alice")
    assert resp.json == {"owner": "alice", "usage": 10}
