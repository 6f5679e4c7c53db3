"""The swift store with a keystone account of `swift_store_auth_version = 2`: the store
contract and glance-api storing and serving an image, against the real Keystone (through
tests/functional/keystone_v2.py, which answers v2.0's sign-in with Keystone's v3 API,
as no Keystone with v2.0 installs any more) and the Swift proxy that takes its tokens.
A refused password is a start-up warning and a 503 at upload."""

import hashlib
import logging
from collections.abc import Iterator

import pytest

from glance_lite.store import swift as swift_store
from glance_lite.store.base import BackendUnavailable
from glance_lite.store.swift import SwiftStore
from glance_lite.store.swift_account import Account
from tests.functional import keystone_v2
from tests.functional.stores import test_swift_keystone as v3
from tests.functional.stores.conftest import object_names
from tests.unit.store.test_contract import *  # noqa: F403 - the shared checks
from tests.unit.store.test_contract import pattern

pytestmark = pytest.mark.functional

# The v3 module's fixtures (after the contract's, whose `backend` is another): its
# `backend` builds the store from this module's `account`.
backend, ks, swift, swift_region = v3.backend, v3.ks, v3.swift, v3.swift_region


@pytest.fixture(scope="module")
def v2_url(ks) -> Iterator[str]:
    with keystone_v2.serving(ks.url) as url:
        yield url


@pytest.fixture(scope="module")
def account(ks, v2_url) -> Account:
    return Account(v2_url, f"{ks.demo.project}:{ks.demo.user}", ks.demo.password, "2")


def _options(account: Account, region: str, container: str, **more) -> dict:
    return {
        "stores": "file, swift",
        "default_store": "swift",
        "swift_store_auth_version": "2",
        "swift_store_auth_address": account.auth_address,
        "swift_store_user": account.user,
        "swift_store_key": account.key,
        "swift_store_region": region,
        "swift_store_container": container,
        "swift_store_create_container_on_put": "true",
        **more,
    }


def test_glance_api_stores_and_serves_an_image_with_a_v2_account(
    deploy,
    account,
    swift_region,
    swift,
    container,
):
    api = deploy("swift-keystone-v2", store_options=_options(account, swift_region, container))
    data = pattern(700_000, seed=22)
    image = api.upload(data, name="swift-keystone-v2")
    assert (image["size"], image["checksum"]) == (len(data), hashlib.md5(data).hexdigest())
    assert object_names(swift, container) == [image["id"]]
    assert api.get(f"/images/{image['id']}").content == data
    assert api.delete(f"/images/{image['id']}").status_code == 200
    assert object_names(swift, container) == []


def test_a_refused_v2_password_warns_at_start_up_and_fails_an_upload_with_503(
    deploy,
    account,
    swift_region,
    container,
    caplog,
):
    wrong = Account(account.auth_address, account.user, "not-the-password", "2")
    store = SwiftStore(
        {"ref1": wrong}, "ref1", container=container, settings={"region": swift_region}
    )
    with caplog.at_level(logging.WARNING, logger=swift_store.__name__):
        store.check()
    assert "uploads and downloads fail until it works" in caplog.text
    assert "not-the-password" not in caplog.text
    with pytest.raises(BackendUnavailable):
        store.add("0b6e1bd4-3f57-4c8e-9bd8-4a3c1d7f3e21", [b"data"], 4)

    api = deploy(
        "swift-keystone-v2-refused", store_options=_options(wrong, swift_region, container)
    )
    resp = api.create(b"data", name="refused", disk_format="raw", container_format="bare")
    assert resp.status_code == 503, resp.text
