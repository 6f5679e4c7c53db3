"""The registry's URL table: which method on which path reaches which action."""

import pytest

MISSING = "0b7e2a2c-6c5f-4e2b-9a0a-1f1f1f1f1f1f"


@pytest.fixture
def image_id(admin):
    return admin.create(name="routed", is_public=True)["id"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "FOO"])
def test_the_bare_root_lists_images_whatever_the_method(admin, image_id, method):
    resp = admin.request(method, "/")
    assert resp.status_int == 200
    assert resp.json == admin.get("/images").json
    assert [image["id"] for image in resp.json["images"]] == [image_id]


def test_get_images_lists_and_post_images_creates(admin):
    assert admin.get("/images").json == {"images": []}
    resp = admin.post("/images", {"image": {"name": "x", "is_public": True}})
    assert resp.status_int == 200
    assert admin.get("/images").json["images"][0]["id"] == resp.json["image"]["id"]


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "HEAD", "PUT"])
def test_other_known_methods_on_images_are_404_not_405(admin, method):
    resp = admin.request(method, "/images")
    assert resp.status_int == 404
    assert "Allow" not in resp.headers


def test_unknown_methods_on_images_are_501(admin):
    resp = admin.request("FOO", "/images")
    assert resp.status_int == 501
    assert "The request method FOO is not implemented for this server." in resp.text


def test_unknown_paths_are_404_and_unknown_methods_there_501(admin):
    assert admin.get("/nothere").status_int == 404
    assert admin.request("PATCH", "/nothere").status_int == 404
    assert admin.request("FOO", "/nothere").status_int == 501


@pytest.mark.parametrize("path", ["/images/", "/images.json", "/shared-images", "/v1/images"])
def test_near_miss_paths_are_404(admin, path):
    assert admin.get(path).status_int == 404


def test_get_images_detail_is_the_detailed_listing(admin, image_id):
    images = admin.get("/images/detail").json["images"]
    assert [i["id"] for i in images] == [image_id]
    assert "properties" in images[0]


def test_head_on_an_image_is_404_even_when_it_exists(admin, image_id):
    assert admin.get(f"/images/{image_id}").status_int == 200
    assert admin.request("HEAD", f"/images/{image_id}").status_int == 404


def test_head_on_images_detail_is_404(admin):
    assert admin.request("HEAD", "/images/detail").status_int == 404


def test_put_on_images_detail_is_an_update_of_a_missing_image_so_404(admin):
    resp = admin.put("/images/detail", {"image": {"name": "x"}})
    assert resp.status_int == 404


def test_delete_on_images_detail_is_404(admin):
    assert admin.delete("/images/detail").status_int == 404


def test_an_id_with_an_extension_is_just_an_unknown_id(admin):
    assert admin.get("/images/detail.json").status_int == 404


def test_get_and_put_on_members_reach_the_member_list(admin, image_id):
    assert admin.get(f"/images/{image_id}/members").json == {"members": []}
    resp = admin.put(f"/images/{image_id}/members", {"memberships": [{"member_id": "t1"}]})
    assert resp.status_int == 204


def test_post_on_members_is_405_allowing_put_and_delete(admin, image_id):
    resp = admin.post(f"/images/{image_id}/members", {"memberships": []})
    assert resp.status_int == 405
    assert resp.headers["Allow"] == "PUT, DELETE"


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_other_known_methods_on_members_are_404(admin, image_id, method):
    assert admin.request(method, f"/images/{image_id}/members").status_int == 404


def test_unknown_methods_on_members_are_501(admin, image_id):
    assert admin.request("FOO", f"/images/{image_id}/members").status_int == 501


def test_put_and_delete_on_one_member_add_and_remove_it(admin, image_id):
    assert admin.put(f"/images/{image_id}/members/t1").status_int == 204
    assert admin.delete(f"/images/{image_id}/members/t1").status_int == 204


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PATCH"])
def test_other_methods_on_one_member_are_405_allowing_put_and_delete(admin, image_id, method):
    resp = admin.request(method, f"/images/{image_id}/members/t1")
    assert resp.status_int == 405
    assert resp.headers["Allow"] == "PUT, DELETE"


def test_unknown_methods_on_one_member_are_501(admin, image_id):
    assert admin.request("FOO", f"/images/{image_id}/members/t1").status_int == 501


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "FOO"])
def test_shared_images_answers_any_method_with_the_listing(admin, image_id, method):
    admin.put(f"/images/{image_id}/members/t1")
    resp = admin.request(method, "/shared-images/t1")
    assert resp.status_int == 200
    assert resp.json == {"shared_images": [{"image_id": image_id, "can_share": False}]}


def test_an_undecodable_query_string_is_a_400(admin):
    resp = admin.get("/images?name=%ff")
    assert resp.status_int == 400
    assert "Error decoding your request" in resp.text


def test_json_responses_use_python_default_separators(admin):
    resp = admin.get("/images")
    assert resp.body == b'{"images": []}'
    assert resp.content_type == "application/json"


def test_every_response_carries_a_request_id(admin):
    assert admin.get(f"/images/{MISSING}").headers["x-openstack-request-id"].startswith("req-")
