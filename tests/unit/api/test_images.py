"""The images controller and its repository layers, in-process."""

import hashlib
import json

from glance_lite.api import policy
from glance_lite.api.protections import PropertyProtections


def test_upload_stores_the_bytes_and_activates_the_image(api):
    resp = api.upload(b"x" * 10000)
    assert resp.status_int == 201
    image = resp.json["image"]
    assert image["status"] == "active"
    assert image["size"] == 10000
    assert image["checksum"] == hashlib.md5(b"x" * 10000).hexdigest()
    assert resp.headers["Location"].endswith(f"/images/{image['id']}")
    assert resp.headers["ETag"] == image["checksum"]
    assert "location" not in image

    got = api.call("GET", f"/images/{image['id']}")
    assert got.body == b"x" * 10000
    assert got.headers["x-image-meta-checksum"] == image["checksum"]
    assert got.content_type == "application/octet-stream"


def test_reserve_then_upload_with_put(api):
    reserved = api.call("POST", "/images", headers={"x-image-meta-name": "r"}).json["image"]
    assert reserved["status"] == "queued"
    resp = api.call(
        "PUT",
        f"/images/{reserved['id']}",
        headers={
            "Content-Type": "application/octet-stream",
            "x-image-meta-disk_format": "qcow2",
            "x-image-meta-container_format": "bare",
        },
        body=b"data",
    )
    assert resp.status_int == 200
    assert resp.json["image"]["status"] == "active"
    assert resp.json["image"]["size"] == 4


def test_a_checksum_mismatch_kills_the_image_and_stores_nothing(api):
    resp = api.upload(b"abc", headers={"x-image-meta-checksum": "0" * 32})
    assert resp.status_int == 400
    assert "Supplied checksum (00000000000000000000000000000000)" in resp.text
    listing = api.call("GET", "/images/detail?changes-since=2000-01-01T00:00:00")
    (killed,) = listing.json["images"]
    assert killed["status"] == "killed"
    assert api.store._used() == 0


def test_a_size_mismatch_is_reported_before_the_checksum(api):
    resp = api.upload(b"abc", headers={"x-image-meta-size": "10"})
    assert resp.status_int == 400
    assert "Supplied size (10) and size generated from uploaded image (3)" in resp.text


def test_a_body_past_the_size_cap_is_413_and_the_image_killed(make_api):
    api = make_api(size_cap=100)
    resp = api.call(
        "POST",
        "/images",
        headers={
            "Content-Type": "application/octet-stream",
            "Transfer-Encoding": "chunked",
            "x-image-meta-disk_format": "raw",
            "x-image-meta-container_format": "bare",
        },
        body=b"y" * 500,
    )
    # Request.blank sets Content-Length from the body: declared over the cap -> 400
    assert resp.status_int == 400
    assert "Denying attempt to upload image larger than 100 bytes." in resp.text


def test_storage_quota_counts_the_owners_images(make_api):
    api = make_api(storage_quota=100)
    assert api.upload(b"a" * 60).status_int == 201
    resp = api.upload(b"b" * 60)
    assert resp.status_int == 413
    assert "exceeds the quota" in resp.text
    assert api.upload(b"c" * 40).status_int == 201
    assert api.upload(b"d" * 40, tenant="bob").status_int == 201


def test_a_full_store_is_413_and_the_image_killed(make_api):
    api = make_api(store_capacity=10)
    resp = api.upload(b"z" * 20)
    assert resp.status_int == 413
    assert "Image storage media is full" in resp.text


def test_property_quota_is_413_on_create_and_update(make_api):
    api = make_api(property_quota=2)
    headers = {f"x-image-meta-property-p{i}": "v" for i in range(3)}
    resp = api.call("POST", "/images", headers=headers)
    assert resp.status_int == 413
    assert "Attempted: 3, Maximum: 2" in resp.text
    image = api.call("POST", "/images", headers={"x-image-meta-property-a": "1"}).json["image"]
    resp = api.call(
        "PUT",
        f"/images/{image['id']}",
        headers={
            "x-image-meta-property-b": "2",
            "x-image-meta-property-c": "3",
            "x-glance-registry-purge-props": "false",
        },
    )
    assert resp.status_int == 413


def test_a_tenant_may_not_publicize_but_may_share_privately(api):
    resp = api.call("POST", "/images", headers={"x-image-meta-is_public": "true"})
    assert resp.status_int == 403
    resp = api.call("POST", "/images", headers={"x-image-meta-is_public": "true"}, roles="admin")
    assert resp.status_int == 201


def test_images_of_other_tenants_are_invisible(api):
    image = api.upload().json["image"]
    assert api.call("HEAD", f"/images/{image['id']}", tenant="bob").status_int == 404
    assert api.call("GET", "/images", tenant="bob").json == {"images": []}
    (entry,) = api.call("GET", "/images").json["images"]
    assert set(entry) == {"id", "name", "size", "disk_format", "container_format", "checksum"}


def test_delete_removes_the_data(api):
    image = api.upload(b"bytes").json["image"]
    assert api.store._used() == 5
    resp = api.call("DELETE", f"/images/{image['id']}")
    assert resp.status_int == 200
    assert api.store._used() == 0
    assert api.call("GET", f"/images/{image['id']}").status_int == 404


def test_delayed_delete_keeps_the_data_and_leaves_pending_delete(make_api):
    api = make_api(delayed_delete=True)
    image = api.upload(b"bytes").json["image"]
    assert api.call("DELETE", f"/images/{image['id']}").status_int == 200
    assert api.store._used() == 5
    head = api.call("HEAD", f"/images/{image['id']}", roles="admin")
    assert head.headers["x-image-meta-status"] == "pending_delete"
    assert api.call("DELETE", f"/images/{image['id']}", roles="admin").status_int == 403


def test_protected_properties_are_hidden_and_guarded(make_api, tmp_path):
    rules = tmp_path / "protections.conf"
    rules.write_text(
        "[^secret_.*]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n"
        "[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n"
    )
    api = make_api(protections=PropertyProtections.from_file(str(rules), "roles", None))
    resp = api.call("POST", "/images", headers={"x-image-meta-property-secret_key": "1"})
    assert resp.status_int == 403
    assert "Property 'secret_key' is protected" in resp.text
    resp = api.call(
        "POST",
        "/images",
        headers={"x-image-meta-property-secret_key": "1", "x-image-meta-property-os": "l"},
        roles="admin",
    )
    image = resp.json["image"]
    assert image["properties"] == {"secret_key": "1", "os": "l"}
    shown = api.call("HEAD", f"/images/{image['id']}", tenant=image["owner"])
    assert "x-image-meta-property-os" in shown.headers
    assert "x-image-meta-property-secret_key" not in shown.headers


def test_an_upload_refused_by_its_declared_size_reads_none_of_the_body(make_api):
    # The server decides what becomes of the unread body (server/protocol.py): the app
    # must not wait for it.
    api = make_api(size_cap=10)
    req_headers = {
        "Content-Type": "application/octet-stream",
        "x-image-meta-disk_format": "raw",
        "x-image-meta-container_format": "bare",
    }
    import webob

    req = webob.Request.blank("/images", method="POST", headers=req_headers)
    req.headers.update({"X-Identity-Status": "Confirmed", "X-Tenant-Id": "t", "X-Roles": ""})
    req.body = b"q" * (3 << 20)
    resp = req.get_response(api.app)
    assert resp.status_int == 400
    assert req.environ["wsgi.input"].tell() == 0


def test_detail_listing_has_no_locations_and_hides_protected_properties(make_api, tmp_path):
    rules = tmp_path / "protections.conf"
    rules.write_text(
        "[^secret_.*]\ncreate = @\nread = admin\nupdate = admin\ndelete = admin\n"
        "[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n"
    )
    api = make_api(protections=PropertyProtections.from_file(str(rules), "roles", None))
    api.upload(headers={"x-image-meta-property-secret_x": "1", "x-image-meta-property-os": "l"})
    (image,) = api.call("GET", "/images/detail").json["images"]
    assert "location" not in image and "location_data" not in image
    assert image["properties"] == {"os": "l"}
    (brief,) = api.call("GET", "/images").json["images"]
    assert set(brief) == {"id", "name", "size", "disk_format", "container_format", "checksum"}


def test_a_denied_upload_image_rule_refuses_uploads_and_leaves_reservations_alone(
    make_api, tmp_path
):
    rules = dict(policy.DEFAULT_RULES, upload_image="!")
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(rules))
    api = make_api(policy_file=str(path))
    assert api.upload(b"data").status_int == 403
    reserved = api.call("POST", "/images", headers={"x-image-meta-name": "r"})
    assert reserved.status_int == 201
    image_id = reserved.json["image"]["id"]
    put = api.call(
        "PUT",
        f"/images/{image_id}",
        headers={"Content-Type": "application/octet-stream"},
        body=b"data",
    )
    assert put.status_int == 403
    assert api.call("HEAD", f"/images/{image_id}").headers["x-image-meta-status"] == "queued"
