"""Image members and shared images through glance-api; the member
quota with image_member_quota = 2."""

import uuid

import pytest

pytestmark = pytest.mark.functional


@pytest.fixture
def api(client):
    return client


@pytest.fixture
def image(api):
    return api.reserve(name="shared")


def members(api, image_id: str) -> list[dict]:
    resp = api.get(f"/images/{image_id}/members")
    assert resp.status_code == 200, resp.text
    return resp.json()["members"]


def add(api, image_id: str, member: str, **kw) -> None:
    resp = api.put(f"/images/{image_id}/members/{member}", **kw)
    assert resp.status_code == 204, resp.text
    assert resp.content == b""


def test_a_new_image_has_no_members(api, image):
    resp = api.get(f"/images/{image['id']}/members")
    assert resp.status_code == 200
    assert resp.text == '{"members": []}'


def test_add_list_and_remove_one_member(api, image):
    image_id = image["id"]
    add(api, image_id, "tenant1")
    assert members(api, image_id) == [{"member_id": "tenant1", "can_share": False}]
    resp = api.delete(f"/images/{image_id}/members/tenant1")
    assert resp.status_code == 204
    assert members(api, image_id) == []
    again = api.delete(f"/images/{image_id}/members/tenant1")
    assert again.status_code == 404
    assert "Membership could not be found." in again.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"member": {"can_share": True}}, True),
        ({"member": {"can_share": "yes"}}, True),
        ({"member": {"can_share": "false"}}, True),
        ({"member": {"can_share": 1}}, True),
        ({"member": {"can_share": False}}, False),
        ({"member": {"can_share": 0}}, False),
        ({"member": {"can_share": ""}}, False),
        ({"member": {}}, False),
        ({"foo": 1}, False),
    ],
)
def test_can_share_is_python_truthiness(api, image, body, expected):
    add(api, image["id"], "t1", json=body)
    assert members(api, image["id"]) == [{"member_id": "t1", "can_share": expected}]


def test_an_existing_member_keeps_can_share_without_a_body(api, image):
    add(api, image["id"], "t1", json={"member": {"can_share": True}})
    add(api, image["id"], "t1")
    assert members(api, image["id"]) == [{"member_id": "t1", "can_share": True}]
    add(api, image["id"], "t1", json={"member": {"can_share": False}})
    assert members(api, image["id"]) == [{"member_id": "t1", "can_share": False}]


def test_bodyless_put_does_not_revive_a_deleted_membership(api, image):
    image_id = image["id"]
    add(api, image_id, "t1")
    assert api.delete(f"/images/{image_id}/members/t1").status_code == 204
    add(api, image_id, "t1")  # 204, but nothing changes (wart)
    assert members(api, image_id) == []
    add(api, image_id, "t1", json={"member": {"can_share": True}})
    assert members(api, image_id) == [{"member_id": "t1", "can_share": True}]


def test_malformed_json_is_400(api, image):
    for path in (f"/images/{image['id']}/members/t1", f"/images/{image['id']}/members"):
        resp = api.put(path, data=b"{not json", headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert "Malformed JSON in request body." in resp.text


def test_replace_all_members(api, image):
    image_id = image["id"]
    add(api, image_id, "old", json={"member": {"can_share": True}})
    body = {"memberships": [{"member_id": "new1"}, {"member_id": "new2", "can_share": True}]}
    resp = api.put(f"/images/{image_id}/members", json=body)
    assert resp.status_code == 204, resp.text
    assert members(api, image_id) == [
        {"member_id": "new1", "can_share": False},
        {"member_id": "new2", "can_share": True},
    ]
    keep = {"memberships": [{"member_id": "new2"}]}
    assert api.put(f"/images/{image_id}/members", json=keep).status_code == 204
    assert members(api, image_id) == [{"member_id": "new2", "can_share": True}]
    assert api.put(f"/images/{image_id}/members", json={"memberships": []}).status_code == 204
    assert members(api, image_id) == []


@pytest.mark.parametrize(
    "body",
    [
        {"memberships": "x"},
        {"memberships": [{"can_share": True}]},
        {"memberships": ["t1"]},
        {"nothing": []},
        [],
    ],
)
def test_malformed_memberships_are_400(api, image, body):
    resp = api.put(f"/images/{image['id']}/members", json=body)
    assert resp.status_code == 400, resp.text
    assert "Invalid membership association" in resp.text


def test_replace_all_without_a_body_is_a_4xx_not_500(api, image):
    resp = api.put(f"/images/{image['id']}/members")
    assert resp.status_code == 400, resp.text


def test_members_of_a_missing_image_are_404(api):
    image_id = str(uuid.uuid4())
    for resp in (
        api.get(f"/images/{image_id}/members"),
        api.put(f"/images/{image_id}/members/t1"),
        api.put(f"/images/{image_id}/members", json={"memberships": []}),
        api.delete(f"/images/{image_id}/members/t1"),
    ):
        assert resp.status_code == 404, resp.text


def test_shared_images_of_a_member_with_any_method(api, image):
    sharer = f"sharer-{uuid.uuid4()}"
    add(api, image["id"], sharer, json={"member": {"can_share": True}})
    other = api.reserve(name="other")
    add(api, other["id"], sharer)
    expected = [
        {"image_id": image["id"], "can_share": True},
        {"image_id": other["id"], "can_share": False},
    ]
    for method in ("GET", "POST", "DELETE", "PUT"):
        resp = api.request(method, f"/shared-images/{sharer}")
        assert resp.status_code == 200, (method, resp.text)
        listed = sorted(resp.json()["shared_images"], key=lambda s: s["can_share"], reverse=True)
        assert listed == expected
    assert api.get(f"/shared-images/{uuid.uuid4()}").text == '{"shared_images": []}'


def test_member_quota_on_add_and_on_replace(deploy):
    api = deploy("member-quota", image_member_quota=2)
    image_id = api.reserve(name="quota")["id"]
    body = {"memberships": [{"member_id": f"t{i}"} for i in range(3)]}
    resp = api.put(f"/images/{image_id}/members", json=body)
    assert resp.status_code == 413
    assert (
        "The limit has been exceeded on the number of allowed image members for this "
        "image. Attempted: 3, Maximum: 2" in resp.text
    )
    assert members(api, image_id) == []

    add(api, image_id, "t1")
    add(api, image_id, "t2")
    resp = api.put(f"/images/{image_id}/members/t3")
    assert resp.status_code == 413
    assert "Attempted: 3, Maximum: 2" in resp.text
    # counted even when the member exists already (wart)
    existing = api.put(f"/images/{image_id}/members/t1", json={"member": {"can_share": True}})
    assert existing.status_code == 413
    assert members(api, image_id) == [
        {"member_id": "t1", "can_share": False},
        {"member_id": "t2", "can_share": False},
    ]
    two = {"memberships": [{"member_id": "t3"}, {"member_id": "t4"}]}
    assert api.put(f"/images/{image_id}/members", json=two).status_code == 204
