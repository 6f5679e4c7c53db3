"""metadata_encryption_key through the real servers: locations are stored encrypted in
Glance's format, a database Glance encrypted is served, and a wrong key says so."""

import hashlib
import sqlite3
import uuid

import pytest
import requests

from tests.functional.conftest import ApiClient
from tests.functional.servers import ServerProcess, api_conf
from tests.functional.test_api_startup import start_api
from tests.unit.test_crypt import glance_decrypt, glance_encrypt

pytestmark = pytest.mark.functional

KEY = "k3y-of-32-bytes-for-aes-256-cbc!"


@pytest.fixture(scope="module")
def sealed(deploy) -> ApiClient:
    return deploy("sealed", metadata_encryption_key=KEY)


def stored_locations(api: ApiClient, image_id: str) -> list[str]:
    path = api.deployment.workdir / "registry" / "glance.sqlite"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT value FROM image_locations WHERE image_id = ?", (image_id,))
        return [value for (value,) in rows]


def test_an_upload_stores_its_location_encrypted_and_serves_its_data(sealed):
    image = sealed.upload(b"sealed bytes")
    [stored] = stored_locations(sealed, image["id"])
    assert "file:" not in stored and image["id"] not in stored
    assert glance_decrypt(KEY, stored) == f"file://{sealed.image_file(image['id'])}"
    assert sealed.get(f"/images/{image['id']}").content == b"sealed bytes"
    assert sealed.status(image["id"]) == "active"
    assert sealed.delete(f"/images/{image['id']}").status_code == 200
    assert sealed.no_file_for(image["id"])  # the api found the file through the key


def test_a_location_glance_encrypted_is_served(sealed):
    image_id = str(uuid.uuid4())
    data = b"written by Glance"
    path = sealed.datadir / image_id
    path.write_bytes(data)
    registry = sealed.deployment.registry.url
    body = {
        "image": {
            "id": image_id,
            "name": "adopted",
            "status": "active",
            "is_public": True,
            "disk_format": "raw",
            "container_format": "bare",
            "size": len(data),
            "checksum": hashlib.md5(data).hexdigest(),
            "location": glance_encrypt(KEY, f"file://{path}"),
        }
    }
    resp = requests.post(f"{registry}/images", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    got = sealed.get(f"/images/{image_id}")
    assert (got.status_code, got.content) == (200, data)


def test_a_wrong_key_is_a_clear_error_and_loses_nothing(sealed, tmp_path):
    image = sealed.upload(b"keep me")
    conf = api_conf(
        tmp_path,
        sealed.deployment.registry.port,
        store_datadir=sealed.datadir,
        metadata_encryption_key="another-16-bytes",
    )
    wrong = ServerProcess("glance-api", conf, tmp_path).start()
    try:
        resp = requests.get(f"{wrong.url}/v1/images/{image['id']}", timeout=10)
        assert resp.status_code == 500
        assert "could not be decrypted" in resp.text
        assert "metadata_encryption_key" in resp.text
        assert "Traceback" not in resp.text
        assert (
            requests.delete(f"{wrong.url}/v1/images/{image['id']}", timeout=10).status_code == 500
        )
    finally:
        wrong.stop()
    assert sealed.image_file(image["id"]).read_bytes() == b"keep me"
    assert sealed.get(f"/images/{image['id']}").content == b"keep me"


@pytest.mark.parametrize("key", ["too-short", "k" * 20])
def test_a_key_of_the_wrong_length_stops_start_up(tmp_path, key):
    result = start_api(api_conf(tmp_path, registry_port=9, metadata_encryption_key=key))
    assert result.returncode == 1
    assert "metadata_encryption_key must be 16, 24 or 32 bytes long" in result.stderr
    assert "Traceback" not in result.stderr
