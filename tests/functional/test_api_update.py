"""PUT /v1/images/{id}: metadata changes, property purging, what may not change, and
uploads to reserved images."""

import hashlib
import uuid

import pytest

pytestmark = pytest.mark.functional

PURGE = "x-glance-registry-purge-props"


@pytest.fixture
def with_props(client):
    return client.reserve(name="props", properties={"a": "1", "b": "2"})


def props_after(client, image_id: str, **kw) -> dict:
    resp = client.update(image_id, **kw)
    assert resp.status_code == 200, resp.text
    assert (
        resp.json()["image"]["properties"]
        == client.get(
            "/images/detail", params={"name": resp.json()["image"]["name"], "is_public": "none"}
        ).json()["images"][0]["properties"]
    )
    return resp.json()["image"]["properties"]


# --- properties ----------------------------------------------------------------------


def test_a_put_replaces_the_properties_by_default(client, with_props):
    assert props_after(client, with_props["id"], properties={"c": "3"}) == {"c": "3"}


def test_a_put_without_properties_removes_them_by_default(client, with_props):
    assert props_after(client, with_props["id"], min_ram=1) == {}


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off"])
def test_purge_props_false_merges(client, with_props, value):
    merged = props_after(
        client, with_props["id"], properties={"b": "20", "c": "3"}, headers={PURGE: value}
    )
    assert merged == {"a": "1", "b": "20", "c": "3"}


@pytest.mark.parametrize("value", ["true", "True", "1", "yes"])
def test_purge_props_true_replaces(client, with_props, value):
    assert props_after(client, with_props["id"], properties={"c": "3"}, headers={PURGE: value}) == {
        "c": "3"
    }


def test_an_upload_never_purges(client):
    image = client.reserve(
        name="upload-keeps", disk_format="raw", container_format="bare", properties={"a": "1"}
    )
    resp = client.update(image["id"], b"data", properties={"c": "3"}, headers={PURGE: "true"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["properties"] == {"a": "1", "c": "3"}


def test_a_property_set_empty_becomes_null(client, with_props):
    merged = props_after(client, with_props["id"], properties={"a": ""}, headers={PURGE: "false"})
    assert merged == {"a": None, "b": "2"}


# --- core fields ---------------------------------------------------------------------


def test_core_fields_change_and_the_reply_is_200_json(client):
    image = client.reserve(name="before")
    resp = client.update(
        image["id"],
        name="after",
        min_disk=5,
        min_ram=256,
        disk_format="iso",
        container_format="bare",
        is_public="true",
        owner="new-owner",
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "Location" not in resp.headers
    assert "ETag" not in resp.headers
    got = resp.json()["image"]
    assert (got["name"], got["min_disk"], got["min_ram"], got["disk_format"]) == (
        "after",
        5,
        256,
        "iso",
    )
    assert got["is_public"] is True
    assert got["owner"] == "new-owner"
    assert got["updated_at"] >= image["updated_at"]
    meta = client.meta(image["id"])
    assert meta["x-image-meta-name"] == "after"
    assert meta["x-image-meta-owner"] == "new-owner"


def test_timestamps_and_deleted_on_put_are_ignored(client):
    image = client.reserve(name="not deleted by a header")
    resp = client.update(
        image["id"], deleted="true", deleted_at="2020-01-01T00:00:00", created_at="2001-01-01"
    )
    assert resp.status_code == 200, resp.text
    got = resp.json()["image"]
    assert got["deleted"] is False
    assert got["deleted_at"] is None
    assert got["created_at"] == image["created_at"]
    assert client.status(image["id"]) == "queued"


def test_a_put_of_an_active_image_has_an_etag(client):
    image = client.upload(b"etag me")
    resp = client.update(image["id"], name="renamed")
    assert resp.status_code == 200
    assert resp.headers["ETag"] == hashlib.md5(b"etag me").hexdigest()


@pytest.mark.parametrize(("key", "value"), [("status", "active"), ("status", "killed")])
def test_changing_the_status_is_403(client, key, value):
    image = client.reserve()
    resp = client.update(image["id"], **{key: value})
    assert resp.status_code == 403
    assert f"Forbidden to modify '{key}' of image." in resp.text
    assert client.status(image["id"]) == "queued"


def test_changing_the_id_is_403(client):
    image = client.reserve()
    resp = client.update(image["id"], id=str(uuid.uuid4()))
    assert resp.status_code == 403
    assert "Forbidden to modify 'id' of image." in resp.text


def test_repeating_the_status_and_id_is_accepted(client):
    queued = client.reserve()
    assert client.update(queued["id"], status="queued", id=queued["id"]).status_code == 200
    active = client.upload(b"x")
    assert client.update(active["id"], status="active").status_code == 200
    resp = client.update(active["id"], status="queued")
    assert resp.status_code == 403


def test_an_admin_may_change_size_and_checksum_of_an_active_image(client):
    image = client.upload(b"abc")
    resp = client.update(image["id"], size=99, checksum="f" * 32)
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["size"] == 99
    assert resp.json()["image"]["checksum"] == "f" * 32


def test_a_missing_image_is_404(client):
    image_id = str(uuid.uuid4())
    resp = client.update(image_id, name="x")
    assert resp.status_code == 404
    assert f"Image with identifier {image_id} not found" in resp.text


def test_a_deleted_image_is_403(client):
    image = client.reserve()
    assert client.delete(f"/images/{image['id']}").status_code == 200
    resp = client.update(image["id"], name="zombie")
    assert resp.status_code == 403
    assert "Forbidden to update deleted image." in resp.text


# --- uploads -------------------------------------------------------------------------


def test_reserve_then_upload(client):
    image = client.reserve(name="two-step", disk_format="raw", container_format="bare")
    data = b"second step" * 999
    resp = client.update(image["id"], data)
    assert resp.status_code == 200, resp.text
    got = resp.json()["image"]
    assert got["status"] == "active"
    assert got["size"] == len(data)
    assert got["checksum"] == hashlib.md5(data).hexdigest()
    assert resp.headers["ETag"] == got["checksum"]
    assert client.get(f"/images/{image['id']}").content == data


def test_reserve_then_chunked_upload_with_formats_in_the_put(client):
    image = client.reserve(name="formats-later")
    resp = client.update(
        image["id"], iter([b"x" * 1000, b"y" * 1000]), disk_format="vhd", container_format="ovf"
    )
    assert resp.status_code == 200, resp.text
    got = resp.json()["image"]
    assert (got["status"], got["size"], got["disk_format"]) == ("active", 2000, "vhd")


def test_upload_to_a_reserved_image_with_declared_size_verifies_it(client):
    image = client.reserve(size=4, disk_format="raw", container_format="bare")
    resp = client.update(image["id"], b"12345")
    assert resp.status_code == 400
    assert "Supplied size (4) and size generated from uploaded image (5)" in resp.text
    assert client.status(image["id"]) == "killed"
    assert image["id"] not in client.files()


def test_upload_without_formats_is_400(client):
    image = client.reserve()
    resp = client.update(image["id"], b"data")
    assert resp.status_code == 400
    assert "Disk format is not specified." in resp.text


def test_upload_to_an_active_image_is_409(client):
    image = client.upload(b"first")
    resp = client.update(image["id"], b"second")
    assert resp.status_code == 409
    assert "Cannot upload to an unqueued image" in resp.text
    assert client.get(f"/images/{image['id']}").content == b"first"


def test_upload_to_a_killed_image_retries_it_and_to_an_active_one_is_409(client):
    """glance-lite takes a new upload for a killed image without data (Glance: 409,
    docs/differences.md); an active image still refuses data."""
    image = client.reserve(disk_format="raw", container_format="bare")
    bad = client.update(image["id"], b"data", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400
    assert "Content-Type must be application/octet-stream" in bad.text
    assert client.status(image["id"]) == "killed"
    resp = client.update(image["id"], b"data")
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["status"] == "active"
    assert client.get(f"/images/{image['id']}").content == b"data"
    again = client.update(image["id"], b"other")
    assert again.status_code == 409
    assert "Cannot upload to an unqueued image" in again.text


@pytest.mark.parametrize("header", ["x-image-meta-location", "x-glance-api-copy-from"])
def test_external_sources_of_no_allowed_scheme_on_update_are_400(client, header):
    image = client.reserve()
    resp = client.update(image["id"], headers={header: "file:///etc/passwd"})
    assert resp.status_code == 400
    assert "External sources are not supported: 'file:///etc/passwd'" in resp.text
    empty = client.update(image["id"], headers={header: ""})
    assert empty.status_code == 400
    assert "External source should not be empty" in empty.text


def test_an_unknown_store_on_update_is_400(client):
    image = client.reserve(disk_format="raw", container_format="bare")
    resp = client.update(image["id"], b"data", store="rbd")
    assert resp.status_code == 400
    assert "Required store rbd is invalid" in resp.text
