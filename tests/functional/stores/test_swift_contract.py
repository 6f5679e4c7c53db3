"""The store contract (tests/unit/store/test_contract.py, the same checks) against a
real Swift: once with images as single objects, once with every image in segments of
1,400,000 bytes and a manifest, as large images are written. (Swift serves the
segments after the tenth at one a second by default, hence segments no smaller: the
largest image here makes nine.)"""

import functools

import pytest

from glance_lite.store.swift import SwiftStore
from tests.functional.stores.conftest import object_names
from tests.unit.store.test_contract import *  # noqa: F403 - the shared checks
from tests.unit.store.test_contract import Backend

pytestmark = pytest.mark.functional

LAYOUTS = {
    "single": {},
    "segments": {"large_object_size": 1, "chunk_size": 1_400_000},
}


@pytest.fixture(params=sorted(LAYOUTS))
def backend(request, swift_account, swift, container) -> Backend:
    store = SwiftStore(
        {"ref1": swift_account},
        "ref1",
        container=container,
        create_container=True,
        **LAYOUTS[request.param],
    )
    return Backend(store, functools.partial(object_names, swift, container))
