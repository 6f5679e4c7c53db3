"""Image memberships: /images/{id}/members[/{member}] and /shared-images/{member}."""

import pytest

UNKNOWN = "0b7e2a2c-6c5f-4e2b-9a0a-1f1f1f1f1f1f"


def error(resp, status: int = 400) -> str:
    assert resp.status_int == status, resp.text
    return resp.text


@pytest.fixture
def alice(registry):
    return registry.tenant("alice")


@pytest.fixture
def image_id(alice):
    return alice.create(name="shared")["id"]


def members(caller, image_id) -> list[dict]:
    resp = caller.get(f"/images/{image_id}/members")
    assert resp.status_int == 200, resp.text
    return resp.json["members"]


def replace(caller, image_id, *entries):
    return caller.put(f"/images/{image_id}/members", {"memberships": list(entries)})


# --- listing ---------------------------------------------------------------------


def test_a_new_image_has_no_members(alice, image_id):
    assert members(alice, image_id) == []


def test_members_are_listed_in_insertion_order_with_can_share(alice, image_id):
    alice.put(f"/images/{image_id}/members/zed", {"member": {"can_share": True}})
    alice.put(f"/images/{image_id}/members/amy")
    assert members(alice, image_id) == [
        {"member_id": "zed", "can_share": True},
        {"member_id": "amy", "can_share": False},
    ]


def test_a_member_sees_only_its_own_membership(registry, alice, image_id):
    replace(alice, image_id, {"member_id": "bob"}, {"member_id": "carol"})
    assert members(registry.tenant("bob"), image_id) == [{"member_id": "bob", "can_share": False}]


def test_members_of_an_invisible_or_missing_image_are_404(registry, image_id):
    assert registry.tenant("bob").get(f"/images/{image_id}/members").status_int == 404
    assert registry.admin.get(f"/images/{UNKNOWN}/members").status_int == 404


# --- replace all -----------------------------------------------------------------


def test_replacing_members_adds_updates_and_removes(alice, image_id):
    replace(alice, image_id, {"member_id": "bob", "can_share": True}, {"member_id": "carol"})
    resp = replace(alice, image_id, {"member_id": "carol", "can_share": 1}, {"member_id": "dan"})
    assert resp.status_int == 204
    assert resp.body == b""
    assert members(alice, image_id) == [
        {"member_id": "carol", "can_share": True},
        {"member_id": "dan", "can_share": False},
    ]


def test_replacing_keeps_can_share_when_not_given_and_revives_removed_members(alice, image_id):
    replace(alice, image_id, {"member_id": "bob", "can_share": True})
    replace(alice, image_id, {"member_id": "bob"})
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": True}]
    replace(alice, image_id)
    assert members(alice, image_id) == []
    replace(alice, image_id, {"member_id": "bob", "can_share": False})
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": False}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"memberships": "x"}, "Invalid membership association: 'memberships'"),
        ({"members": []}, "Invalid membership association: 'memberships'"),
        ([], "Invalid membership association: 'memberships'"),
        ({"memberships": [{"can_share": True}]}, "Invalid membership association: 'member_id'"),
        ({"memberships": ["bob"]}, "Invalid membership association: 'member_id'"),
        ({"memberships": [{"member_id": 5}]}, "'member_id' must be a string"),
        ({"memberships": [{"member_id": "m" * 256}]}, "at most 255"),
        ({"memberships": [{"member_id": "bob"}, {"member_id": ""}]}, "Invalid member id: ''"),
    ],
)
def test_a_malformed_membership_list_is_a_400(alice, image_id, body, message):
    resp = alice.put(f"/images/{image_id}/members", body)
    assert message in error(resp)


def test_replacing_members_without_a_body_is_a_400(alice, image_id):
    resp = alice.request("PUT", f"/images/{image_id}/members")
    assert resp.status_int == 400


def test_replacing_members_with_malformed_json_is_a_400(alice, image_id):
    resp = alice.request("PUT", f"/images/{image_id}/members", body=b"{nope")
    assert "Malformed JSON in request body." in error(resp)


def test_replacing_members_of_someone_elses_image_is_a_404(registry, image_id):
    resp = replace(registry.tenant("bob"), image_id, {"member_id": "bob"})
    assert error(resp, 404)


def test_replacing_members_without_share_permission_is_a_403(registry, alice, image_id):
    replace(alice, image_id, {"member_id": "bob"})
    resp = replace(registry.tenant("bob"), image_id, {"member_id": "carol"})
    assert "No permission to share that image" in error(resp, 403)


def test_a_member_with_can_share_may_share_further(registry, alice, image_id):
    replace(alice, image_id, {"member_id": "bob", "can_share": True})
    bob = registry.tenant("bob")
    assert bob.put(f"/images/{image_id}/members/carol").status_int == 204
    assert [m["member_id"] for m in members(alice, image_id)] == ["bob", "carol"]


def test_the_share_check_comes_before_the_body_check(registry, alice, image_id):
    replace(alice, image_id, {"member_id": "bob"})
    resp = registry.tenant("bob").put(f"/images/{image_id}/members", {"bogus": 1})
    assert resp.status_int == 403


# --- one member ------------------------------------------------------------------


def test_adding_a_member_without_a_body_gives_can_share_false(alice, image_id):
    resp = alice.put(f"/images/{image_id}/members/bob")
    assert resp.status_int == 204
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": False}]


def test_can_share_goes_by_truthiness(alice, image_id):
    alice.put(f"/images/{image_id}/members/bob", {"member": {"can_share": "maybe"}})
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": True}]
    alice.put(f"/images/{image_id}/members/bob", {"member": {"can_share": 0}})
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": False}]


def test_a_bodyless_put_leaves_an_existing_member_unchanged(alice, image_id):
    alice.put(f"/images/{image_id}/members/bob", {"member": {"can_share": True}})
    assert alice.put(f"/images/{image_id}/members/bob").status_int == 204
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": True}]


def test_a_bodyless_put_does_not_revive_a_deleted_member(alice, image_id):
    alice.put(f"/images/{image_id}/members/bob")
    alice.delete(f"/images/{image_id}/members/bob")
    assert alice.put(f"/images/{image_id}/members/bob").status_int == 204
    assert members(alice, image_id) == []
    alice.put(f"/images/{image_id}/members/bob", {"member": {"can_share": False}})
    assert members(alice, image_id) == [{"member_id": "bob", "can_share": False}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"foo": 1}, "Invalid membership association: 'member'"),
        ({"member": {}}, "Invalid membership association: 'can_share'"),
        ({"member": "x"}, "Invalid membership association: 'member'"),
    ],
)
def test_a_non_empty_body_without_member_can_share_is_a_400(alice, image_id, body, message):
    resp = alice.put(f"/images/{image_id}/members/bob", body)
    assert message in error(resp)


def test_an_empty_json_object_counts_as_no_body(alice, image_id):
    assert alice.put(f"/images/{image_id}/members/bob", {}).status_int == 204


def test_adding_a_member_to_an_invisible_image_is_a_404(registry, image_id):
    assert registry.tenant("bob").put(f"/images/{image_id}/members/bob").status_int == 404


def test_a_member_without_can_share_may_not_add_others(registry, alice, image_id):
    alice.put(f"/images/{image_id}/members/bob")
    resp = registry.tenant("bob").put(f"/images/{image_id}/members/carol")
    assert "No permission to share that image" in error(resp, 403)


def test_removing_a_member(alice, image_id):
    alice.put(f"/images/{image_id}/members/bob")
    resp = alice.delete(f"/images/{image_id}/members/bob")
    assert resp.status_int == 204
    assert members(alice, image_id) == []


def test_removing_a_member_twice_is_a_404(alice, image_id):
    alice.put(f"/images/{image_id}/members/bob")
    alice.delete(f"/images/{image_id}/members/bob")
    resp = alice.delete(f"/images/{image_id}/members/bob")
    assert "Membership could not be found." in error(resp, 404)


def test_removing_a_member_of_a_missing_image_is_a_404(admin):
    assert admin.delete(f"/images/{UNKNOWN}/members/bob").status_int == 404


# --- who may change memberships --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "/members", {"memberships": []}),
        ("PUT", "/members/bob", None),
        ("DELETE", "/members/bob", None),
    ],
)
def test_a_read_only_caller_may_not_change_members(registry, image_id, method, suffix, body):
    resp = registry.anonymous.request(method, f"/images/{image_id}{suffix}", json_body=body)
    assert "Read-only access" in error(resp, 403)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "/members", {"memberships": []}),
        ("PUT", "/members/bob", None),
        ("DELETE", "/members/bob", None),
    ],
)
def test_a_caller_without_an_owner_who_is_not_admin_gets_401(
    registry, image_id, method, suffix, body
):
    nobody = registry.tenant("alice")
    nobody.headers.pop("X-Tenant-Id")
    resp = nobody.request(method, f"/images/{image_id}{suffix}", json_body=body)
    assert "No authenticated user" in error(resp, 401)


def test_the_ownerless_default_admin_may_change_members(admin, image_id):
    assert admin.put(f"/images/{image_id}/members/bob").status_int == 204


# --- shared images ---------------------------------------------------------------


def test_shared_images_lists_the_live_memberships_of_a_member(registry, alice, image_id):
    other = alice.create(name="other")["id"]
    alice.put(f"/images/{image_id}/members/bob", {"member": {"can_share": True}})
    alice.put(f"/images/{other}/members/bob")
    alice.put(f"/images/{other}/members/carol")
    alice.delete(f"/images/{other}/members/bob")
    resp = registry.tenant("bob").get("/shared-images/bob")
    assert resp.json == {"shared_images": [{"image_id": image_id, "can_share": True}]}


def test_shared_images_of_an_unknown_member_is_an_empty_list(admin):
    assert admin.get("/shared-images/nobody").json == {"shared_images": []}


def test_shared_images_hides_other_tenants_memberships(registry, alice, image_id):
    alice.put(f"/images/{image_id}/members/bob")
    assert registry.tenant("carol").get("/shared-images/bob").json == {"shared_images": []}
    assert alice.get("/shared-images/bob").json["shared_images"][0]["image_id"] == image_id
