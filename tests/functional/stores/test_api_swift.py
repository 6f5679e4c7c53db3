"""glance-api and glance-scrubber with `default_store = swift`, against a real Swift:
the real processes, over HTTP, with the objects checked in Swift itself."""

import hashlib
import subprocess
import uuid

import pytest
import requests
import swiftclient

from tests.functional.servers import script, wait_for, write_conf
from tests.functional.stores.conftest import object_names, remove_container
from tests.unit.store.test_contract import pattern

pytestmark = pytest.mark.functional

MB = 1000 * 1024  # Glance's MB, as the large-object options count
LARGE = int(2.5 * MB)  # three segments of 1 MB


def swift_options(account, container: str, **overrides) -> dict:
    return {
        "stores": "file, swift",
        "default_store": "swift",
        "swift_store_auth_address": account.auth_address,
        "swift_store_user": account.user,
        "swift_store_key": account.key,
        "swift_store_auth_version": "1",
        "swift_store_container": container,
        "swift_store_create_container_on_put": "true",
        "swift_store_large_object_size": 2,
        "swift_store_large_object_chunk_size": 1,
        **overrides,
    }


@pytest.fixture(scope="module")
def module_container(swift_account):
    name = f"gl-api-{uuid.uuid4().hex[:12]}"
    yield name
    conn = swiftclient.Connection(swift_account.auth_address, swift_account.user, swift_account.key)
    remove_container(conn, name)
    conn.close()


def swift_deployment(deploy, account, container: str, delayed_delete: str):
    return deploy(
        f"swift-delayed-{delayed_delete}",
        delayed_delete=delayed_delete,
        store_options=swift_options(account, container),
    )


@pytest.fixture(scope="module")
def api(deploy, swift_account, module_container):
    return swift_deployment(deploy, swift_account, module_container, "false")


@pytest.fixture(scope="module")
def delayed(deploy, swift_account, module_container):
    return swift_deployment(deploy, swift_account, module_container, "true")


def test_a_large_image_goes_to_swift_in_segments_and_comes_back(api, swift, module_container):
    data = pattern(LARGE, seed=3)
    image = api.upload(data, name="swift-large")
    image_id = image["id"]
    assert (image["size"], image["checksum"]) == (LARGE, hashlib.md5(data).hexdigest())
    assert [n for n in object_names(swift, module_container) if n.startswith(image_id)] == [
        image_id,
        f"{image_id}-00001",
        f"{image_id}-00002",
        f"{image_id}-00003",
    ]
    meta = api.meta(image_id)
    assert (meta["x-image-meta-status"], meta["x-image-meta-size"]) == ("active", str(LARGE))
    resp = api.get(f"/images/{image_id}", stream=True)
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == LARGE
    assert resp.raw.read() == data
    assert api.delete(f"/images/{image_id}").status_code == 200
    assert not [n for n in object_names(swift, module_container) if n.startswith(image_id)]
    assert api.get(f"/images/{image_id}").status_code == 404


def test_a_chunked_upload_of_a_small_image_is_a_manifest_and_one_segment(
    api, swift, module_container
):
    data = b"chunked image data" * 1000
    resp = api.create(
        iter([data[:5000], data[5000:]]),
        name="swift-chunked",
        disk_format="raw",
        container_format="bare",
    )
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["image"]["id"]
    names = [n for n in object_names(swift, module_container) if n.startswith(image_id)]
    assert names == [image_id, f"{image_id}-00001"]  # unknown size: segmented, as Glance
    assert api.get(f"/images/{image_id}").content == data
    assert api.delete(f"/images/{image_id}").status_code == 200
    assert not [n for n in object_names(swift, module_container) if n.startswith(image_id)]


def scrubber_conf(api, account, container: str, tmp_path) -> str:
    registry = api.deployment.registry
    return str(
        write_conf(
            tmp_path / "glance-scrubber.conf",
            {
                "DEFAULT": {
                    "registry_host": "127.0.0.1",
                    "registry_port": registry.port,
                    "scrub_time": 0,
                },
                "glance_store": swift_options(account, container),
            },
        )
    )


def test_a_delayed_delete_keeps_the_objects_until_the_scrubber_removes_them(
    delayed, swift, swift_account, module_container, tmp_path
):
    image_id = delayed.upload(pattern(LARGE, seed=5), name="swift-delayed")["id"]
    assert delayed.delete(f"/images/{image_id}").status_code == 200
    registry = f"{delayed.deployment.registry.url}/images/{image_id}"
    assert requests.get(registry, timeout=10).json()["image"]["status"] == "pending_delete"
    mine = [n for n in object_names(swift, module_container) if n.startswith(image_id)]
    assert len(mine) == 4  # kept for the scrubber
    done = subprocess.run(
        [
            script("glance-scrubber"),
            "--config-file",
            scrubber_conf(delayed, swift_account, module_container, tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert not [n for n in object_names(swift, module_container) if n.startswith(image_id)]
    assert requests.get(registry, timeout=10).json()["image"]["status"] == "deleted"


def test_wrong_credentials_are_a_503_at_upload_and_a_warning_at_start(
    deploy, swift_account, container
):
    api = deploy(
        "swift-wrong-key",
        store_options=swift_options(swift_account, container, swift_store_key="wrong-key"),
    )
    # once the upload-lease sweeper has started beside the app (its first sweep): the
    # warning once, from the stores the app and the sweeper share
    registry_log = api.deployment.registry.log_file
    wait_for(lambda: "/leases/sweep" in registry_log.read_text(errors="replace"))
    log = api.deployment.api.log_file.read_text(errors="replace")
    assert log.count("Swift refused the credentials of") == 1, log
    resp = api.create(b"data", name="swift-refused", disk_format="raw", container_format="bare")
    assert resp.status_code == 503
    assert f"Swift refused the credentials of {swift_account.auth_address}" in resp.text
    assert "wrong-key" not in resp.text and "wrong-key" not in api.api_log()
    since = {"name": "swift-refused", "is_public": "none", "changes-since": "2000-01-01T00:00:00"}
    images = api.get("/images/detail", params=since).json()["images"]
    assert [i["status"] for i in images] == ["killed"]  # never an image that looks usable


def test_a_client_gone_midway_leaves_no_segment_and_a_killed_image(api, swift, module_container):
    sock = api.connect()
    sock.sendall(
        b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"x-image-meta-name: swift-cut\r\nx-image-meta-disk-format: raw\r\n"
        b"x-image-meta-container-format: bare\r\nContent-Length: 5000000\r\n\r\n" + pattern(LARGE)
    )
    # two whole segments are in Swift before the client goes
    wait_for(lambda: len([n for n in object_names(swift, module_container) if "-0000" in n]) >= 2)
    sock.close()
    since = {"name": "swift-cut", "is_public": "none", "changes-since": "2000-01-01T00:00:00"}
    killed = wait_for(
        lambda: [
            i
            for i in api.get("/images/detail", params=since).json()["images"]
            if i["status"] == "killed"
        ]
    )
    image_id = killed[0]["id"]
    assert not [n for n in object_names(swift, module_container) if n.startswith(image_id)]


def test_a_client_names_swift_locations_on_the_configured_account_only(api, swift_account):
    image = api.upload(b"registered again by location", name="swift-source")
    held = requests.get(f"{api.deployment.registry.url}/images/{image['id']}", timeout=10).json()[
        "image"
    ]["location"]
    formats = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}
    again = api.post("/images", headers={"x-image-meta-location": held, **formats})
    assert again.status_code == 201, again.text
    assert again.json()["image"]["size"] == len(b"registered again by location")
    # the same location, but the auth address a client picked: never connected to
    elsewhere = held.replace(
        swift_account.auth_address.split("://")[1].split("/")[0], "10.1.2.3:80"
    )
    refused = api.post("/images", headers={"x-image-meta-location": elsewhere, **formats})
    assert refused.status_code == 400
    assert "is not on an endpoint of this deployment's swift+http store" in refused.text
    assert swift_account.key not in refused.text
