"""Identity and policy end to end: trusted-auth on both services (glance-api forwarding the
caller's identity to the registry), visibility per tenant, sharing permissions, the
publicize policy, and a policy file."""

import json
import re
import uuid

import pytest

pytestmark = pytest.mark.functional

TRUSTED = {"flavor": "trusted-auth"}


def as_tenant(tenant: str, roles: str = "member", **extra) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": f"user-{tenant}",
        "X-Tenant-Id": tenant,
        "X-Roles": roles,
        **extra,
    }


ADMIN = as_tenant("ops", "admin")


@pytest.fixture(scope="module")
def api(deploy):
    return deploy("trusted", registry_options=TRUSTED, send_identity_headers=True, **TRUSTED)


@pytest.fixture(scope="module")
def world(api):
    """A owns a private and a public image; B owns two private ones and shares one with A."""

    def make(tenant, name, public=False, data=None):
        headers = as_tenant(tenant, "admin" if public else "member")
        fields = {"is_public": "true"} if public else {}
        if data is not None:
            return api.upload(data, name=name, headers=headers, **fields)
        return api.reserve(name=name, headers=headers, **fields)

    ids = {
        "a-private": make("A", "a-private")["id"],
        "a-public": make("A", "a-public", public=True, data=b"public bytes")["id"],
        "b-private": make("B", "b-private")["id"],
        "b-shared": make("B", "b-shared", data=b"shared bytes")["id"],
    }
    resp = api.put(f"/images/{ids['b-shared']}/members/A", headers=as_tenant("B"))
    assert resp.status_code == 204, resp.text
    return ids


def names(api, headers, path="/images", **params) -> list[str]:
    resp = api.get(path, headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    return sorted(i["name"] for i in resp.json()["images"])


def test_a_request_without_a_confirmed_identity_is_401(api):
    assert api.get("/images").status_code == 401
    assert api.get("/images", headers={"X-Identity-Status": "Invalid"}).status_code == 401
    assert api.create(name="x").status_code == 401


def test_each_tenant_sees_its_own_shared_and_public_images(api, world):
    assert names(api, as_tenant("A")) == ["a-private", "a-public", "b-shared"]
    assert names(api, as_tenant("B")) == ["a-public", "b-private", "b-shared"]
    assert names(api, as_tenant("C")) == ["a-public"]
    assert names(api, as_tenant("C"), "/images/detail") == ["a-public"]
    assert names(api, as_tenant("C", "admin")) == ["a-public"]
    assert names(api, as_tenant("C", "Admin"), is_public="none") == sorted(world)
    assert names(api, as_tenant("C"), is_public="none") == ["a-public"]


def test_owner_is_the_callers_tenant(api, world):
    meta = api.meta(world["a-private"], headers=as_tenant("A"))
    assert meta["x-image-meta-owner"] == "A"
    project = api.reserve(headers=as_tenant("P", **{"X-Tenant-Id": None, "X-Project-Id": "P2"}))
    assert project["owner"] == "P2"


def test_reading_someone_elses_images(api, world):
    a = as_tenant("A")
    assert api.head(f"/images/{world['b-shared']}", headers=a).status_code == 200
    assert api.get(f"/images/{world['b-shared']}", headers=a).content == b"shared bytes"
    assert api.head(f"/images/{world['b-private']}", headers=a).status_code == 404
    c = as_tenant("C")
    resp = api.get(f"/images/{world['b-private']}", headers=c)
    assert resp.status_code == 404
    assert f"Image with identifier {world['b-private']} not found" in resp.text
    assert api.get(f"/images/{world['a-public']}", headers=c).content == b"public bytes"


def test_changing_someone_elses_images(api, world):
    c = as_tenant("C")
    put = api.update(world["a-public"], name="mine now", headers=c)
    assert put.status_code == 403
    assert "Forbidden to update image" in put.text
    delete = api.delete(f"/images/{world['a-public']}", headers=c)
    assert delete.status_code == 403
    assert "Forbidden to delete image" in delete.text
    assert api.update(world["b-private"], name="x", headers=c).status_code == 404
    assert api.delete(f"/images/{world['b-private']}", headers=c).status_code == 404
    # a member may read the image but not change it: 403, not Glance's 500
    member_put = api.update(world["b-shared"], name="hijacked", headers=as_tenant("A"))
    assert member_put.status_code == 403, member_put.text
    member_delete = api.delete(f"/images/{world['b-shared']}", headers=as_tenant("A"))
    assert 400 <= member_delete.status_code < 500, member_delete.text
    assert api.meta(world["b-shared"], headers=as_tenant("B"))["x-image-meta-status"] == "active"


def test_a_non_admin_may_not_publicize(api):
    a = as_tenant("A")
    resp = api.create(name="pub", is_public="true", headers=a)
    assert resp.status_code == 403, resp.text
    image = api.reserve(name="later", headers=a)
    put = api.update(image["id"], is_public="true", headers=a)
    assert put.status_code == 403
    assert api.meta(image["id"], headers=a)["x-image-meta-is_public"] == "False"
    assert api.update(image["id"], is_public="true", headers=ADMIN).status_code == 200


def test_publicize_is_refused_for_glanceclients_underscore_spelling_too(api):
    resp = api.post("/images", headers={**as_tenant("A"), "x-image-meta-is_public": "true"})
    assert resp.status_code == 403, resp.text


def test_underscore_identity_headers_are_not_recovered(api):
    """Only x-image-meta-* / x-glance-* spellings come back: `X_Roles` must not make an
    admin, nor `X_Identity_Status` a confirmed identity."""
    escalate = {**as_tenant("A"), "X_Roles": "admin", "x_roles": "admin"}
    resp = api.create(name="sneaky", is_public="true", headers=escalate)
    assert resp.status_code == 403, resp.text
    unconfirmed = {"X_Identity_Status": "Confirmed", "X_Tenant_Id": "A", "X_Roles": "admin"}
    assert api.get("/images", headers=unconfirmed).status_code == 401


def test_a_deleted_image_is_404_for_its_owner_and_200_for_an_admin(api):
    a = as_tenant("A")
    image = api.upload(b"short-lived", headers=a)
    assert api.delete(f"/images/{image['id']}", headers=a).status_code == 200
    assert api.head(f"/images/{image['id']}", headers=a).status_code == 404
    again = api.delete(f"/images/{image['id']}", headers=a)
    assert again.status_code == 404
    meta = api.meta(image["id"], headers=ADMIN)
    assert meta["x-image-meta-status"] == "deleted"
    assert meta["x-image-meta-deleted"] == "True"


def test_a_non_admin_owner_is_ignored(api):
    a = as_tenant("A")
    created = api.reserve(name="owned", owner="B", headers=a)
    assert created["owner"] == "A"
    resp = api.update(created["id"], owner="B", headers=a)
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["owner"] == "A"
    admin = api.update(created["id"], owner="B", headers=ADMIN)
    assert admin.json()["image"]["owner"] == "B"


def test_a_non_admin_may_not_change_size_or_checksum_of_an_active_image(api):
    a = as_tenant("A")
    image = api.upload(b"fixed", headers=a)
    for key, value in (("size", "99"), ("checksum", "0" * 32)):
        resp = api.update(image["id"], headers=a, **{key: value})
        assert resp.status_code == 403
        assert f"Forbidden to modify '{key}' of active image." in resp.text
    same = api.update(image["id"], size=str(image["size"]), checksum=image["checksum"], headers=a)
    assert same.status_code == 200, same.text
    queued = api.reserve(headers=a)
    assert api.update(queued["id"], size="5", headers=a).status_code == 200


def test_members_as_seen_by_owner_member_and_stranger(api, world):
    shared = world["b-shared"]
    b, a, c = as_tenant("B"), as_tenant("A"), as_tenant("C")
    assert api.put(f"/images/{shared}/members/D", headers=b).status_code == 204
    owner_view = api.get(f"/images/{shared}/members", headers=b).json()["members"]
    assert [m["member_id"] for m in owner_view] == ["A", "D"]
    member_view = api.get(f"/images/{shared}/members", headers=a).json()["members"]
    assert member_view == [{"member_id": "A", "can_share": False}]
    assert api.get(f"/images/{world['b-private']}/members", headers=c).status_code == 404
    assert api.delete(f"/images/{shared}/members/D", headers=b).status_code == 204


def test_sharing_needs_ownership_or_can_share(api):
    b, a = as_tenant("B"), as_tenant("A")
    image = api.reserve(name="resharable", headers=b)
    assert api.put(f"/images/{image['id']}/members/A", headers=b).status_code == 204
    refused = api.put(f"/images/{image['id']}/members/E", headers=a)
    assert refused.status_code == 404
    assert "No permission to share that image" in refused.text
    replace = api.put(f"/images/{image['id']}/members", headers=a, json={"memberships": []})
    assert replace.status_code == 404
    grant = {"member": {"can_share": True}}
    assert api.put(f"/images/{image['id']}/members/A", headers=b, json=grant).status_code == 204
    assert api.put(f"/images/{image['id']}/members/E", headers=a).status_code == 204
    stranger = api.put(f"/images/{image['id']}/members/F", headers=as_tenant("C"))
    assert stranger.status_code == 404


def test_shared_images_are_filtered_per_caller(api, world):
    entry = {"image_id": world["b-shared"], "can_share": False}
    assert entry in api.get("/shared-images/A", headers=as_tenant("B")).json()["shared_images"]
    assert entry in api.get("/shared-images/A", headers=as_tenant("A")).json()["shared_images"]
    assert api.get("/shared-images/A", headers=as_tenant("C")).json() == {"shared_images": []}


def test_request_ids_are_echoed_with_the_req_prefix(api):
    resp = api.get("/images", headers=as_tenant("A", **{"X-Openstack-Request-ID": "abc"}))
    assert resp.headers["x-openstack-request-id"] == "req-abc"
    kept = api.get("/images", headers=as_tenant("A", **{"X-Openstack-Request-ID": "req-xyz"}))
    assert kept.headers["x-openstack-request-id"] == "req-xyz"
    fresh = api.get("/images", headers=as_tenant("A"))
    assert re.match(r"^req-[0-9a-f-]{36}$", fresh.headers["x-openstack-request-id"])


def test_an_over_long_request_id_is_431_not_500(api):
    resp = api.get("/images", headers=as_tenant("A", **{"X-Openstack-Request-ID": "x" * 65}))
    assert resp.status_code == 431, resp.text


def test_an_invalid_service_catalog_is_400_not_500(api):
    resp = api.get("/images", headers=as_tenant("A", **{"X-Service-Catalog": "{not json"}))
    assert resp.status_code == 400
    assert "Invalid service catalog json." in resp.text


def test_read_only_anonymous_access(deploy):
    anon = deploy(
        "anonymous",
        registry_options=TRUSTED,
        send_identity_headers=True,
        allow_anonymous_access=True,
        **TRUSTED,
    )
    public = anon.reserve(name="p", is_public="true", headers=ADMIN)
    assert [i["id"] for i in anon.get("/images").json()["images"]] == [public["id"]]
    assert anon.head(f"/images/{public['id']}").status_code == 200
    for resp in (
        anon.create(name="x"),
        anon.update(public["id"], name="y"),
        anon.delete(f"/images/{public['id']}"),
    ):
        assert resp.status_code == 403, resp.text
        assert "Read-only access" in resp.text
    # member changes check for an owner first: 401 before anything else
    member = anon.put(f"/images/{public['id']}/members/t1")
    assert member.status_code == 401
    assert "No authenticated user" in member.text


# --- policy file (no-auth admin) -------------------------------------------------------


@pytest.fixture(scope="module")
def restricted(deploy, tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.json"
    rules = {
        "download_image": "!",
        "publicize_image": "role:admin",
        "get_images": "!",
        "get_members": "!",
        "delete_member": "!",
    }
    path.write_text(json.dumps(rules))
    return deploy("restricted", policy_file=path)


def test_download_forbidden_by_policy_is_403(restricted):
    image = restricted.upload(b"secret")
    resp = restricted.get(f"/images/{image['id']}")
    assert resp.status_code == 403
    assert b"secret" not in resp.content
    assert restricted.head(f"/images/{image['id']}").status_code == 200
    queued = restricted.reserve()
    assert restricted.get(f"/images/{queued['id']}").status_code == 403
    assert restricted.delete(f"/images/{image['id']}").status_code == 200
    assert restricted.get(f"/images/{image['id']}").status_code == 403
    assert restricted.get(f"/images/{uuid.uuid4()}").status_code == 404


def test_each_action_consults_its_policy(restricted):
    image = restricted.reserve(name="policed")
    assert restricted.get("/images").status_code == 403
    assert restricted.get("/images/detail").status_code == 403
    assert restricted.put(f"/images/{image['id']}/members/t1").status_code == 204
    assert restricted.get(f"/images/{image['id']}/members").status_code == 403
    assert restricted.delete(f"/images/{image['id']}/members/t1").status_code == 403
    assert restricted.update(image["id"], name="still allowed").status_code == 200


def test_download_policy_sees_the_custom_properties(deploy, tmp_path_factory):
    path = tmp_path_factory.mktemp("policy-props") / "policy.json"
    path.write_text(json.dumps({"download_image": "not 'blocked':%(x_test_key)s"}))
    api = deploy("policy-props", policy_file=path)
    blocked = api.upload(b"no", properties={"x_test_key": "blocked"})
    assert api.get(f"/images/{blocked['id']}").status_code == 403
    other = api.upload(b"yes", properties={"x_test_key": "fine"})
    assert api.get(f"/images/{other['id']}").content == b"yes"
    plain = api.upload(b"plain")
    assert api.get(f"/images/{plain['id']}").content == b"plain"


def test_an_operators_role_admin_publicize_rule_binds_the_noauth_admin(restricted):
    resp = restricted.create(name="pub", is_public="true")
    assert resp.status_code == 403


def test_the_noauth_admin_may_publicize_with_the_built_in_rules(client):
    image = client.reserve(name="public", is_public="true")
    assert image["is_public"] is True
    private = client.reserve(name="later")
    resp = client.update(private["id"], is_public="yes")
    assert resp.status_code == 200
    assert resp.json()["image"]["is_public"] is True


def test_owner_is_the_user_and_admin_role_is_configurable(deploy):
    options = {**TRUSTED, "owner_is_tenant": False, "admin_role": "superuser"}
    api = deploy("owner-is-user", registry_options=options, send_identity_headers=True, **options)
    mine = api.reserve(name="mine", headers=as_tenant("T"))
    assert mine["owner"] == "user-T"
    same_tenant_other_user = {**as_tenant("T"), "X-User-Id": "someone-else"}
    assert api.head(f"/images/{mine['id']}", headers=same_tenant_other_user).status_code == 404
    assert api.head(f"/images/{mine['id']}", headers=as_tenant("T")).status_code == 200
    public = api.reserve(name="pub", is_public="true", headers=as_tenant("S", "superuser"))
    assert public["is_public"] is True
    refused = api.create(name="pub2", is_public="true", headers=as_tenant("S", "member"))
    assert refused.status_code == 403
