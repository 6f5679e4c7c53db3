"""The store contract (tests/unit/store/test_contract.py, the same checks) against a
real S3 API (Swift's s3api): once with single PUTs, once with every image a multipart
upload of 5 MiB parts. What the driver holds counts begun multipart uploads too."""

import pytest

from glance_lite.store.s3 import MIN_PART, S3Store
from tests.functional.stores.conftest import bucket_keys, bucket_uploads
from tests.unit.store.test_contract import *  # noqa: F403 - the shared checks
from tests.unit.store.test_contract import Backend

pytestmark = pytest.mark.functional

LAYOUTS = {"single": {}, "multipart": {"large_object_size": 1, "chunk_size": MIN_PART}}


@pytest.fixture(params=sorted(LAYOUTS))
def backend(request, s3_endpoint, s3, bucket) -> Backend:
    url, key, secret = s3_endpoint
    store = S3Store(
        url, key, secret, bucket, create_bucket=True, addressing="path", **LAYOUTS[request.param]
    )
    return Backend(store, lambda: bucket_keys(s3, bucket) + bucket_uploads(s3, bucket))
