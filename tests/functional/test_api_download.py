"""GET /v1/images/{id}: the image bytes and their headers, and what is
not downloadable."""

import hashlib
import os
import uuid

import pytest

pytestmark = pytest.mark.functional


def test_download_returns_the_bytes_with_headers(client):
    data = os.urandom(300 * 1024 + 7)
    image = client.upload(data, name="dl", properties={"os_distro": "debian"})
    resp = client.get(f"/images/{image['id']}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Length"] == str(len(data))
    assert resp.headers["ETag"] == hashlib.md5(data).hexdigest()
    assert resp.headers["x-image-meta-checksum"] == hashlib.md5(data).hexdigest()
    assert resp.headers["x-image-meta-size"] == str(len(data))
    assert resp.headers["x-image-meta-status"] == "active"
    assert resp.headers["x-image-meta-property-os_distro"] == "debian"
    assert resp.content == data


def test_a_large_download_streams_the_exact_bytes(client):
    piece = os.urandom(1 << 20)
    expected = hashlib.md5()

    def body():
        for i in range(12):
            chunk = piece[i:] + piece[:i]
            expected.update(chunk)
            yield chunk

    image = client.upload(body(), name="big")
    assert image["checksum"] == expected.hexdigest()
    assert image["size"] == 12 << 20
    got = hashlib.md5()
    count = 0
    with client.get(f"/images/{image['id']}", stream=True) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(12 << 20)
        for chunk in resp.iter_content(1 << 16):
            got.update(chunk)
            count += len(chunk)
    assert count == 12 << 20
    assert got.hexdigest() == expected.hexdigest()


def test_a_download_sent_with_sendfile_is_logged_with_its_whole_size(client):
    data = os.urandom(3 << 20)
    image = client.upload(data)
    resp = client.get(f"/images/{image['id']}")
    assert resp.content == data
    # again on the same kept-alive connection (the client's requests session)
    assert client.get(f"/images/{image['id']}").content == data
    request = f'"GET /v1/images/{image["id"]} HTTP/1.1" 200 '
    lines = [line for line in client.api_log().splitlines() if request in line]
    assert len(lines) == 2
    assert all(len(data) < int(line.rsplit(" ", 2)[1]) < len(data) + 2000 for line in lines)


def test_the_stored_file_holds_exactly_the_uploaded_bytes(client):
    data = b"exact bytes on disk\x00\xff"
    image = client.upload(data)
    assert client.image_file(image["id"]).read_bytes() == data


def test_a_size_zero_image_downloads_an_empty_body(client):
    image = client.reserve(name="empty", size=0)
    assert image["status"] == "active"
    resp = client.get(f"/images/{image['id']}")
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["Content-Length"] == "0"
    assert resp.headers["x-image-meta-status"] == "active"


def test_an_uploaded_empty_body_is_a_size_zero_image(client):
    resp = client.create(
        b"",
        disk_format="raw",
        container_format="bare",
        size=0,
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert image["status"] == "active"
    assert client.get(f"/images/{image['id']}").content == b""


def assert_not_active(client, image_id: str) -> None:
    resp = client.get(f"/images/{image_id}")
    assert resp.status_code == 404, resp.text
    assert f"Image {image_id} is not active" in resp.text


def test_a_queued_image_is_not_active(client):
    image = client.reserve(name="q", disk_format="raw", container_format="bare")
    assert_not_active(client, image["id"])


def test_a_killed_image_is_not_active(client):
    image_id = str(uuid.uuid4())
    resp = client.create(
        b"data",
        id=image_id,
        disk_format="raw",
        container_format="bare",
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status_code == 400
    assert client.status(image_id) == "killed"
    assert_not_active(client, image_id)


def test_a_deleted_image_is_not_active(client):
    image = client.upload(b"gone soon")
    assert client.delete(f"/images/{image['id']}").status_code == 200
    assert_not_active(client, image["id"])


def test_a_missing_image_is_404(client):
    image_id = str(uuid.uuid4())
    resp = client.get(f"/images/{image_id}")
    assert resp.status_code == 404
    assert f"Image with identifier {image_id} not found" in resp.text


def test_a_missing_data_file_is_404_not_500(client):
    image = client.upload(b"will vanish")
    client.image_file(image["id"]).unlink()
    resp = client.get(f"/images/{image['id']}")
    assert resp.status_code == 404, resp.text


def test_head_then_get_agree(client):
    image = client.upload(b"agree")
    meta = client.meta(image["id"])
    resp = client.get(f"/images/{image['id']}")
    got = {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("x-image-meta")}
    assert got == {k: v for k, v in meta.items() if k.startswith("x-image-meta")}
