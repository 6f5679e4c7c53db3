"""The registry's main flows on every database backend (sqlite, postgresql, mysql)."""

import pytest

from tests.unit.registry.conftest import Registry

UUID_A = "0b7e2a2c-6c5f-4e2b-9a0a-000000000001"


@pytest.fixture
def any_registry(database) -> Registry:
    return Registry(database, limit_param_default=2, api_limit_max=3)


def test_an_image_record_goes_through_create_show_update_and_delete(any_registry):
    alice = any_registry.tenant("alice")
    resp = alice.post(
        "/images",
        {
            "image": {
                "id": UUID_A,
                "name": "n\u00e9",
                "status": "queued",
                "size": 2**40,
                "created_at": "2016-05-10T21:35:15Z",
                "properties": {"distro": "debian", "empty": None},
                "location": "file:///a",
            }
        },
    )
    assert resp.status_int == 200, resp.text
    image = resp.json["image"]
    assert image["created_at"] == "2016-05-10T21:35:15.000000"
    assert (image["name"], image["size"], image["owner"]) == ("n\u00e9", 2**40, "alice")
    assert alice.get(f"/images/{UUID_A}").json["image"] == image

    resp = alice.put(
        f"/images/{UUID_A}",
        {"image": {"status": "active", "properties": {"arch": "x86"}}, "from_state": "queued"},
        headers={"X-Glance-Registry-Purge-Props": "true"},
    )
    assert resp.json["image"]["properties"] == {"arch": "x86"}
    assert alice.put(f"/images/{UUID_A}", {"image": {}, "from_state": "queued"}).status_int == 409

    deleted = alice.delete(f"/images/{UUID_A}").json["image"]
    assert (deleted["deleted"], deleted["status"], deleted["location"]) == (True, "active", None)
    assert "is_public" not in deleted
    assert alice.get(f"/images/{UUID_A}").status_int == 404


@pytest.mark.parametrize(
    ("image", "text"),
    [
        ({"name": "\U0001f40d"}, "Name can't contain 4 byte unicode characters."),
        ({"min_disk": 2**31}, "'min_disk' value out of range, must not exceed 2147483647."),
        ({"name": "n" * 256}, "name is too long"),
        ({"disk_format": "d" * 21}, "disk_format is too long"),
        ({"checksum": "c" * 33}, "checksum is too long"),
        ({"size": "abc"}, "size must be an integer."),
        ({"created_at": "0001-01-01T00:00:00"}, "Invalid time format for created_at."),
        ({"properties": {"big": "x" * 65536}}, "Property 'big' is too long: at most 65535 bytes."),
        ({"properties": {"big": "\u00e9" * 32768}}, "Property 'big' is too long"),
    ],
)
def test_values_a_column_cannot_hold_are_a_400_on_every_backend(any_registry, image, text):
    resp = any_registry.admin.post("/images", {"image": image})
    assert resp.status_int == 400, resp.text
    assert text in resp.text


def test_filters_sorting_and_paging_agree_on_every_backend(any_registry):
    admin = any_registry.admin
    ids = [
        admin.create(
            name=f"img{n}",
            size=n * 10,
            disk_format=fmt,
            is_public=True,
            created_at=f"2020-01-0{n}T00:00:00",
            properties={"parity": "odd" if n % 2 else "even"},
        )["id"]
        for n, fmt in zip(range(1, 6), ["raw", "iso", "raw", "qcow2", "raw"], strict=True)
    ]
    assert admin.ids() == [ids[4], ids[3]]
    assert admin.ids("limit=10") == ids[::-1][:3]
    assert admin.ids(f"limit=2&marker={ids[3]}") == [ids[2], ids[1]]
    assert admin.ids("sort_key=size&sort_dir=asc&limit=3") == ids[:3]
    assert admin.ids("sort_key=name&sort_dir=asc&disk_format=in:iso,qcow2") == [ids[1], ids[3]]
    assert admin.ids("size_min=20&size_max=40&sort_dir=asc&limit=3") == ids[1:4]
    assert admin.ids("property-parity=even&sort_dir=asc") == [ids[1], ids[3]]
    assert admin.ids("name=zap:img1") == []
    assert admin.get("/images?size_min=abc").status_int == 400


def test_visibility_and_memberships_agree_on_every_backend(any_registry):
    alice, bob, carol = (any_registry.tenant(t) for t in ("alice", "bob", "carol"))
    private = alice.create(name="private")["id"]
    shared = alice.create(name="shared")["id"]
    resp = alice.put(
        f"/images/{shared}/members", {"memberships": [{"member_id": "bob", "can_share": True}]}
    )
    assert resp.status_int == 204
    assert bob.put(f"/images/{shared}/members/carol").status_int == 204
    assert set(alice.ids("limit=3")) == {private, shared}
    assert bob.ids() == [shared]
    assert carol.ids() == [shared]
    assert bob.get(f"/images/{private}").status_int == 404
    assert alice.get(f"/images/{shared}/members").json["members"] == [
        {"member_id": "bob", "can_share": True},
        {"member_id": "carol", "can_share": False},
    ]
    assert carol.get("/shared-images/carol").json == {
        "shared_images": [{"image_id": shared, "can_share": False}]
    }
    assert alice.delete(f"/images/{shared}/members/carol").status_int == 204
    assert carol.ids() == []
    assert alice.delete(f"/images/{shared}/members/carol").status_int == 404


def test_nul_characters_are_refused_on_every_backend(database):
    import json

    import webob

    from glance_lite import context
    from glance_lite.registry.app import make_app

    app = context.UnauthenticatedContext(
        make_app(
            database=database,
            api_limit_max=1000,
            limit_param_default=25,
            max_json_body=1 << 20,
        ),
        owner_is_tenant=True,
    )
    for image in (
        {"name": "a\u0000b", "status": "queued"},
        {"status": "queued", "properties": {"k": "v\u0000"}},
        {"status": "queued", "properties": {"k\u0000": "v"}},
    ):
        req = webob.Request.blank(
            "/images", method="POST", body=json.dumps({"image": image}).encode()
        )
        req.content_type = "application/json"
        resp = req.get_response(app)
        assert resp.status_int == 400
        assert "NUL" in resp.text
    assert webob.Request.blank("/images?name=a%00b").get_response(app).status_int == 400


def test_the_longest_property_value_is_stored_whole_on_every_backend(any_registry):
    value = "\u00e9" * 32767 + "x"  # 65,535 bytes of UTF-8
    resp = any_registry.admin.post("/images", {"image": {"properties": {"big": value}}})
    assert resp.status_int == 200, resp.text
    image_id = resp.json["image"]["id"]
    assert any_registry.admin.get(f"/images/{image_id}").json["image"]["properties"] == {
        "big": value
    }
    too_long = {"image": {"properties": {"big": value + "y"}}}
    resp = any_registry.admin.put(f"/images/{image_id}", too_long)
    assert resp.status_int == 400 and "Property 'big' is too long" in resp.text


def test_property_names_a_backend_takes_for_one_another_are_a_400(any_registry):
    # MySQL/MariaDB compare "a" and "a " as equal; elsewhere they are two properties
    resp = any_registry.admin.post("/images", {"image": {"properties": {"a": "1", "a ": "2"}}})
    if resp.status_int == 200:
        assert resp.json["image"]["properties"] == {"a": "1", "a ": "2"}
        image_id = resp.json["image"]["id"]
    else:
        assert resp.status_int == 400, resp.text
        assert "Property names must differ by more than trailing spaces: 'a '" in resp.text
        assert any_registry.admin.get("/images/detail?is_public=none").json["images"] == []
        image_id = any_registry.admin.post("/images", {"image": {"properties": {"a": "1"}}}).json[
            "image"
        ]["id"]
    resp = any_registry.admin.put(f"/images/{image_id}", {"image": {"properties": {"b ": "3"}}})
    assert resp.status_int == 200
    resp = any_registry.admin.put(f"/images/{image_id}", {"image": {"properties": {"b": "4"}}})
    assert resp.status_int in (200, 400), resp.text
    shown = any_registry.admin.get(f"/images/{image_id}").json["image"]["properties"]
    assert shown["b "] == "3"  # a refused update left the image as it was


def test_an_update_with_a_storage_quota_is_refused_when_the_owner_would_pass_it(any_registry):
    alice = any_registry.tenant("alice")
    quota = {"owner": "alice", "limit": 100}
    for n, image_id in enumerate([UUID_A, UUID_A[:-1] + "2"]):
        image = {"id": image_id, "status": "saving", "size": 0, "name": f"i{n}"}
        assert alice.post("/images", {"image": image}).status_int == 200
    active = {"status": "active", "size": 60, "location": "file:///one"}
    body = {"image": active, "from_state": "saving", "storage_quota": quota}
    assert alice.put(f"/images/{UUID_A}", body).status_int == 200
    second = {**body, "image": {**active, "location": "file:///two"}}
    resp = alice.put(f"/images/{UUID_A[:-1]}2", second)
    assert resp.status_int == 413, resp.text
    assert "The size of the data 60 will exceed the limit. 40 bytes remaining." in resp.text
    # nothing of the refused update was written
    refused = alice.get(f"/images/{UUID_A[:-1]}2").json["image"]
    assert (refused["status"], refused["location"]) == ("saving", None)
    # without the quota, or within it, the same update goes through
    second["storage_quota"] = {"owner": "alice", "limit": 120}
    assert alice.put(f"/images/{UUID_A[:-1]}2", second).status_int == 200


@pytest.mark.parametrize(
    "quota", ["x", {"owner": 1, "limit": 5}, {"owner": "a"}, {"owner": "a", "limit": -1}]
)
def test_a_malformed_storage_quota_is_400(any_registry, quota):
    alice = any_registry.tenant("alice")
    assert alice.post("/images", {"image": {"id": UUID_A, "status": "queued"}}).status_int == 200
    resp = alice.put(f"/images/{UUID_A}", {"image": {"name": "n"}, "storage_quota": quota})
    assert resp.status_int == 400, resp.text
    assert "storage_quota must be" in resp.text


def test_an_update_held_by_another_upload_is_refused_on_every_backend(any_registry):
    alice = any_registry.tenant("alice")
    assert alice.post("/images", {"image": {"id": UUID_A, "status": "queued"}}).status_int == 200
    saving = {"image": {"status": "saving"}, "from_state": "queued"}
    lease = {"lease": {"holder": "node#new", "duration": 60}}
    assert alice.put(f"/images/{UUID_A}", {**saving, **lease}).status_int == 200
    active = {"image": {"status": "active", "size": 1}, "from_state": "saving"}
    for changes in (active, {"image": {"status": "killed"}, "from_state": "saving"}):
        resp = alice.put(f"/images/{UUID_A}", {**changes, "held_by": "node#stale"})
        assert resp.status_int == 409, resp.text
        assert alice.get(f"/images/{UUID_A}").json["image"]["status"] == "saving"
    assert alice.put(f"/images/{UUID_A}", {**active, "held_by": "node#new"}).status_int == 200
    assert alice.get(f"/images/{UUID_A}").json["image"]["status"] == "active"
