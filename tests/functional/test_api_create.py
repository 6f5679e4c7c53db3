"""POST /v1/images: reserve, upload (Content-Length and chunked), verification of the
declared size and checksum, and every refusal."""

import hashlib
import re
import uuid

import pytest

pytestmark = pytest.mark.functional

KEYS = {
    "id",
    "name",
    "status",
    "size",
    "virtual_size",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "is_public",
    "checksum",
    "owner",
    "protected",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "properties",
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


# --- reserve -------------------------------------------------------------------------


def test_reserve_answers_201_with_the_18_keys_and_location(client):
    resp = client.create(name="reserved", properties={"a": "1"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    image = resp.json()["image"]
    assert set(image) == KEYS
    assert resp.headers["Location"] == f"{client.url}/v1/images/{image['id']}"
    assert "ETag" not in resp.headers
    assert image["status"] == "queued"
    assert image["size"] == 0
    assert image["checksum"] is None
    assert image["owner"] is None
    assert image["is_public"] is False
    assert image["protected"] is False
    assert image["deleted"] is False
    assert image["deleted_at"] is None
    assert image["virtual_size"] is None
    assert image["min_disk"] == image["min_ram"] == 0
    assert image["properties"] == {"a": "1"}
    assert TIMESTAMP.match(image["created_at"]) and TIMESTAMP.match(image["updated_at"])
    assert uuid.UUID(image["id"])
    assert client.no_file_for(image["id"])


def test_reserve_with_size_zero_is_active(client):
    image = client.reserve(name="zero", size=0)
    assert image["status"] == "active"
    assert image["size"] == 0
    assert client.status(image["id"]) == "active"


def test_a_client_status_is_ignored(client):
    image = client.reserve(status="active")
    assert image["status"] == "queued"
    zero = client.reserve(status="killed", size=0)
    assert zero["status"] == "active"


def test_timestamp_and_deleted_headers_are_honoured_on_post(client):
    image = client.reserve(updated_at="2016-05-10T21:35:15", deleted="true")
    assert image["updated_at"] == "2016-05-10T21:35:15.000000"
    assert image["deleted"] is True


def test_a_declared_non_zero_size_without_data_stays_queued(client):
    image = client.reserve(size=1234)
    assert image["status"] == "queued"
    assert image["size"] == 1234


def test_a_supplied_id_is_used_and_a_duplicate_is_409(client):
    image_id = str(uuid.uuid4())
    assert client.reserve(id=image_id)["id"] == image_id
    resp = client.create(id=image_id)
    assert resp.status_code == 409
    assert f"An image with identifier {image_id} already exists" in resp.text


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "12345", "x" * 36])
def test_an_invalid_id_is_400(client, bad_id):
    resp = client.create(id=bad_id)
    assert resp.status_code == 400, resp.text
    assert "Failed to reserve image. Got error:" in resp.text
    assert "Invalid image id format" in resp.text


def test_an_admin_may_set_the_owner_and_publicize(client):
    image = client.reserve(owner="tenant-x", is_public="true")
    assert image["owner"] == "tenant-x"
    assert image["is_public"] is True


# --- upload --------------------------------------------------------------------------


def test_upload_with_content_length_activates_the_image(client):
    data = b"0123456789" * 1000
    resp = client.create(data, name="up", disk_format="qcow2", container_format="bare")
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert set(image) == KEYS
    md5 = hashlib.md5(data).hexdigest()
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == md5
    assert resp.headers["ETag"] == md5
    assert resp.headers["Location"] == f"{client.url}/v1/images/{image['id']}"
    assert client.image_file(image["id"]).read_bytes() == data
    assert not [n for n in client.files() if n.endswith(".tmp")]


def test_chunked_upload_activates_the_image(client):
    pieces = [b"a" * 70000, b"b" * 5, b"", b"c" * 123456]

    resp = client.create(iter(pieces), disk_format="raw", container_format="bare")
    assert resp.status_code == 201, resp.text
    data = b"".join(pieces)
    image = resp.json()["image"]
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert client.get(f"/images/{image['id']}").content == data


def test_matching_declared_size_and_checksum_are_accepted(client):
    data = b"verified data"
    image = client.upload(data, size=len(data), checksum=hashlib.md5(data).hexdigest())
    assert image["status"] == "active"
    assert image["size"] == len(data)


def test_a_size_mismatch_kills_the_image_and_leaves_no_file(client):
    image_id = str(uuid.uuid4())
    resp = client.create(
        iter([b"hello"]), id=image_id, size=10, disk_format="raw", container_format="bare"
    )
    assert resp.status_code == 400, resp.text
    assert (
        "Supplied size (10) and size generated from uploaded image (5) did not match. "
        "Setting image status to 'killed'." in resp.text
    )
    meta = client.meta(image_id)
    assert meta["x-image-meta-status"] == "killed"
    assert meta["x-image-meta-size"] == "10"
    assert "x-image-meta-checksum" not in meta
    assert client.no_file_for(image_id)


def test_a_size_mismatch_with_content_length_kills_the_image(client):
    image_id = str(uuid.uuid4())
    resp = client.create(
        b"x" * 20, id=image_id, size=21, disk_format="raw", container_format="bare"
    )
    assert resp.status_code == 400, resp.text
    assert "Supplied size (21) and size generated from uploaded image (20)" in resp.text
    assert client.status(image_id) == "killed"
    assert client.no_file_for(image_id)


def test_a_checksum_mismatch_kills_the_image_and_leaves_no_file(client):
    image_id = str(uuid.uuid4())
    data = b"checksummed"
    resp = client.create(
        data, id=image_id, checksum="0" * 32, disk_format="raw", container_format="bare"
    )
    assert resp.status_code == 400, resp.text
    assert (
        f"Supplied checksum ({'0' * 32}) and checksum generated from uploaded image "
        f"({hashlib.md5(data).hexdigest()}) did not match. Setting image status to 'killed'."
        in resp.text
    )
    meta = client.meta(image_id)
    assert meta["x-image-meta-status"] == "killed"
    assert meta["x-image-meta-checksum"] == "0" * 32
    assert meta["x-image-meta-size"] == "0"
    assert client.no_file_for(image_id)
    # killed images are hidden from the default listing
    listed = client.get("/images", params={"is_public": "none"}).json()["images"]
    assert image_id not in [i["id"] for i in listed]


def test_size_is_checked_before_checksum(client):
    resp = client.create(
        b"abc", size=4, checksum="1" * 32, disk_format="raw", container_format="bare"
    )
    assert resp.status_code == 400
    assert "Supplied size (4)" in resp.text


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"container_format": "bare"}, "Disk format is not specified."),
        ({"disk_format": "raw"}, "Container format is not specified."),
        ({}, "Disk format is not specified."),
    ],
)
def test_upload_without_formats_is_400(client, fields, text):
    resp = client.create(b"data", **fields)
    assert resp.status_code == 400, resp.text
    assert text in resp.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_upload_without_octet_stream_kills_the_image(client, content_type):
    image_id = str(uuid.uuid4())
    resp = client.create(
        b"some bytes",
        id=image_id,
        disk_format="raw",
        container_format="bare",
        headers={"Content-Type": content_type},
    )
    assert resp.status_code == 400, resp.text
    assert "Content-Type must be application/octet-stream" in resp.text
    assert client.status(image_id) == "killed"
    assert client.no_file_for(image_id)


def test_an_unknown_store_is_400_and_nothing_is_created(client):
    image_id = str(uuid.uuid4())
    resp = client.create(
        b"data", id=image_id, store="swift", disk_format="raw", container_format="bare"
    )
    assert resp.status_code == 400
    assert "Required store swift is invalid" in resp.text
    assert client.head(f"/images/{image_id}").status_code == 404
    assert client.create(id=str(uuid.uuid4()), store="nosuch").status_code == 400


def test_the_file_store_may_be_named(client):
    image = client.upload(b"in file", store="file")
    assert image["status"] == "active"
    assert client.image_file(image["id"]).read_bytes() == b"in file"


@pytest.mark.parametrize("header", ["x-image-meta-location", "x-glance-api-copy-from"])
@pytest.mark.parametrize(
    "uri",
    ["file:///etc/passwd", "filesystem:///etc/passwd", "ftp://example.com/x", "swift://a/b"],
)
def test_external_sources_of_no_allowed_scheme_are_400(client, header, uri):
    resp = client.create(headers={header: uri}, disk_format="raw", container_format="bare")
    assert resp.status_code == 400, resp.text
    # a scheme no store knows is shown alone: what such a URI holds is not known
    shown = uri if uri.startswith("file") else uri.split("://")[0] + "://"
    assert f"External sources are not supported: '{shown}" in resp.text


@pytest.mark.parametrize("header", ["x-image-meta-location", "x-glance-api-copy-from"])
def test_an_empty_external_source_is_400(client, header):
    resp = client.create(headers={header: ""})
    assert resp.status_code == 400, resp.text
    assert "External source should not be empty" in resp.text


def test_an_external_source_with_a_body_is_400(client):
    resp = client.create(
        b"data",
        disk_format="raw",
        container_format="bare",
        headers={"x-image-meta-location": "http://example.com/x"},
    )
    assert resp.status_code == 400


def test_an_undeclared_transfer_encoding_body_is_an_upload(client):
    """A body is present with `Transfer-Encoding: chunked` even without Content-Length."""
    resp = client.create(iter([b"one", b"two"]), headers={"x-image-meta-name": "no formats"})
    assert resp.status_code == 400
    assert "Disk format is not specified." in resp.text


def test_a_registry_refusal_on_create_is_400_failed_to_reserve(client):
    for headers in ({"x-image-meta-owner": "o" * 300}, {f"x-image-meta-property-{'p' * 300}": "v"}):
        resp = client.create(headers=headers)
        assert resp.status_code == 400, resp.text
        assert "Failed to reserve image. Got error:" in resp.text


def test_a_registry_refusal_on_update_is_400_failed_to_update(client):
    image = client.reserve()
    for headers in ({"x-image-meta-owner": "o" * 300}, {f"x-image-meta-property-{'p' * 300}": "v"}):
        resp = client.update(image["id"], headers=headers)
        assert resp.status_code == 400, resp.text
        assert "Failed to update image metadata. Got error:" in resp.text
