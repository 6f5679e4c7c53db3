"""The real Swift the store tests run against, from GLANCE_LITE_TEST_SWIFT_AUTH,
GLANCE_LITE_TEST_SWIFT_USER and GLANCE_LITE_TEST_SWIFT_KEY (tempauth, version 1), as
.ci/services/start-swift.sh prints them, and its S3 API from GLANCE_LITE_TEST_S3_URL,
_S3_KEY and _S3_SECRET (start-s3.sh). Unset or unreachable: skipped, or failed under
CI=true. Each test gets a container (bucket) of its own, emptied and removed afterwards.
"""

import os
import uuid
from collections.abc import Iterator

import boto3
import botocore.config
import pytest
import swiftclient

from glance_lite.store.swift_account import Account
from tests.conftest import unavailable

S3_ENV = ("GLANCE_LITE_TEST_S3_URL", "GLANCE_LITE_TEST_S3_KEY", "GLANCE_LITE_TEST_S3_SECRET")
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


@pytest.fixture(scope="session")
def s3_endpoint() -> tuple[str, str, str]:
    """(endpoint URL, access key, secret key) of a usable S3 endpoint."""
    values = tuple(os.environ.get(name) for name in S3_ENV)
    if not all(values):
        unavailable(f"{', '.join(S3_ENV)} are not set; the s3 store tests need an S3 endpoint")
    try:
        s3_client(values).list_buckets()
    except Exception as err:  # any failure means: no usable endpoint here
        unavailable(f"S3 at {values[0]} is not usable: {err}")
    return values


def s3_client(endpoint: tuple[str, str, str]):
    url, key, secret = endpoint
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3(s3_endpoint):
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3) -> Iterator[str]:
    """A fresh bucket name (not created); its objects, uploads and itself go afterwards."""
    name = f"gl-test-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        for entry in bucket_uploads(s3, name):
            s3.abort_multipart_upload(Bucket=name, Key=entry[0], UploadId=entry[1])
        for key in bucket_keys(s3, name):
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass


def bucket_keys(s3, name: str) -> list[str]:
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=name)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    except s3.exceptions.NoSuchBucket:
        return []


def bucket_uploads(s3, name: str) -> list[tuple[str, str]]:
    """The multipart uploads begun and neither completed nor aborted: (key, id)."""
    try:
        uploads = s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
    except s3.exceptions.NoSuchBucket:
        return []
    return [(u["Key"], u["UploadId"]) for u in uploads]
