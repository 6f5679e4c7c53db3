"""Two Keystone tenants' tokens against the keystone flavors: a tenant sees its own, shared
and public images, an admin all of them, and a token of one project never reaches the
other's private image, by any route of the api or of the registry.

Run four times: glance-api forwarding the caller's token alone (Glance's default), with
a token of its own beside it (admin_user & co; the identity stays the caller's), and so
with use_user_token = false too (where Glance sent the api's token instead, and every
caller became the api's user at the registry); and once more with the api in the keystone
flavor in front of a registry in trusted-auth, told who calls by send_identity_headers.
"""

from collections.abc import Iterator

import pytest
import requests

from tests.functional.keystone import KeystoneDeployment, keystone

pytestmark = pytest.mark.functional

TIMEOUT = 30


class Caller:
    """A token's holder, talking to the api."""

    def __init__(self, deployment: KeystoneDeployment, token):
        self.url = deployment.url + "/v1"
        self.token = token
        self.session = requests.Session()
        self.session.headers["X-Auth-Token"] = token.id
        deployment.api.sessions.append(self.session)

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.url + path, **kw)

    def names(self, path: str = "/images", **params) -> list[str]:
        resp = self("GET", path, params=params)
        assert resp.status_code == 200, resp.text
        return sorted(i["name"] for i in resp.json()["images"])

    def create(self, name: str, data: bytes | None = None, **fields) -> dict:
        headers = {"x-image-meta-name": name}
        headers.update({f"x-image-meta-{k.replace('_', '-')}": v for k, v in fields.items()})
        if data is not None:
            headers.update(
                {
                    "Content-Type": "application/octet-stream",
                    "x-image-meta-disk-format": "raw",
                    "x-image-meta-container-format": "bare",
                }
            )
        resp = self("POST", "/images", headers=headers, data=data)
        assert resp.status_code == 201, resp.text
        return resp.json()["image"]


@pytest.fixture(scope="module")
def ks():
    return keystone()


@pytest.fixture(
    scope="module",
    params=["user-token", "with-service-token", "use_user_token-false", "registry-trusted-auth"],
)
def deployment(request, ks, tmp_path_factory) -> Iterator[KeystoneDeployment]:
    options: dict[str, object] = {}
    registry_flavor = "keystone"
    if request.param == "registry-trusted-auth":
        options = {"send_identity_headers": "true"}
        registry_flavor = "trusted-auth"
    elif request.param != "user-token":
        options = {
            "auth_url": ks.url,
            "admin_user": ks.service.user,
            "admin_password": ks.service.password,
            "admin_tenant_name": ks.service.project,
        }
    if request.param == "use_user_token-false":
        options["use_user_token"] = "false"
    workdir = tmp_path_factory.mktemp(f"ks-{request.param}")
    started = KeystoneDeployment(
        workdir, ks, api_options=options, registry_flavor=registry_flavor
    ).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def callers(deployment, ks) -> dict[str, Caller]:
    return {
        name: Caller(deployment, ks.token(account))
        for name, account in (("demo", ks.demo), ("alt", ks.alt), ("admin", ks.admin))
    }


@pytest.fixture(scope="module")
def world(callers) -> dict[str, dict]:
    """demo: a private image with data, a queued one, one shared with alt; admin: a public
    one. alt owns one private image."""
    demo, alt, admin = callers["demo"], callers["alt"], callers["admin"]
    made = {
        "demo-private": demo.create("demo-private", b"demo's secret bytes"),
        "demo-queued": demo.create("demo-queued"),
        "demo-shared": demo.create("demo-shared", b"shared bytes"),
        "alt-private": alt.create("alt-private", b"alt bytes"),
        "public": admin.create("public", b"public bytes", is_public="true"),
    }
    shared = made["demo-shared"]["id"]
    resp = demo("PUT", f"/images/{shared}/members/{alt.token.project_id}")
    assert resp.status_code == 204, resp.text
    return made


def test_owner_is_the_tokens_project(world, callers):
    assert world["demo-private"]["owner"] == callers["demo"].token.project_id
    assert world["alt-private"]["owner"] == callers["alt"].token.project_id


def test_each_tenant_lists_its_own_shared_and_public_images(world, callers):
    demo, alt, admin = callers["demo"], callers["alt"], callers["admin"]
    mine = ["demo-private", "demo-queued", "demo-shared", "public"]
    assert demo.names() == mine
    assert demo.names("/images/detail") == mine
    assert alt.names() == ["alt-private", "demo-shared", "public"]
    assert alt.names("/images/detail", is_public="none") == ["alt-private", "demo-shared", "public"]
    assert sorted(set(admin.names("/images/detail", is_public="none")) & set(world)) == sorted(
        world
    )


def test_a_token_of_another_project_never_reaches_a_private_image(world, callers, deployment):
    alt = callers["alt"]
    for key in ("demo-private", "demo-queued"):
        image_id = world[key]["id"]
        routes = [
            ("HEAD", f"/images/{image_id}", {}),
            ("GET", f"/images/{image_id}", {}),
            ("PUT", f"/images/{image_id}", {"headers": {"x-image-meta-name": "taken"}}),
            (
                "PUT",
                f"/images/{image_id}",
                {
                    "headers": {"Content-Type": "application/octet-stream"},
                    "data": b"overwritten",
                },
            ),
            ("DELETE", f"/images/{image_id}", {}),
            ("GET", f"/images/{image_id}/members", {}),
            ("PUT", f"/images/{image_id}/members/{alt.token.project_id}", {}),
            ("PUT", f"/images/{image_id}/members", {"json": {"memberships": []}}),
            ("DELETE", f"/images/{image_id}/members/{alt.token.project_id}", {}),
        ]
        for method, path, kw in routes:
            resp = alt(method, path, **kw)
            assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
            assert b"secret" not in resp.content
    for params in ({}, {"is_public": "none"}, {"changes-since": "2000-01-01T00:00:00"}):
        listed = alt("GET", "/images/detail", params=params).json()["images"]
        assert not {i["id"] for i in listed} & {world["demo-private"]["id"]}
    shared_with_demo = alt("GET", f"/shared-images/{callers['demo'].token.project_id}")
    assert shared_with_demo.json() == {"shared_images": []}
    # nothing changed for the owner
    demo = callers["demo"]
    resp = demo("GET", f"/images/{world['demo-private']['id']}")
    assert resp.content == b"demo's secret bytes"
    assert resp.headers["x-image-meta-name"] == "demo-private"
    # and the registry, asked directly with alt's token, says the same
    registry = requests.get(
        f"{deployment.registry.url}/images/{world['demo-private']['id']}",
        headers={"X-Auth-Token": alt.token.id},
        timeout=TIMEOUT,
    )
    # (a trusted-auth registry believes identity headers alone, and has none here)
    assert registry.status_code == (404 if deployment.registry_flavor == "keystone" else 401)


def test_a_shared_image_is_read_by_its_member_but_not_changed(world, callers):
    alt = callers["alt"]
    shared = world["demo-shared"]["id"]
    assert alt("GET", f"/images/{shared}").content == b"shared bytes"
    assert alt("PUT", f"/images/{shared}", headers={"x-image-meta-name": "x"}).status_code == 403
    assert 400 <= alt("DELETE", f"/images/{shared}").status_code < 500
    members = alt("GET", f"/images/{shared}/members").json()["members"]
    assert members == [{"member_id": alt.token.project_id, "can_share": False}]


def test_a_member_may_not_publicize_an_admin_may(callers):
    demo, admin = callers["demo"], callers["admin"]
    refused = demo("POST", "/images", headers={"x-image-meta-is-public": "true"})
    assert refused.status_code == 403, refused.text
    image = demo.create("to-publish")
    put = demo("PUT", f"/images/{image['id']}", headers={"x-image-meta-is-public": "true"})
    assert put.status_code == 403
    ok = admin("PUT", f"/images/{image['id']}", headers={"x-image-meta-is-public": "true"})
    assert ok.status_code == 200, ok.text


def test_an_admin_reads_and_changes_any_image(world, callers):
    admin = callers["admin"]
    image_id = world["alt-private"]["id"]
    assert admin("GET", f"/images/{image_id}").content == b"alt bytes"
    resp = admin("PUT", f"/images/{image_id}", headers={"x-image-meta-property-checked": "yes"})
    assert resp.status_code == 200, resp.text
