"""Store ACLs following is_public and the members, through the real glance-api: a store
package installed beside glance-lite (found by its entry point, as a third party's
would be) that keeps access lists. It is the file store, plus a set_acls that appends
each call to a file this test reads. None of the built-in stores keeps ACLs (README,
Stores), so this is the only way a running server can show the calls."""

import json
from pathlib import Path

import pytest

from tests.functional.conftest import ApiClient

pytestmark = pytest.mark.functional

STORE_MODULE = """
import json
import os

from glance_lite.store import filesystem


class AclFileStore(filesystem.FilesystemStore):
    keeps_acls = True

    def set_acls(self, location, *, public, read_tenants, write_tenants):
        self.get_size(location)  # StoreNotFound when there is no data, as a store would
        with open(os.environ["GLANCE_LITE_TEST_ACL_LOG"], "a") as log:
            log.write(json.dumps([location, public, read_tenants, write_tenants]) + "\\n")


def from_conf(conf, offload):
    store = filesystem.from_conf(conf, offload)
    store.__class__ = AclFileStore  # the file store, as configured, with ACLs
    return store
"""


@pytest.fixture(scope="module")
def acl_log(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("acl-site")
    (site / "acl_store.py").write_text(STORE_MODULE)
    info = site / "acl_store-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acl-store\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[glance_lite.stores]\naclfile = acl_store:from_conf\n")
    return site / "acl.log"


@pytest.fixture(scope="module")
def api(deploy, acl_log) -> ApiClient:
    with pytest.MonkeyPatch.context() as env:  # what the servers started here inherit
        env.setenv("PYTHONPATH", str(acl_log.parent))
        env.setenv("GLANCE_LITE_TEST_ACL_LOG", str(acl_log))
        return deploy("acls", store_options={"stores": "aclfile, http", "default_store": "file"})


def calls(acl_log: Path) -> list[list]:
    """The set_acls calls since the last look: [location, public, readers, writers]."""
    if not acl_log.exists():
        return []
    lines = acl_log.read_text().splitlines()
    acl_log.unlink()
    return [json.loads(line) for line in lines]


def test_an_upload_sets_the_acls_of_its_data_public_or_not(api, acl_log):
    calls(acl_log)
    public = api.upload(b"public data", name="acl-public", is_public="true")
    private = api.upload(b"private data", name="acl-private")
    assert calls(acl_log) == [
        [f"file://{api.datadir / public['id']}", True, [], []],
        [f"file://{api.datadir / private['id']}", False, [], []],
    ]


def test_is_public_changes_follow_and_other_updates_leave_the_acls(api, acl_log):
    image = api.upload(b"data", name="acl-update")
    location = f"file://{api.datadir / image['id']}"
    calls(acl_log)
    assert api.put(f"/images/{image['id']}", headers={"x-image-meta-is-public": "true"}).ok
    assert calls(acl_log) == [[location, True, [], []]]
    assert api.head(f"/images/{image['id']}").headers["x-image-meta-is_public"] == "True"
    assert api.put(f"/images/{image['id']}", headers={"x-image-meta-name": "renamed"}).ok
    assert calls(acl_log) == []
    assert api.put(f"/images/{image['id']}", headers={"x-image-meta-is-public": "false"}).ok
    assert calls(acl_log) == [[location, False, [], []]]


def test_members_are_readers_or_writers_by_can_share(api, acl_log):
    image = api.upload(b"shared data", name="acl-members")
    location = f"file://{api.datadir / image['id']}"
    calls(acl_log)
    assert api.put(f"/images/{image['id']}/members/reader").status_code == 204
    assert calls(acl_log) == [[location, False, ["reader"], []]]
    body = {"member": {"can_share": True}}
    assert api.put(f"/images/{image['id']}/members/sharer", json=body).status_code == 204
    assert calls(acl_log) == [[location, False, ["reader"], ["sharer"]]]
    assert api.delete(f"/images/{image['id']}/members/reader").status_code == 204
    assert calls(acl_log) == [[location, False, [], ["sharer"]]]
    memberships = {"memberships": [{"member_id": "other", "can_share": False}]}
    assert api.put(f"/images/{image['id']}/members", json=memberships).status_code == 204
    assert calls(acl_log) == [[location, False, ["other"], []]]


def test_a_reserved_image_gets_its_acls_when_its_data_comes(api, acl_log):
    image = api.reserve(name="acl-later", disk_format="raw", container_format="bare")
    assert calls(acl_log) == []  # no data, nothing to set
    resp = api.put(
        f"/images/{image['id']}",
        data=b"later data",
        headers={"Content-Type": "application/octet-stream", "x-image-meta-is-public": "true"},
    )
    assert resp.status_code == 200, resp.text
    assert calls(acl_log) == [[f"file://{api.datadir / image['id']}", True, [], []]]
