"""Images whose data comes from elsewhere, through the real glance-api and registry with
nginx as the source: x-image-meta-location (registered where it is), x-glance-api-copy-from
(fetched in the background into the file store), and the address guard on both."""

import hashlib
import os

import glanceclient
import pytest
import requests

from tests.functional.conftest import ApiClient
from tests.functional.servers import wait_for
from tests.functional.test_api_memory import reset_peak, status_bytes
from tests.functional.webserver import WebServer

FORMATS = {"disk_format": "raw", "container_format": "bare"}


@pytest.fixture(scope="module")
def api(deploy, web: WebServer) -> ApiClient:
    """Loopback allowed (nginx is there), https verified with the test CA, locations shown."""
    return deploy(
        "sources",
        external_source_allowed_networks="127.0.0.0/8",
        show_image_direct_url="true",
        store_options={"https_ca_certificates_file": web.ca_file, "http_store_timeout": 1},
    )


@pytest.fixture(scope="module")
def guarded(deploy) -> ApiClient:
    """The default guard: loopback, link-local and private networks denied."""
    return deploy("guarded")


def location(api: ApiClient, uri: str, **fields):
    return api.create(headers={"x-image-meta-location": uri}, **{**FORMATS, **fields})


def copy_from(api: ApiClient, uri: str, **fields):
    return api.create(headers={"x-glance-api-copy-from": uri}, **{**FORMATS, **fields})


def settled(api: ApiClient, image_id: str) -> str:
    """The status a copy ends in (active or killed)."""
    return wait_for(lambda: {"active", "killed"} & {api.status(image_id)} and api.status(image_id))


def named(api: ApiClient, name: str) -> list[dict]:
    return api.get("/images/detail", params={"name": name, "is_public": "none"}).json()["images"]


# --- x-image-meta-location -------------------------------------------------------------


@pytest.mark.parametrize("secure", [False, True])
def test_an_image_registered_by_location_is_active_with_the_servers_size(api, web, served, secure):
    data = os.urandom(300_000)
    uri = (web.https_url if secure else web.url) + served(data)
    resp = location(api, uri)
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert (image["status"], image["size"], image["checksum"]) == ("active", len(data), None)
    assert image["direct_url"] == uri
    got = api.get(f"/images/{image['id']}")
    assert got.status_code == 200
    assert hashlib.md5(got.content).digest() == hashlib.md5(data).digest()
    assert got.headers["x-image-meta-direct_url"] == uri
    assert api.no_file_for(image["id"])  # nothing copied into the file store


def test_a_location_through_redirects_is_registered(api, web, served):
    resp = location(api, web.url + "redirect/redirect/" + served(b"twelve bytes"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["image"]["size"] == 12


def test_credentials_in_a_location_are_never_shown_nor_logged(api, web, served):
    uri = web.url.replace("://", "://alice:s3cr3t@") + served(b"secret data") + "?sig=t0k3n"
    resp = location(api, uri)
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["image"]["id"]
    shown = resp.json()["image"]["direct_url"]
    assert "s3cr3t" not in shown and "t0k3n" not in shown and "***@" in shown
    assert "s3cr3t" not in api.head(f"/images/{image_id}").headers["x-image-meta-direct_url"]
    assert api.get(f"/images/{image_id}").content == b"secret data"
    missing = location(api, uri.replace(".img", ".nope"))
    assert missing.status_code == 404
    assert "s3cr3t" not in missing.text and "t0k3n" not in missing.text
    assert "s3cr3t" not in api.api_log() and "t0k3n" not in api.api_log()


def test_a_declared_size_that_differs_from_the_servers_is_409_and_creates_nothing(
    api, web, served, uid
):
    resp = location(api, web.url + served(b"12345"), size=6, name=uid)
    assert resp.status_code == 409
    assert "(provided size: 6, stored size: 5)" in resp.text
    assert named(api, uid) == []


@pytest.mark.parametrize(
    "path, status, text",
    [
        ("no-such.img", 404, "Image data not found"),
        ("status/500", 502, "answered 500"),
        ("status/403", 400, "403 status code"),
        ("loop", 400, "maximum redirects"),
    ],
)
def test_a_location_the_server_does_not_serve_is_refused_and_creates_nothing(
    api, web, uid, path, status, text
):
    resp = location(api, web.url + path, name=uid)
    assert resp.status_code == status, resp.text
    assert text in resp.text
    assert named(api, uid) == []


def test_a_location_whose_server_is_down_is_503(api):
    resp = location(api, "http://127.0.0.1:1/x.img")
    assert resp.status_code == 503, resp.text
    assert "unavailable" in resp.text


def test_a_location_needs_the_formats(api, web, served):
    resp = api.create(headers={"x-image-meta-location": web.url + served(b"x")})
    assert resp.status_code == 400
    assert "Disk format is not specified." in resp.text


@pytest.mark.parametrize("uri", ["swift+config://ref1/container/obj", "file:///etc/passwd"])
def test_locations_that_would_read_the_api_nodes_own_data_are_refused(api, uri):
    resp = location(api, uri)
    assert resp.status_code == 400
    assert "External sources are not supported" in resp.text


def test_a_location_with_a_body_or_a_copy_from_is_400_and_creates_nothing(api, web, uid):
    resp = api.create(
        b"data", headers={"x-image-meta-location": web.url + "x"}, name=uid, **FORMATS
    )
    assert resp.status_code == 400
    assert "multiple image sources" in resp.text
    both = {"x-image-meta-location": web.url + "x", "x-glance-api-copy-from": web.url + "x"}
    assert api.create(headers=both, name=uid, **FORMATS).status_code == 400
    assert named(api, uid) == []


def test_a_queued_image_gets_a_location_by_update_and_only_then(api, web, served):
    image = api.reserve(**FORMATS)
    uri = web.url + served(b"later")
    resp = api.update(image["id"], headers={"x-image-meta-location": uri})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["image"]["status"], resp.json()["image"]["size"]) == ("active", 5)
    again = api.update(image["id"], headers={"x-image-meta-location": uri})
    assert again.status_code == 400
    assert "not in queued status" in again.text


def test_deleting_an_image_at_a_location_leaves_the_servers_file(api, web, served):
    name = served(b"theirs")
    image = location(api, web.url + name).json()["image"]
    assert api.delete(f"/images/{image['id']}").status_code == 200
    assert (web.root / name).read_bytes() == b"theirs"


def test_a_location_whose_data_went_away_answers_404_on_download(api, web, served):
    name = served(b"here for now")
    image = location(api, web.url + name).json()["image"]
    web.remove(name)
    assert api.get(f"/images/{image['id']}").status_code == 404


def test_locations_are_not_shown_unless_configured(guarded):
    image = guarded.upload(b"local")
    assert "direct_url" not in image
    assert "x-image-meta-direct_url" not in guarded.meta(image["id"])


# --- the address guard -----------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-image-meta-location", "x-glance-api-copy-from"])
def test_a_source_on_a_denied_address_is_refused(guarded, web, served, uid, header):
    uri = web.url + served(b"x")
    resp = guarded.create(headers={header: uri}, name=uid, **FORMATS)
    assert resp.status_code == 400, resp.text
    assert "127.0.0.1, an address external sources may not be fetched from" in resp.text
    assert named(guarded, uid) == []


@pytest.mark.parametrize("header", ["x-image-meta-location", "x-glance-api-copy-from"])
def test_a_name_resolving_to_a_denied_address_is_refused(guarded, web, served, header):
    uri = web.url.replace("127.0.0.1", "localhost") + served(b"x")
    resp = guarded.create(headers={header: uri}, **FORMATS)
    assert resp.status_code == 400, resp.text
    assert "localhost resolves to 127.0.0.1" in resp.text


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/"])
def test_a_redirect_to_a_denied_address_is_refused(api, web, target):
    resp = location(api, f"{web.url}to?url={target}")
    assert resp.status_code == 400, resp.text
    assert "external sources may not be fetched from" in resp.text


# --- x-glance-api-copy-from --------------------------------------------------------------


def test_a_copy_answers_at_once_with_the_queued_image_then_becomes_active(api, web, served):
    data = os.urandom(3 * 1024 * 1024 + 5)
    resp = copy_from(api, web.url + "redirect/" + served(data))
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert (image["status"], image["size"]) == ("queued", len(data))
    assert settled(api, image["id"]) == "active"
    meta = api.meta(image["id"])
    assert meta["x-image-meta-checksum"] == hashlib.md5(data).hexdigest()
    assert api.image_file(image["id"]).read_bytes() == data  # a copy, in the file store
    assert api.get(f"/images/{image['id']}").content == data


def test_a_queued_image_gets_its_data_by_a_copy_on_update(api, web, served):
    image = api.reserve(**FORMATS)
    resp = api.update(
        image["id"], headers={"x-glance-api-copy-from": web.https_url + served(b"abc")}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["status"] == "queued"
    assert settled(api, image["id"]) == "active"
    assert api.get(f"/images/{image['id']}").content == b"abc"


def test_a_copy_of_a_missing_source_without_a_size_is_404_and_creates_nothing(api, web, uid):
    resp = copy_from(api, web.url + "no-such.img", name=uid)
    assert resp.status_code == 404, resp.text
    assert named(api, uid) == []


@pytest.mark.parametrize(
    "path, reason",
    [
        ("no-such.img", "Image data not found"),
        ("status/500", "answered 500"),
        ("to?url=http://169.254.169.254/latest/", "may not be fetched from"),
    ],
)
def test_a_copy_that_fails_in_the_background_kills_the_image_and_logs_why(api, web, path, reason):
    resp = copy_from(api, web.url + path, size=10)  # declared: no lookup before the record
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["image"]["id"]
    assert settled(api, image_id) == "killed"
    line = wait_for(
        lambda: [ln for ln in api.api_log().splitlines() if f"image {image_id}: copy from" in ln]
    )
    assert reason in line[0]
    assert api.no_file_for(image_id)


def test_a_copy_from_a_stalled_source_times_out_and_kills_the_image(api, web, served):
    name = served(b"z" * 1000)
    image = copy_from(api, web.url + "stall/" + name, size=1000).json()["image"]
    assert settled(api, image["id"]) == "killed"
    assert "did not answer within 1 seconds" in api.api_log()
    assert api.no_file_for(image["id"])


def test_a_copy_over_the_size_cap_is_refused_before_anything_is_created(deploy, web, served):
    capped = deploy("capped", external_source_allowed_networks="127.0.0.0/8", image_size_cap=100)
    resp = copy_from(capped, web.url + served(b"x" * 101))
    assert resp.status_code == 400
    assert "larger than 100 bytes" in resp.text


# --- python-glanceclient -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`version` keyword is being deprecated")
def test_glanceclient_registers_by_location_and_by_copy_from(api, web, served):
    client = glanceclient.Client("1", endpoint=api.url, token="anything")
    data = os.urandom(70_000)
    uri = web.url + served(data)
    at = client.images.create(name="by-location", location=uri, **FORMATS)
    assert (at.status, at.size) == ("active", len(data))
    copied = client.images.create(name="by-copy", copy_from=uri, **FORMATS)
    assert copied.status == "queued"
    assert settled(api, copied.id) == "active"
    for image in (at, copied):
        assert b"".join(client.images.data(image.id)) == data


# --- copies and a stopping api -------------------------------------------------------------


def stopping_api(deploy, web: WebServer, grace: int) -> ApiClient:
    return deploy(
        "stopping",
        external_source_allowed_networks="127.0.0.0/8",
        graceful_shutdown_timeout=grace,
        store_options={"http_store_timeout": 30},
    )


def registry_status(api: ApiClient, image_id: str) -> str:
    resp = requests.get(f"{api.deployment.registry.url}/images/{image_id}", timeout=10)
    return resp.json()["image"]["status"]


def test_a_stopping_api_finishes_a_copy_within_its_grace(deploy, web, served):
    api = stopping_api(deploy, web, grace=20)
    image = copy_from(api, web.url + "trickle/" + served(b"abc"), size=3).json()["image"]
    assert api.deployment.api.stop(timeout=30) == 0
    assert registry_status(api, image["id"]) == "active"
    assert api.image_file(image["id"]).read_bytes() == b"abc"


def test_a_copy_the_grace_cannot_wait_for_is_killed_and_logged(deploy, web, served):
    api = stopping_api(deploy, web, grace=2)
    name = served(b"z" * 1000)
    image = copy_from(api, web.url + "trickle/" + name, size=1000).json()["image"]
    wait_for(lambda: registry_status(api, image["id"]) == "saving")
    assert api.deployment.api.stop(timeout=30) == 0
    assert registry_status(api, image["id"]) == "killed"
    assert "was cut short: glance-api stopped" in api.api_log()


# --- memory ----------------------------------------------------------------------------------


def test_the_api_copies_and_serves_a_large_location_in_flat_memory(api, web, served):
    """A 256 MiB source copied and downloaded by location: glance-api's peak RSS (VmHWM)
    grows by less than 16 MiB over its warmed-up idle size."""
    name = f"large-{os.getpid()}.img"
    md5 = hashlib.md5()
    with open(web.root / name, "wb") as f:
        for _ in range(256):
            piece = os.urandom(1 << 20)
            md5.update(piece)
            f.write(piece)
    (web.root / name).chmod(0o644)
    try:
        warm = copy_from(api, web.url + "redirect/" + served(b"w" * 5000)).json()
        settled(api, warm["image"]["id"])
        pid = api.api_pid
        idle = status_bytes(pid, "VmRSS")
        reset_peak(pid)
        image = copy_from(api, web.url + name).json()["image"]
        assert settled(api, image["id"]) == "active"
        at = location(api, web.url + name).json()["image"]
        got = hashlib.md5()
        with api.get(f"/images/{at['id']}", stream=True) as resp:
            for chunk in resp.iter_content(1 << 20):
                got.update(chunk)
        assert got.hexdigest() == md5.hexdigest()
        assert api.meta(image["id"])["x-image-meta-checksum"] == md5.hexdigest()
        grown = status_bytes(pid, "VmHWM") - idle
        assert grown < 16 << 20, f"grew {grown >> 10} KiB"
        assert api.delete(f"/images/{image['id']}").status_code == 200  # 256 MiB on disk
    finally:
        web.remove(name)
