"""GET, POST, PUT and DELETE of one image record: shapes, statuses and error texts."""

import re

import pytest

from glance_lite import image_meta as im

UNKNOWN = "0b7e2a2c-6c5f-4e2b-9a0a-1f1f1f1f1f1f"
FULL_KEYS = {*im.CORE_FIELDS, "properties", "location", "location_data"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


def error(resp, status: int = 400) -> str:
    assert resp.status_int == status, resp.text
    return resp.text


# --- show ------------------------------------------------------------------------


def test_show_returns_the_full_image_dict(admin):
    image_id = admin.create(name="shown", size=3, properties={"k": "v"})["id"]
    resp = admin.get(f"/images/{image_id}")
    assert resp.status_int == 200
    image = resp.json["image"]
    assert set(image) == FULL_KEYS
    assert image["id"] == image_id
    assert image["name"] == "shown"
    assert image["properties"] == {"k": "v"}
    assert TIMESTAMP.match(image["created_at"])
    assert TIMESTAMP.match(image["updated_at"])
    assert image["deleted_at"] is None
    assert image["deleted"] is False


@pytest.mark.parametrize("image_id", [UNKNOWN, "x" * 37, "nope"])
def test_show_of_a_missing_image_returns_404(admin, image_id):
    assert admin.get(f"/images/{image_id}").status_int == 404


def test_show_of_an_image_the_caller_cannot_see_returns_404_not_403(registry):
    image_id = registry.tenant("alice").create(name="private")["id"]
    assert registry.tenant("bob").get(f"/images/{image_id}").status_int == 404


def test_show_of_a_deleted_image_is_200_for_admins_and_404_for_others(registry):
    alice = registry.tenant("alice")
    image_id = alice.create(name="gone", status="queued")["id"]
    alice.delete(f"/images/{image_id}")
    assert alice.get(f"/images/{image_id}").status_int == 404
    image = registry.admin.get(f"/images/{image_id}").json["image"]
    assert image["deleted"] is True
    assert image["status"] == "queued"
    assert TIMESTAMP.match(image["deleted_at"])


# --- create ----------------------------------------------------------------------


def test_create_answers_200_with_the_full_dict_and_glance_defaults(registry):
    resp = registry.tenant("alice").post("/images", {"image": {"name": "new"}})
    assert resp.status_int == 200
    image = resp.json["image"]
    assert set(image) == FULL_KEYS
    assert image["status"] == "active"
    assert image["owner"] == "alice"
    assert image["is_public"] is False
    assert image["protected"] is False
    assert (image["min_disk"], image["min_ram"]) == (0, 0)
    assert image["properties"] == {}
    assert im.is_uuid_like(image["id"])


def test_create_keeps_the_values_given(admin):
    image = admin.create(
        id=UNKNOWN,
        name="n",
        status="queued",
        size=5,
        virtual_size=7,
        disk_format="raw",
        container_format="bare",
        min_disk=1,
        min_ram=2,
        is_public=True,
        checksum="c" * 32,
        protected=True,
        properties={"a": "1", "b": None},
    )
    assert image["id"] == UNKNOWN
    assert image["status"] == "queued"
    assert (image["size"], image["virtual_size"]) == (5, 7)
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert (image["min_disk"], image["min_ram"]) == (1, 2)
    assert image["is_public"] is True
    assert image["protected"] is True
    assert image["checksum"] == "c" * 32
    assert image["properties"] == {"a": "1", "b": None}


def test_create_by_an_admin_may_set_the_owner(registry):
    image = registry.tenant_admin("alice").create(name="x", owner="bob")
    assert image["owner"] == "bob"


def test_create_by_a_non_admin_ignores_the_owner_given(registry):
    image = registry.tenant("alice").create(name="x", owner="bob")
    assert image["owner"] == "alice"


def test_create_accepts_timestamps_given_as_strings(admin):
    image = admin.create(name="x", created_at="2016-05-10T21:35:15.000000")
    assert image["created_at"] == "2016-05-10T21:35:15.000000"


def test_create_with_an_unparseable_timestamp_is_a_400(admin):
    resp = admin.post("/images", {"image": {"created_at": "not a time"}})
    assert "Invalid time format for created_at." in error(resp)


def test_create_turns_a_location_into_one_active_location(admin):
    image = admin.create(name="x", location="file:///tmp/x")
    assert image["location"] == "file:///tmp/x"
    (location,) = image["location_data"]
    assert location["url"] == "file:///tmp/x"
    assert location["metadata"] == {}
    assert location["status"] == "active"


def test_create_merges_location_and_location_data_in_order(admin):
    image = admin.create(
        location="file:///a",
        location_data=[
            {"url": "file:///b", "metadata": {"m": 1}, "status": "active"},
            {"url": "file:///a", "metadata": {"n": 2}, "status": "active"},
        ],
    )
    assert [loc["url"] for loc in image["location_data"]] == ["file:///a", "file:///b"]
    assert image["location"] == "file:///a"


def test_create_with_an_id_that_is_not_uuid_like_is_a_400(admin):
    resp = admin.post("/images", {"image": {"id": "not-a-uuid"}})
    assert error(resp).rstrip().endswith("Invalid image id format")
    assert "Failed to add" not in resp.text


def test_create_with_a_duplicate_id_is_a_409(admin):
    admin.create(id=UNKNOWN)
    resp = admin.post("/images", {"image": {"id": UNKNOWN}})
    assert f"Image with identifier {UNKNOWN} already exists!" in error(resp, 409)


def test_create_with_an_unknown_status_is_a_400_with_glance_text(admin):
    resp = admin.post("/images", {"image": {"status": "bogus"}})
    assert (
        "Failed to add image metadata. Got error: Invalid image status 'bogus' for image."
        in error(resp)
    )


def test_create_with_a_null_status_is_a_400(admin):
    resp = admin.post("/images", {"image": {"status": None}})
    assert "Image status is required." in error(resp)


def test_create_with_4_byte_characters_in_the_name_is_a_400(admin):
    resp = admin.post("/images", {"image": {"name": "snake \U0001f40d"}})
    assert (
        "Failed to add image metadata. Got error: Name can't contain 4 byte unicode characters."
        in error(resp)
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"disk_format": "\U0001f40d"}, "Disk_Format can't contain 4 byte unicode characters."),
        ({"properties": {"\U0001f40d": "x"}}, "Property names can't contain 4 byte unicode."),
        ({"properties": {"kernel": "\U0001f40d"}}, "Kernel can't contain 4 byte unicode"),
        ({"min_disk": 2**31}, "'min_disk' value out of range, must not exceed 2147483647."),
        ({"min_disk": -(2**31) - 1}, "'min_disk' value out of range, must not be below"),
        (
            {"location_data": [{"url": "file:///a", "status": "gone"}]},
            "Invalid location status 'gone'.",
        ),
    ],
)
def test_create_with_a_value_no_backend_can_store_alike_is_a_400(admin, image, message):
    resp = admin.post("/images", {"image": image})
    assert f"Failed to add image metadata. Got error: {message}" in error(resp)


def test_create_with_min_ram_above_the_int_range_is_a_400(admin):
    resp = admin.post("/images", {"image": {"min_ram": 2**31}})
    assert "'min_ram' value out of range, must not exceed 2147483647." in error(resp)
    assert admin.create(min_ram=2**31 - 1)["min_ram"] == 2**31 - 1


@pytest.mark.parametrize(
    ("image", "field"),
    [
        ({"size": "abc"}, "size"),
        ({"size": 1.5}, "size"),
        ({"size": True}, "size"),
        ({"min_disk": "x"}, "min_disk"),
        ({"name": 5}, "name"),
        ({"is_public": "yes"}, "is_public"),
        ({"protected": 1}, "protected"),
        ({"properties": ["a"]}, "properties"),
        ({"properties": {"a": 1}}, "Property 'a'"),
        ({"location": 5}, "location"),
        ({"location_data": {"url": "x"}}, "location_data"),
        ({"location_data": [{"metadata": {}}]}, "location_data"),
        ({"created_at": 5}, "created_at"),
        ({"name": "n" * 256}, "name is too long"),
        ({"size": 2**63}, "'size' value out of range"),
    ],
)
def test_create_with_a_wrongly_typed_field_is_a_400_naming_it(admin, image, field):
    resp = admin.post("/images", {"image": image})
    assert field in error(resp)
    assert "Failed to add image metadata. Got error: " in resp.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", None),
        (b"{not json", "application/json"),
        (b'{"name": "no image key"}', "application/json"),
        (b'["image"]', "application/json"),
        (b'{"image": "x"}', "application/json"),
    ],
)
def test_create_without_an_image_object_is_a_400(admin, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = admin.request("POST", "/images", body=body, headers=headers)
    assert resp.status_int == 400


def test_create_with_malformed_json_says_so(admin):
    resp = admin.request("POST", "/images", body=b"{oops")
    assert "Malformed JSON in request body." in error(resp)


def test_create_ignores_unknown_keys(admin):
    image = admin.create(name="x", visibility="community", bogus=1)
    assert "bogus" not in image
    assert image["is_public"] is False


# --- update ----------------------------------------------------------------------


@pytest.fixture
def image_id(admin):
    return admin.create(name="orig", status="queued", properties={"a": "1", "b": "2"})["id"]


def update(caller, image_id, image=None, **body):
    return caller.put(f"/images/{image_id}", {"image": image or {}, **body})


def test_update_answers_200_with_the_full_dict(admin, image_id):
    resp = update(admin, image_id, {"name": "renamed", "size": 9})
    assert resp.status_int == 200
    image = resp.json["image"]
    assert set(image) == FULL_KEYS
    assert (image["name"], image["size"]) == ("renamed", 9)
    assert admin.get(f"/images/{image_id}").json["image"]["name"] == "renamed"


def test_update_merges_properties_by_default(admin, image_id):
    image = update(admin, image_id, {"properties": {"b": "20", "c": "3"}}).json["image"]
    assert image["properties"] == {"a": "1", "b": "20", "c": "3"}


def test_update_with_the_purge_header_replaces_the_properties(admin, image_id):
    resp = admin.put(
        f"/images/{image_id}",
        {"image": {"properties": {"c": "3"}}},
        headers={"X-Glance-Registry-Purge-Props": "true"},
    )
    assert resp.json["image"]["properties"] == {"c": "3"}


@pytest.mark.parametrize("value", ["True", "TRUE", "1", "yes", "false"])
def test_update_purges_only_for_the_exact_lowercase_true(admin, image_id, value):
    resp = admin.put(
        f"/images/{image_id}",
        {"image": {"properties": {"c": "3"}}},
        headers={"X-Glance-Registry-Purge-Props": value},
    )
    assert resp.json["image"]["properties"] == {"a": "1", "b": "2", "c": "3"}


def test_update_ignores_timestamps_and_deleted_and_bumps_updated_at(admin, image_id):
    before = admin.get(f"/images/{image_id}").json["image"]
    image = update(
        admin,
        image_id,
        {
            "created_at": "garbage",
            "updated_at": "2000-01-01T00:00:00",
            "deleted_at": "2000-01-01T00:00:00",
            "deleted": True,
        },
    ).json["image"]
    assert image["created_at"] == before["created_at"]
    assert image["updated_at"] >= before["updated_at"]
    assert image["updated_at"] != "2000-01-01T00:00:00.000000"
    assert (image["deleted"], image["deleted_at"]) == (False, None)


def test_update_by_a_non_admin_owner_ignores_the_owner_field(registry):
    alice = registry.tenant("alice")
    image_id = alice.create(name="x")["id"]
    assert update(alice, image_id, {"owner": "bob"}).json["image"]["owner"] == "alice"


def test_update_by_an_admin_can_change_the_owner(registry, image_id):
    image = update(registry.tenant_admin("x"), image_id, {"owner": "bob"}).json["image"]
    assert image["owner"] == "bob"


def test_update_with_a_matching_from_state_succeeds(admin, image_id):
    resp = update(admin, image_id, {"status": "saving"}, from_state="queued")
    assert resp.json["image"]["status"] == "saving"


def test_update_with_a_stale_from_state_is_a_409(admin, image_id):
    resp = update(admin, image_id, {"status": "active"}, from_state="saving")
    assert "Image operation conflicts" in error(resp, 409)
    assert admin.get(f"/images/{image_id}").json["image"]["status"] == "queued"


def test_update_with_an_unknown_status_is_a_400_with_glance_text(admin, image_id):
    resp = update(admin, image_id, {"status": "bogus"})
    assert (
        "Failed to update image metadata. Got error: Invalid image status 'bogus' for image."
        in error(resp)
    )


def test_update_with_a_wrongly_typed_field_is_a_400_naming_it(admin, image_id):
    resp = update(admin, image_id, {"size": "abc"})
    assert "Failed to update image metadata. Got error: size must be an integer." in error(resp)


def test_update_replaces_the_location(admin, image_id):
    update(admin, image_id, {"location": "file:///old"})
    image = update(admin, image_id, {"location": "file:///new"}).json["image"]
    assert image["location"] == "file:///new"
    assert [loc["url"] for loc in image["location_data"]] == ["file:///new"]


def test_update_may_repeat_the_id_but_not_change_it(admin, image_id):
    assert update(admin, image_id, {"id": image_id}).status_int == 200
    resp = update(admin, image_id, {"id": UNKNOWN})
    assert "The image id cannot be changed." in error(resp)


def test_update_of_a_missing_image_is_a_404(admin):
    resp = update(admin, UNKNOWN, {"name": "x"})
    assert "Image not found" in error(resp, 404)


def test_update_of_someone_elses_private_image_is_a_404(registry):
    image_id = registry.tenant("alice").create(name="x")["id"]
    resp = update(registry.tenant("bob"), image_id, {"name": "y"})
    assert "Image not found" in error(resp, 404)


def test_update_of_someone_elses_public_image_is_a_403(registry):
    image_id = registry.tenant("alice").create(name="x", is_public=True)["id"]
    resp = update(registry.tenant("bob"), image_id, {"name": "y"})
    assert "Access was denied to this resource." in error(resp, 403)


def test_update_by_a_member_of_a_shared_image_is_a_404(registry):
    alice = registry.tenant("alice")
    image_id = alice.create(name="x")["id"]
    alice.put(f"/images/{image_id}/members/bob")
    assert registry.tenant("bob").get(f"/images/{image_id}").status_int == 200
    assert update(registry.tenant("bob"), image_id, {"name": "y"}).status_int == 404


@pytest.mark.parametrize(
    "body",
    [b"", b"{bad json", b'{"from_state": "queued"}', b'{"image": []}', b"[]"],
)
def test_update_without_an_image_object_is_a_400(admin, image_id, body):
    resp = admin.request("PUT", f"/images/{image_id}", body=body)
    assert resp.status_int == 400


def test_update_with_a_non_string_from_state_is_a_400(admin, image_id):
    resp = update(admin, image_id, {}, from_state=5)
    assert "from_state must be a string or null." in error(resp)


# --- delete ----------------------------------------------------------------------


def test_delete_answers_200_with_the_deleted_dict_without_is_public(admin):
    image_id = admin.create(name="x", location="file:///x", properties={"k": "v"})["id"]
    resp = admin.delete(f"/images/{image_id}")
    assert resp.status_int == 200
    image = resp.json["image"]
    assert set(image) == FULL_KEYS - {"is_public"}
    assert image["deleted"] is True
    assert TIMESTAMP.match(image["deleted_at"])
    assert image["status"] == "active"
    assert image["properties"] == {}
    assert (image["location"], image["location_data"]) == (None, [])


def test_delete_hides_the_image_from_its_owner(registry):
    alice = registry.tenant("alice")
    image_id = alice.create(name="x")["id"]
    assert alice.delete(f"/images/{image_id}").status_int == 200
    assert alice.get(f"/images/{image_id}").status_int == 404
    assert alice.delete(f"/images/{image_id}").status_int == 404


def test_delete_of_a_missing_image_is_a_404(admin):
    assert admin.delete(f"/images/{UNKNOWN}").status_int == 404


def test_delete_of_someone_elses_private_image_is_a_404(registry):
    image_id = registry.tenant("alice").create(name="x")["id"]
    assert registry.tenant("bob").delete(f"/images/{image_id}").status_int == 404


def test_delete_of_someone_elses_public_image_is_a_403(registry):
    image_id = registry.tenant("alice").create(name="x", is_public=True)["id"]
    resp = registry.tenant("bob").delete(f"/images/{image_id}")
    assert "Access was denied to this resource." in error(resp, 403)


# --- read-only callers -----------------------------------------------------------


def test_a_read_only_caller_may_read(registry):
    image_id = registry.admin.create(name="x", is_public=True)["id"]
    assert registry.anonymous.get(f"/images/{image_id}").status_int == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/images", {"image": {}}),
        ("POST", "/images", None),
        ("PUT", "/images/{id}", {"image": {}}),
        ("DELETE", "/images/{id}", None),
    ],
)
def test_a_read_only_caller_may_not_change_images(registry, method, path, body):
    image_id = registry.admin.create(name="x", is_public=True)["id"]
    resp = registry.anonymous.request(method, path.format(id=image_id), json_body=body)
    assert "Read-only access" in error(resp, 403)
    assert registry.admin.get(f"/images/{image_id}").json["image"]["deleted"] is False
