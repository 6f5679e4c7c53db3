"""The real Swift the store tests run against, from GLANCE_LITE_TEST_SWIFT_AUTH,
GLANCE_LITE_TEST_SWIFT_USER and GLANCE_LITE_TEST_SWIFT_KEY (tempauth, version 1), as
.ci/services/start-swift.sh prints them. Unset or unreachable: skipped, or failed
under CI=true. Each test gets a container of its own, emptied and removed afterwards.
"""

import os
import uuid
from collections.abc import Iterator

import pytest
import swiftclient

from glance_lite.store.swift_account import Account
from tests.conftest import unavailable

SWIFT_ENV = (
    "GLANCE_LITE_TEST_SWIFT_AUTH",
    "GLANCE_LITE_TEST_SWIFT_USER",
    "GLANCE_LITE_TEST_SWIFT_KEY",
)


@pytest.fixture(scope="session")
def swift_account() -> Account:
    values = [os.environ.get(name) for name in SWIFT_ENV]
    if not all(values):
        unavailable(f"{', '.join(SWIFT_ENV)} are not set; the swift store tests need a Swift")
    account = Account(*values, auth_version="1")
    try:
        swiftclient.get_auth(account.auth_address, account.user, account.key, timeout=10)
    except Exception as err:  # any failure means: no usable Swift here
        unavailable(f"Swift at {account.auth_address} is not usable: {err}")
    return account


@pytest.fixture
def swift(swift_account) -> Iterator[swiftclient.Connection]:
    """A plain swiftclient connection to the test account: what Glance, or an operator,
    sees in Swift."""
    conn = swiftclient.Connection(
        swift_account.auth_address, swift_account.user, swift_account.key, retries=1
    )
    yield conn
    conn.close()


@pytest.fixture
def container(swift) -> Iterator[str]:
    """A fresh container name (not created); whatever it holds is removed afterwards."""
    name = f"gl-test-{uuid.uuid4().hex[:12]}"
    yield name
    remove_container(swift, name)


def remove_container(swift: swiftclient.Connection, name: str) -> None:
    try:
        _, listing = swift.get_container(name, full_listing=True)
    except swiftclient.ClientException as err:
        if err.http_status == 404:
            return
        raise
    for entry in listing:
        swift.delete_object(name, entry["name"])
    swift.delete_container(name)


def object_names(swift: swiftclient.Connection, name: str) -> list[str]:
    """The objects in container `name` ([] if it does not exist)."""
    try:
        return sorted(o["name"] for o in swift.get_container(name, full_listing=True)[1])
    except swiftclient.ClientException as err:
        if err.http_status == 404:
            return []
        raise
