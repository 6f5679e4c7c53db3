"""DELETE /v1/images/{id}: immediate and delayed deletion, protected images, and what a
deleted image still answers."""

import uuid

import pytest
import requests

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def delayed(deploy):
    return deploy("delayed", delayed_delete=True)


def test_delete_answers_200_empty_and_removes_the_data_file(client):
    image = client.upload(b"to be deleted")
    assert client.image_file(image["id"]).exists()
    resp = client.delete(f"/images/{image['id']}")
    assert resp.status_code == 200, resp.text
    assert resp.content == b""
    assert resp.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert resp.headers["Content-Length"] == "0"
    assert image["id"] not in client.files()


def test_delete_of_an_image_whose_file_is_already_gone_succeeds(client):
    image = client.upload(b"vanished")
    client.image_file(image["id"]).unlink()
    resp = client.delete(f"/images/{image['id']}")
    assert resp.status_code == 200, resp.text
    assert client.status(image["id"]) == "deleted"


def test_a_deleted_image_as_seen_by_the_admin(client):
    image = client.upload(b"gone", properties={"p": "v"})
    image_id = image["id"]
    assert client.delete(f"/images/{image_id}").status_code == 200

    meta = client.meta(image_id)
    assert meta["x-image-meta-status"] == "deleted"
    assert meta["x-image-meta-deleted"] == "True"
    assert "x-image-meta-deleted_at" in meta

    get = client.get(f"/images/{image_id}")
    assert get.status_code == 404
    assert f"Image {image_id} is not active" in get.text

    again = client.delete(f"/images/{image_id}")
    assert again.status_code == 404
    assert f"Image {image_id} not found." in again.text

    put = client.update(image_id, name="back")
    assert put.status_code == 403
    assert "Forbidden to update deleted image." in put.text

    listed = client.get("/images", params={"is_public": "none"}).json()["images"]
    assert image_id not in [i["id"] for i in listed]


def test_member_operations_on_a_deleted_image_are_404(client):
    image = client.reserve()
    image_id = image["id"]
    assert client.put(f"/images/{image_id}/members/t1").status_code == 204
    assert client.delete(f"/images/{image_id}").status_code == 200
    text = f"Image with identifier {image_id} has been deleted."
    for resp in (
        client.get(f"/images/{image_id}/members"),
        client.put(f"/images/{image_id}/members/t2"),
        client.put(f"/images/{image_id}/members", json={"memberships": []}),
        client.delete(f"/images/{image_id}/members/t1"),
    ):
        assert resp.status_code == 404, resp.text
        assert text in resp.text


def test_a_protected_image_cannot_be_deleted(client):
    image = client.upload(b"keep me", protected="true")
    resp = client.delete(f"/images/{image['id']}")
    assert resp.status_code == 403
    assert "Image is protected" in resp.text
    assert client.status(image["id"]) == "active"
    assert client.image_file(image["id"]).exists()
    assert client.update(image["id"], protected="false").status_code == 200
    assert client.delete(f"/images/{image['id']}").status_code == 200


def test_a_queued_image_is_deleted_outright(client):
    image = client.reserve()
    assert client.delete(f"/images/{image['id']}").status_code == 200
    assert client.status(image["id"]) == "deleted"


def test_a_killed_image_can_be_deleted(client):
    image = client.reserve(disk_format="raw", container_format="bare")
    client.update(image["id"], b"x", headers={"Content-Type": "text/plain"})
    assert client.status(image["id"]) == "killed"
    assert client.delete(f"/images/{image['id']}").status_code == 200
    assert client.status(image["id"]) == "deleted"


def test_deleting_a_missing_image_is_404(client):
    image_id = str(uuid.uuid4())
    resp = client.delete(f"/images/{image_id}")
    assert resp.status_code == 404
    assert f"Image with identifier {image_id} not found" in resp.text


def test_changes_since_lists_deleted_images(client):
    image = client.reserve(name="changes-since", is_public="true")
    assert client.delete(f"/images/{image['id']}").status_code == 200
    listed = client.get(
        "/images/detail", params={"changes-since": "2000-01-01T00:00:00", "is_public": "none"}
    ).json()["images"]
    mine = [i for i in listed if i["id"] == image["id"]]
    assert len(mine) == 1
    assert mine[0]["deleted"] is True
    assert mine[0]["status"] == "deleted"
    plain = client.get("/images", params={"deleted": "true"}).json()["images"]
    assert image["id"] not in [i["id"] for i in plain]


# --- delayed delete ------------------------------------------------------------------


@pytest.mark.parametrize("stopped", [False, True], ids=["at-once", "after-a-stopped-delete"])
def test_delayed_delete_leaves_pending_delete_and_keeps_the_file(delayed, stopped):
    data = b"scrub me later"
    image = delayed.upload(data)
    image_id = image["id"]
    if stopped:  # a delete stopped half-way is finished for the scrubber
        interrupt_delete(delayed, image_id, "pending_delete")
        assert image_id not in listed_ids(delayed)
    assert delayed.delete(f"/images/{image_id}").status_code == 200

    meta = delayed.meta(image_id)
    assert meta["x-image-meta-status"] == "pending_delete"
    assert meta["x-image-meta-deleted"] == "True"
    assert delayed.image_file(image_id).read_bytes() == data

    again = delayed.delete(f"/images/{image_id}")
    assert again.status_code == 403
    assert "Forbidden to delete a pending_delete image." in again.text

    get = delayed.get(f"/images/{image_id}")
    assert get.status_code == 404
    assert f"Image {image_id} is not active" in get.text


def test_a_pending_delete_image_is_still_updatable(delayed):
    image = delayed.upload(b"still editable")
    assert delayed.delete(f"/images/{image['id']}").status_code == 200
    resp = delayed.update(
        image["id"], name="edited", headers={"x-glance-registry-purge-props": "0"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["name"] == "edited"
    assert resp.json()["image"]["status"] == "pending_delete"


def test_delayed_delete_of_a_queued_image_is_deleted(delayed):
    image = delayed.reserve()
    assert delayed.delete(f"/images/{image['id']}").status_code == 200
    assert delayed.status(image["id"]) == "deleted"


def test_delayed_delete_of_an_empty_active_image_is_deleted(delayed):
    image = delayed.reserve(size=0)
    assert image["status"] == "active"
    assert delayed.delete(f"/images/{image['id']}").status_code == 200
    assert delayed.status(image["id"]) == "deleted"


# --- a delete stopped half-way ---------------------------------------------------------


def interrupt_delete(api, image_id: str, status: str) -> None:
    """What a v1 DELETE stopped between its two registry calls leaves: the status set,
    the image not removed. The first call is made here straight to the registry."""
    registry = api.deployment.registry.url
    resp = requests.put(
        f"{registry}/images/{image_id}", json={"image": {"status": status}}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["deleted"] is False


def listed_ids(api, path: str = "/images/detail") -> list[str]:
    resp = api.get(path, params={"is_public": "none", "limit": 1000})
    assert resp.status_code == 200, resp.text
    return [image["id"] for image in resp.json()["images"]]


def test_an_interrupted_delete_is_never_listed_and_a_repeated_delete_finishes_it(client):
    image = client.upload(b"half deleted")
    image_id = image["id"]
    interrupt_delete(client, image_id, "deleted")
    assert image_id not in listed_ids(client)
    assert image_id not in listed_ids(client, "/images")

    resp = client.delete(f"/images/{image_id}")
    assert resp.status_code == 200, resp.text
    meta = client.meta(image_id)
    assert meta["x-image-meta-status"] == "deleted"
    assert meta["x-image-meta-deleted"] == "True"
    assert client.no_file_for(image_id)
    again = client.delete(f"/images/{image_id}")
    assert again.status_code == 404
    assert f"Image {image_id} not found." in again.text
