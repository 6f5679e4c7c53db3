"""GET /images/detail with X-Glance-Registry-Omit-Locations: true, on every backend.

The registry joins the stored listing documents into the body; it must be, byte for
byte, the JSON of the detail listing with the location keys left out.
"""

import json

import pytest

from glance_lite.registry import headers
from tests.unit.db.documents import clear_documents
from tests.unit.registry.conftest import Registry

OMIT = {headers.OMIT_LOCATIONS: "true"}
QUERIES = [
    "",
    "is_public=none",
    "is_public=none&sort_key=name&sort_dir=asc",
    "is_public=none&property-distro=debian&limit=2",
    "is_public=none&size_min=5&sort_key=size",
    "is_public=none&changes-since=2019-01-01T00:00:00Z",
    "is_public=none&deleted=true",
    "is_public=none&name=in:a,c&container_format=bare",
    "is_public=none&limit=0",
]


@pytest.fixture
def any_registry(database) -> Registry:
    return Registry(database, limit_param_default=25, api_limit_max=1000)


@pytest.fixture
def images(any_registry) -> list[str]:
    admin = any_registry.admin
    made = [
        admin.create(
            name=name,
            size=size,
            is_public=public,
            container_format="bare",
            created_at=f"2020-01-0{n + 1}T00:00:00.25",
            properties={"distro": distro, "quote": 'say "hi" \\ \u00e9'},
            location=f"file:///{n}",
        )["id"]
        for n, (name, size, public, distro) in enumerate(
            [("a", 1, True, "debian"), ("b", 5, False, "debian"), ("c", 9, True, "cirros"),
             (None, None, True, "debian")]
        )
    ]  # fmt: skip
    assert admin.delete(f"/images/{made[1]}").status_int == 200
    return made


def without_locations(body: bytes) -> bytes:
    listing = json.loads(body)
    for image in listing["images"]:
        del image["location"], image["location_data"]
    return json.dumps(listing).encode()


def both(caller, query: str):
    full = caller.get(f"/images/detail?{query}")
    omitted = caller.get(f"/images/detail?{query}", headers=OMIT)
    assert full.status_int == omitted.status_int == 200, (full.text, omitted.text)
    assert omitted.headers["Content-Type"] == full.headers["Content-Type"]
    return full, omitted


def test_the_omitted_listing_is_the_detail_listing_without_locations(any_registry, images):
    for query in QUERIES:  # the images are only read: one build serves every query
        full, omitted = both(any_registry.admin, query)
        assert omitted.body == without_locations(full.body), query


def test_rows_without_documents_list_the_same_bytes(any_registry, images):
    expected = [both(any_registry.admin, query)[1].body for query in QUERIES]
    clear_documents(any_registry.database.engine, images[:2])
    for query, body in zip(QUERIES, expected, strict=True):
        assert both(any_registry.admin, query)[1].body == body, query


def test_tenants_and_markers_get_the_same_bytes_as_without_the_header(any_registry, images):
    alice = any_registry.tenant("alice")
    mine = alice.create(name="mine", properties={"k": "v"})["id"]
    for query in ("", "limit=1", f"marker={mine}", f"marker={images[2]}&sort_key=name"):
        full, omitted = both(alice, query)
        assert omitted.body == without_locations(full.body)


def test_an_empty_listing_and_errors_look_the_same(any_registry):
    full, omitted = both(any_registry.admin, "")
    assert omitted.body == full.body == b'{"images": []}'
    bad = any_registry.admin.get("/images/detail?marker=bogus", headers=OMIT)
    assert bad.status_int == 400 and "Invalid marker format" in bad.text
