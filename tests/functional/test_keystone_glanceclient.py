"""python-glanceclient's v1 CLI with password auth against the keystone flavors: the
whole image scenario, the image endpoint given (--os-image-url) or found in Keystone's
catalog (registered by the test in a region of its own)."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.functional.conftest import md5
from tests.functional.keystone import DOMAIN, Account, Keystone, KeystoneDeployment, keystone
from tests.functional.test_glanceclient import GLANCE, Cli, blob

pytestmark = [
    pytest.mark.functional,
    pytest.mark.filterwarnings("ignore:`version` keyword is being deprecated"),
]

TIMEOUT = 30


class PasswordCli(Cli):
    """`glance --os-image-api-version 1` logging in to Keystone with a password."""

    def __init__(self, ks: Keystone, account: Account, *, image_url=None, region=None):
        super().__init__("unused")
        self.base = [
            GLANCE,
            "--os-image-api-version",
            "1",
            "--os-auth-url",
            ks.url,
            "--os-username",
            account.user,
            "--os-password",
            account.password,
            "--os-project-name",
            account.project,
            "--os-user-domain-id",
            DOMAIN,
            "--os-project-domain-id",
            DOMAIN,
        ]
        if image_url:
            self.base += ["--os-image-url", image_url]
        if region:
            self.base += ["--os-region-name", region]


@pytest.fixture(scope="module")
def ks() -> Keystone:
    return keystone()


@pytest.fixture(scope="module")
def deployment(ks, tmp_path_factory) -> Iterator[KeystoneDeployment]:
    started = KeystoneDeployment(tmp_path_factory.mktemp("ks-glanceclient"), ks).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def catalog_region(ks, deployment) -> Iterator[str]:
    """A region of the catalog whose image endpoint is this test's glance-api."""
    admin = {"X-Auth-Token": ks.token(ks.admin).id}
    region = f"glance-lite-test-{uuid.uuid4().hex[:8]}"

    def call(method, path, **kw):
        resp = requests.request(method, ks.url + path, headers=admin, timeout=TIMEOUT, **kw)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    call("POST", "/regions", json={"region": {"id": region}})
    services = call("GET", "/services", params={"type": "image"})["services"]
    service = (
        services[0]
        if services
        else call("POST", "/services", json={"service": {"type": "image", "name": "glance"}})[
            "service"
        ]
    )
    endpoint = call(
        "POST",
        "/endpoints",
        json={
            "endpoint": {
                "service_id": service["id"],
                "interface": "public",
                "url": deployment.url,
                "region_id": region,
            }
        },
    )["endpoint"]
    yield region
    call("DELETE", f"/endpoints/{endpoint['id']}")
    call("DELETE", f"/regions/{region}")


@pytest.fixture(scope="module")
def project_ids(ks) -> dict[str, str]:
    return {"demo": ks.token(ks.demo).project_id, "alt": ks.token(ks.alt).project_id}


@pytest.mark.parametrize("endpoint", ["--os-image-url", "catalog"])
def test_the_whole_scenario_with_password_auth(
    endpoint, ks, deployment, catalog_region, project_ids, tmp_path: Path
):
    """With --os-image-url, the whole scenario; with the catalog, what differs: every
    command finds the endpoint in the catalog the same way, so an upload, a listing, a
    download and a delete stand for the rest."""
    where = (
        {"image_url": deployment.url}
        if endpoint == "--os-image-url"
        else {"region": catalog_region}
    )
    demo = PasswordCli(ks, ks.demo, **where)
    path, data = blob(tmp_path, 300_000)
    name = f"scenario-{uuid.uuid4().hex[:8]}"

    created = demo.show(
        "image-create",
        "--name",
        name,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--property",
        "distro=cirros",
        "--file",
        str(path),
        stdin=path,
    )
    image_id = created["id"]
    assert created["status"] == "active"
    assert created["checksum"] == md5(data)
    assert created["owner"] == project_ids["demo"]
    assert name in [row["Name"] for row in demo.listing("image-list")]

    if endpoint == "--os-image-url":
        alt = PasswordCli(ks, ks.alt, **where)
        name = update_and_share(demo, alt, image_id, name, data, project_ids, tmp_path)

    out = tmp_path / "out.raw"
    demo.ok("image-download", "--file", str(out), image_id)
    assert out.read_bytes() == data
    demo.ok("image-delete", image_id)
    assert name not in " ".join(row["Name"] for row in demo.listing("image-list"))
    assert not any(deployment.datadir.glob(f"{image_id}*"))


def update_and_share(demo, alt, image_id, name, data, project_ids, tmp_path: Path) -> str:
    """The rest of the scenario on demo's image: shown, updated, hidden from alt until
    shared, then shared and unshared. Returns the image's new name."""
    assert name not in [row["Name"] for row in alt.listing("image-list")]

    shown = demo.show("image-show", image_id)
    assert shown["Property 'distro'"] == "cirros"
    assert shown["size"] == str(len(data))

    updated = demo.show("image-update", image_id, "--name", f"{name}-2", "--min-ram", "64")
    assert updated["name"] == f"{name}-2"
    assert updated["min_ram"] == "64"

    refused = alt.run("image-show", image_id)
    assert refused.returncode != 0
    demo.ok("member-create", image_id, project_ids["alt"])
    members = demo.listing("member-list", "--image-id", image_id)
    assert [row["Member ID"] for row in members] == [project_ids["alt"]]
    assert alt.show("image-show", image_id)["name"] == f"{name}-2"
    alt_out = tmp_path / "alt.raw"
    alt.ok("image-download", "--file", str(alt_out), image_id)
    assert alt_out.read_bytes() == data
    # the v1 CLI reports a refused delete on stdout and exits 0
    assert "Unable to delete image" in alt.run("image-delete", image_id).stdout.decode()
    assert demo.show("image-show", image_id)["status"] == "active"
    demo.ok("member-delete", image_id, project_ids["alt"])
    assert alt.run("image-show", image_id).returncode != 0
    return f"{name}-2"


def test_a_wrong_password_is_refused_by_keystone(ks, deployment):
    wrong = Account(ks.demo.user, "not-the-password", ks.demo.project)
    result = PasswordCli(ks, wrong, image_url=deployment.url).run("image-list")
    assert result.returncode != 0
    assert b"401" in result.stderr or b"authenticat" in result.stderr.lower()
