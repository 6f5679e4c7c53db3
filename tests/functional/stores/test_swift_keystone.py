"""The swift store with a keystone account (auth_version 3) against the real Keystone
and a Swift proxy that takes its tokens (.ci/services/start-swift-keystone.sh, whose URL
is GLANCE_LITE_TEST_SWIFT_KEYSTONE_URL): the store contract, with every image in
segments and a manifest (single objects are the tempauth tests' business: only the
account differs), and glance-api storing and serving an image there. Swift's
endpoint comes from Keystone's catalog, in a region this module registers and removes.
Accounts of auth_version 2 are test_swift_keystone_v2.py's."""

import functools
import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest
import requests
import swiftclient

from glance_lite.store.swift import SwiftStore
from glance_lite.store.swift_account import Account
from tests.conftest import unavailable
from tests.functional.keystone import TIMEOUT, Keystone, keystone
from tests.functional.stores.conftest import object_names
from tests.unit.store.test_contract import *  # noqa: F403 - the shared checks
from tests.unit.store.test_contract import Backend, pattern

pytestmark = pytest.mark.functional

URL_ENV = "GLANCE_LITE_TEST_SWIFT_KEYSTONE_URL"


@pytest.fixture(scope="module")
def ks() -> Keystone:
    return keystone()


@pytest.fixture(scope="module")
def swift_region(ks) -> Iterator[str]:
    """A catalog region of its own whose object-store endpoint is the keystone proxy."""
    proxy = os.environ.get(URL_ENV)
    if not proxy:
        unavailable(f"{URL_ENV} is not set: .ci/services/start-swift-keystone.sh starts it")
    admin = {"X-Auth-Token": ks.token(ks.admin).id}

    def call(method, path, **kw):
        resp = requests.request(method, ks.url + path, headers=admin, timeout=TIMEOUT, **kw)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    # A service and a region of its own: modules running side by side (xdist) each
    # remove theirs, never one another's endpoints.
    tag = uuid.uuid4().hex[:8]
    region = f"glance-lite-swift-{tag}"
    call("POST", "/regions", json={"region": {"id": region}})
    new = {"service": {"type": "object-store", "name": f"swift-{tag}"}}
    service = call("POST", "/services", json=new)["service"]
    endpoint = {
        "service_id": service["id"],
        "interface": "public",
        "url": f"{proxy.rstrip('/')}/v1/AUTH_$(project_id)s",
        "region_id": region,
    }
    call("POST", "/endpoints", json={"endpoint": endpoint})
    yield region
    call("DELETE", f"/services/{service['id']}")  # and its endpoint
    call("DELETE", f"/regions/{region}")


@pytest.fixture(scope="module")
def account(ks) -> Account:
    return Account(ks.url, f"{ks.demo.project}:{ks.demo.user}", ks.demo.password, "3")


@pytest.fixture
def swift(ks, swift_region) -> Iterator[swiftclient.Connection]:
    """What the demo project's account holds, seen with a token of its own (the
    `container` fixture of conftest.py cleans up through this one)."""
    token = ks.token(ks.demo)
    url = f"{os.environ[URL_ENV].rstrip('/')}/v1/AUTH_{token.project_id}"
    conn = swiftclient.Connection(preauthurl=url, preauthtoken=token.id, retries=1)
    yield conn
    conn.close()


@pytest.fixture
def backend(account, swift_region, swift, container) -> Backend:
    store = SwiftStore(
        {"ref1": account},
        "ref1",
        container=container,
        create_container=True,
        settings={"region": swift_region},
        large_object_size=1,
        chunk_size=1_400_000,
    )
    return Backend(store, functools.partial(object_names, swift, container))


def test_glance_api_stores_and_serves_an_image_with_a_keystone_account(
    deploy, ks, account, swift_region, swift, container
):
    api = deploy(
        "swift-keystone",
        store_options={
            "stores": "file, swift",
            "default_store": "swift",
            "swift_store_auth_version": "3",
            "swift_store_auth_address": account.auth_address,
            "swift_store_user": account.user,
            "swift_store_key": account.key,
            "swift_store_region": swift_region,
            "swift_store_container": container,
            "swift_store_create_container_on_put": "true",
            "swift_store_large_object_size": 2,
            "swift_store_large_object_chunk_size": 1,
        },
    )
    data = pattern(int(2.5 * 1000 * 1024), seed=21)  # three segments of 1 MB
    image = api.upload(data, name="swift-keystone")
    assert (image["size"], image["checksum"]) == (len(data), hashlib.md5(data).hexdigest())
    assert object_names(swift, container) == [
        image["id"],
        *(f"{image['id']}-{n:05d}" for n in (1, 2, 3)),
    ]
    assert api.get(f"/images/{image['id']}").content == data
    assert api.delete(f"/images/{image['id']}").status_code == 200
    assert object_names(swift, container) == []
