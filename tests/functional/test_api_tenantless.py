"""Callers without a tenant (anonymous with allow_anonymous_access, or a confirmed
identity without X-Tenant-Id) list public images only, through the real servers."""

import pytest
import requests

pytestmark = pytest.mark.functional

TRUSTED = {"flavor": "trusted-auth"}
NO_TENANT = {"X-Identity-Status": "Confirmed", "X-User-Id": "someone", "X-Roles": "member"}


def as_tenant(tenant: str, roles: str = "member") -> dict[str, str]:
    return {**NO_TENANT, "X-User-Id": f"user-{tenant}", "X-Tenant-Id": tenant, "X-Roles": roles}


@pytest.fixture(scope="module")
def api(deploy):
    return deploy(
        "tenantless",
        registry_options=TRUSTED,
        send_identity_headers=True,
        allow_anonymous_access=True,
        **TRUSTED,
    )


@pytest.fixture(scope="module")
def world(api):
    """B owns a private image, one shared with A, a public one; A owns a private one."""
    public = {"is_public": "true"}
    made = {
        "b-private": api.reserve(name="b-private", headers=as_tenant("B")),
        "b-shared": api.reserve(name="b-shared", headers=as_tenant("B")),
        "b-public": api.reserve(name="b-public", headers=as_tenant("B", "admin"), **public),
        "a-private": api.reserve(name="a-private", headers=as_tenant("A")),
    }
    ids = {name: image["id"] for name, image in made.items()}
    resp = api.put(f"/images/{ids['b-shared']}/members/A", headers=as_tenant("B"))
    assert resp.status_code == 204, resp.text
    return ids


def listed(api, headers: dict, path: str) -> set[str]:
    resp = api.get(path, headers=headers, params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    return {image["id"] for image in resp.json()["images"]}


@pytest.mark.parametrize("path", ["/images", "/images/detail"])
@pytest.mark.parametrize("headers", [{}, NO_TENANT], ids=["anonymous", "no-tenant"])
def test_a_caller_without_a_tenant_lists_public_images_only(api, world, headers, path):
    ours = set(world.values())
    assert listed(api, headers, path) & ours == {world["b-public"]}
    # and each image it cannot list, it cannot show either
    for name, image_id in world.items():
        expected = 200 if name == "b-public" else 404
        assert api.head(f"/images/{image_id}", headers=headers).status_code == expected, name


def test_tenants_still_list_what_is_shared_with_them(api, world):
    assert listed(api, as_tenant("A"), "/images/detail") & set(world.values()) == {
        world["b-shared"], world["b-public"], world["a-private"]
    }  # fmt: skip


def test_the_registry_lists_public_images_only_to_a_caller_without_a_tenant(api, world):
    registry = api.deployment.registry.url
    for path in ("/images", "/images/detail"):
        resp = requests.get(f"{registry}{path}", headers=NO_TENANT, timeout=10)
        assert resp.status_code == 200, resp.text
        found = {image["id"] for image in resp.json()["images"]}
        assert found & set(world.values()) == {world["b-public"]}
