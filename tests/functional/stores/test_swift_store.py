"""The swift store against a real Swift, beyond the shared contract: the objects as
Glance writes and reads them, and what a missing container or a refused account gives."""

import dataclasses
import hashlib

import pytest

from glance_lite.store.base import BackendUnavailable, StoreNotFound
from glance_lite.store.swift import SwiftStore, from_conf
from glance_lite.store.swift_account import SwiftLocation
from tests.functional.stores.conftest import object_names
from tests.unit.store.test_contract import ClientGone, pattern, read_all, split
from tests.unit.store.test_swift import conf_with

pytestmark = pytest.mark.functional

IMAGE_ID = "a8f1b0d2-53c4-4c8e-9a57-2f4bd1e0c7aa"


def store_for(account, container, **kw) -> SwiftStore:
    kw.setdefault("create_container", True)
    return SwiftStore({"ref1": account}, "ref1", container=container, **kw)


def test_a_large_image_is_segments_and_a_manifest_as_glance_writes_them(
    swift_account, swift, container
):
    store = store_for(swift_account, container, large_object_size=200_000, chunk_size=100_000)
    data = pattern(250_000, seed=1)
    result = store.add(IMAGE_ID, split(data, [70_000, 90_000]), len(data))
    assert result.location == SwiftLocation(swift_account, container, IMAGE_ID).uri()
    assert object_names(swift, container) == [
        IMAGE_ID,
        f"{IMAGE_ID}-00001",
        f"{IMAGE_ID}-00002",
        f"{IMAGE_ID}-00003",
    ]
    headers, body = swift.get_object(container, IMAGE_ID)
    assert headers["x-object-manifest"] == f"{container}/{IMAGE_ID}-"
    assert body == data  # a plain client (Glance) reads the whole image
    assert [len(swift.get_object(container, f"{IMAGE_ID}-0000{i}")[1]) for i in (1, 2, 3)] == [
        100_000,
        100_000,
        50_000,
    ]
    assert (result.size, result.checksum) == (len(data), hashlib.md5(data).hexdigest())
    assert read_all(store, result.location, offset=150_000) == data[150_000:]
    store.delete(result.location)
    assert object_names(swift, container) == []


def test_an_image_below_the_large_object_size_is_one_object(swift_account, swift, container):
    store = store_for(swift_account, container, large_object_size=200_000, chunk_size=100_000)
    location = store.add(IMAGE_ID, iter([b"x" * 150_000]), 150_000).location
    assert object_names(swift, container) == [IMAGE_ID]
    assert "x-object-manifest" not in swift.head_object(container, IMAGE_ID)
    assert store.get_size(location) == 150_000


def test_an_image_glance_wrote_in_segments_is_read_and_deleted(swift_account, swift, container):
    swift.put_container(container)
    parts = [pattern(1000, seed=i) for i in range(3)]
    for i, part in enumerate(parts, 1):
        swift.put_object(container, f"{IMAGE_ID}-{i:05d}", part)
    swift.put_object(
        container, IMAGE_ID, b"", headers={"X-Object-Manifest": f"{container}/{IMAGE_ID}-"}
    )
    user = swift_account.user.replace(":", "%3A")  # Glance's quoting
    address = swift_account.auth_address.removeprefix("http://")
    location = f"swift+http://{user}:{swift_account.key}@{address}/{container}/{IMAGE_ID}"
    store = store_for(swift_account, "another-container")
    assert store.get_size(location) == 3000
    assert read_all(store, location) == b"".join(parts)
    store.delete(location)
    assert object_names(swift, container) == []


def test_a_segmented_upload_cut_off_midway_leaves_no_segment(swift_account, swift, container):
    store = store_for(swift_account, container, large_object_size=1, chunk_size=100_000)
    failure = ClientGone("client went away")

    def chunks():
        yield pattern(250_000)
        raise failure

    with pytest.raises(ClientGone) as caught:
        store.add(IMAGE_ID, chunks(), 500_000)
    assert caught.value is failure
    assert object_names(swift, container) == []


def test_a_missing_container_is_503_unless_it_may_be_created(swift_account, swift, container):
    store = store_for(swift_account, container, create_container=False)
    consumed = []

    def chunks():
        consumed.append(True)
        yield b"data"

    with pytest.raises(BackendUnavailable) as caught:
        store.add(IMAGE_ID, chunks(), 4)
    assert caught.value.status == 503
    assert f"The container {container} does not exist in Swift" in str(caught.value)
    assert consumed == []
    store_for(swift_account, container).add(IMAGE_ID, iter([b"data"]), 4)
    assert object_names(swift, container) == [IMAGE_ID]


def test_refused_credentials_are_503_naming_the_account_never_the_key(
    swift_account, swift, container
):
    wrong = dataclasses.replace(swift_account, key="not-the-key")
    store = store_for(wrong, container)
    with pytest.raises(BackendUnavailable) as caught:
        store.add(IMAGE_ID, iter([b"data"]), 4)
    message = str(caught.value)
    assert caught.value.status == 503
    assert message == (
        f"Swift refused the credentials of {swift_account.auth_address} as "
        f"{swift_account.user} (401)"
    )
    location = SwiftLocation(wrong, container, IMAGE_ID).uri()
    for call in (store.get, store.get_size, store.delete):
        with pytest.raises(BackendUnavailable, match="refused the credentials"):
            call(location)
    assert object_names(swift, container) == []


def test_an_unreachable_swift_is_503(swift_account, container):
    gone = dataclasses.replace(swift_account, auth_address="http://127.0.0.1:9/auth/v1.0")
    with pytest.raises(BackendUnavailable, match=r"Swift at http://127.0.0.1:9/auth/v1.0 is unr"):
        store_for(gone, container).add(IMAGE_ID, iter([b"data"]), 4)


def test_a_location_of_a_missing_object_is_not_found(swift_account, swift, container):
    store = store_for(swift_account, container)
    swift.put_container(container)
    location = SwiftLocation(swift_account, container, IMAGE_ID).uri()
    for call in (store.get, store.get_size, store.delete):
        with pytest.raises(StoreNotFound) as caught:
            call(location)
        assert swift_account.key not in str(caught.value)


def test_with_a_config_file_locations_name_the_reference_and_hold_no_key(
    swift_account, swift, container, tmp_path
):
    path = tmp_path / "glance-swift.conf"
    path.write_text(
        f"[store1]\nauth_version = 1\nauth_address = {swift_account.auth_address}\n"
        f"user = {swift_account.user}\nkey = {swift_account.key}\n"
    )
    conf = conf_with(
        swift_store_config_file=str(path),
        default_swift_reference="store1",
        swift_store_container=container,
        swift_store_create_container_on_put=True,
    )
    store = from_conf(conf)
    location = store.add(IMAGE_ID, iter([b"by reference"]), 12).location
    assert location == f"swift+config://store1/{container}/{IMAGE_ID}"
    assert read_all(store, location) == b"by reference"
    assert object_names(swift, container) == [IMAGE_ID]
    store.delete(location)
    assert object_names(swift, container) == []
