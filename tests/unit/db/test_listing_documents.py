"""images.listing_doc on every backend: every write keeps it equal to what the rows say,
and the document listing (image_get_all_documents) lists what image_get_all lists."""

import datetime
import json

import pytest

from glance_lite import exceptions, image_meta
from glance_lite.db.documents import listing_json
from tests.helpers import admin_context, make_context
from tests.unit.db.documents import clear_documents, rendered_documents, stored_documents

ALICE = make_context("alice")
BOB = make_context("bob")
ADMIN = admin_context("admins")
T0 = datetime.datetime(2020, 1, 1, 12, 0, 0)


def assert_documents_fresh(database) -> None:
    stored = stored_documents(database.engine)
    assert stored == rendered_documents(database.engine)
    assert None not in stored.values()


def listed(database, context, filters=None, **kw) -> list[dict]:
    """The entries of a document listing, which come as JSON objects joined with ", "."""
    found = database.image_get_all_documents(context, filters or {}, **kw)
    assert isinstance(found, bytes)
    return json.loads(b"[" + found + b"]")


def documents(database, context, filters=None, **kw) -> str:
    return database.image_get_all_documents(context, filters or {}, **kw).decode()


def slow_documents(database, context, filters=None, **kw) -> str:
    """What the document listing must give, byte for byte."""
    return ", ".join(listing_json(i) for i in database.image_get_all(context, filters or {}, **kw))


def test_creates_store_the_document_they_show(database):
    database.image_create(ALICE, {})
    database.image_create(ALICE, {"name": 'n\u00e9 "q" \\', "properties": {"a": "1", "b": None}})
    database.image_create(
        ADMIN,
        {
            "id": "0b7e2a2c-6c5f-4e2b-9a0a-0000000000aa",
            "status": "queued",
            "is_public": True,
            "size": 2**40,
            "virtual_size": 7,
            "disk_format": "raw",
            "container_format": "bare",
            "checksum": "c" * 32,
            "owner": "someone",
            "protected": True,
            "min_disk": 3,
            "min_ram": 4,
            # microseconds: MySQL keeps whole seconds, and so must the document
            "created_at": datetime.datetime(2016, 5, 10, 21, 35, 15, 123456),
            "updated_at": datetime.datetime(2016, 5, 10, 19, 35, 16, 654321),
            "deleted_at": None,
        },
    )
    database.image_create(ALICE, {"location": "file:///a", "properties": {"x": "y"}})
    database.image_create(ALICE, {"deleted": True, "deleted_at": T0, "status": "deleted"})
    assert_documents_fresh(database)


def test_every_write_keeps_the_documents_fresh(database):
    plain = database.image_create(ALICE, {"name": "plain"})["id"]
    propped = database.image_create(
        ALICE, {"name": "propped", "properties": {"os": "linux", "arch": "x86", "z": None}}
    )["id"]
    located = database.image_create(ALICE, {"status": "queued", "location": "file:///a"})
    assert_documents_fresh(database)

    # merge: change one, add one; purge: drop the others; revive a dropped one
    database.image_update(ALICE, propped, {"properties": {"os": "bsd", "new": "1"}})
    assert_documents_fresh(database)
    database.image_update(ALICE, propped, {"properties": {"new": "2"}}, purge_props=True)
    assert_documents_fresh(database)
    database.image_update(ALICE, propped, {"properties": {"os": "again", "arch": "arm"}})
    assert_documents_fresh(database)
    assert json.loads(stored_documents(database.engine)[propped])["properties"] == {
        "os": "again", "arch": "arm", "new": "2"
    }  # fmt: skip

    # core fields, status transitions, a refused transition
    database.image_update(ALICE, plain, {"name": "renamed", "min_ram": 5, "is_public": True})
    database.image_update(ALICE, located["id"], {"status": "saving"}, from_state="queued")
    with pytest.raises(exceptions.Conflict):
        database.image_update(ALICE, located["id"], {"status": "active"}, from_state="queued")
    database.image_update(
        ALICE,
        located["id"],
        {"status": "active", "size": 12, "checksum": "a" * 32},
        from_state="saving",
    )
    assert_documents_fresh(database)

    # locations: replace the list, delete one by id
    loc_id = database.image_get(ALICE, located["id"])["location_data"][0]["id"]
    database.image_update(
        ALICE,
        located["id"],
        {"location_data": [
            {"id": loc_id, "url": "file:///a", "metadata": {"k": "v"}, "status": "active"},
            {"url": "file:///b", "metadata": {}, "status": "active"},
        ]},
    )  # fmt: skip
    database.image_location_delete(ADMIN, located["id"], loc_id, "pending_delete")
    assert_documents_fresh(database)

    # members change who sees an image, not what its entry shows
    database.image_member_set(ALICE, plain, "bob", True)
    database.image_members_replace(ALICE, propped, {"carol": None})
    database.image_member_delete(ALICE, plain, "bob")
    assert_documents_fresh(database)

    # delete: deleted, deleted_at, updated_at, and the properties go
    database.image_destroy(ALICE, propped)
    database.image_destroy(ALICE, located["id"])
    assert_documents_fresh(database)
    assert json.loads(stored_documents(database.engine)[propped])["properties"] == {}


@pytest.fixture
def catalog(database):
    made = []
    for n in range(6):
        made.append(
            database.image_create(
                ALICE if n % 2 else BOB,
                {
                    "name": f"img{n}" if n != 3 else None,
                    "size": n * 10,
                    "is_public": n % 3 == 0,
                    "created_at": T0 + datetime.timedelta(seconds=n // 2),
                    "properties": {"parity": "odd" if n % 2 else "even", "n": str(n)},
                    "status": "killed" if n == 5 else "active",
                },
            )["id"]
        )
    database.image_member_set(BOB, made[2], "alice", False)
    database.image_destroy(BOB, made[4])
    return made


QUERIES = [
    (ADMIN, {}, {}),
    (ADMIN, {}, {"admin_as_user": True}),
    (ALICE, {}, {}),
    (BOB, {"properties": {"parity": "even"}}, {}),
    (ADMIN, {"changes_since": T0}, {"sort_key": "name", "sort_dir": "asc"}),
    (ADMIN, {"deleted": True}, {}),
    (ADMIN, {"name": ["img0", "img2"], "is_public": True}, {}),
    (ADMIN, {"size_min": 10, "size_max": 30}, {"sort_key": "size", "limit": 2}),
    (ALICE, {}, {"sort_key": "updated_at", "sort_dir": "asc", "limit": 1}),
    # with a limit, SQLite joins the entries itself: in the listing's order
    (ADMIN, {}, {"limit": 1000}),
    (ALICE, {}, {"sort_key": "name", "sort_dir": "asc", "limit": 50}),
    (ADMIN, {"changes_since": T0}, {"sort_key": "size", "sort_dir": "desc", "limit": 3}),
    (BOB, {"is_public": None}, {"sort_key": "id", "limit": 7}),
]


def test_the_document_listing_lists_what_the_image_listing_does(database, catalog):
    # one catalog for every query: each is asked with all documents stored, then again
    # once half of them are gone
    expected = [
        slow_documents(database, context, filters, **kw) for context, filters, kw in QUERIES
    ]
    for (context, filters, kw), want in zip(QUERIES, expected, strict=True):
        assert documents(database, context, filters, **kw) == want, (filters, kw)
    clear_documents(database.engine, catalog[::2])
    for (context, filters, kw), want in zip(QUERIES, expected, strict=True):
        assert documents(database, context, filters, **kw) == want, (filters, kw)


def test_documents_page_with_markers_like_the_image_listing(database, catalog):
    for key in ("created_at", "name", "size"):
        walked, marker = [], None
        while True:
            page = listed(database, ADMIN, {}, marker=marker, limit=2, sort_key=key, sort_dir="asc")
            if not page:
                break
            walked += [entry["id"] for entry in page]
            marker = walked[-1]
        whole = database.image_get_all(ADMIN, {}, sort_key=key, sort_dir="asc")
        assert walked == [image["id"] for image in whole]


def test_rows_without_a_document_are_rendered_from_their_rows(database, catalog):
    clear_documents(database.engine)
    assert documents(database, ADMIN, {"changes_since": T0}) == slow_documents(
        database, ADMIN, {"changes_since": T0}
    )
    assert set(stored_documents(database.engine).values()) == {None}  # a read writes nothing


def test_the_document_listing_pages_like_the_image_listing(database, catalog):
    with pytest.raises(exceptions.Invalid, match="Invalid marker"):
        database.image_get_all_documents(ALICE, {}, marker=catalog[4])  # deleted
    assert database.image_get_all_documents(ALICE, {}, limit=0) == b""


def test_rebuild_renders_every_document_again(database, catalog):
    clear_documents(database.engine, catalog[:3])
    assert database.rebuild_listing_documents() == len(catalog)
    assert_documents_fresh(database)


def test_the_index_listing_has_the_brief_fields(database, catalog):
    brief = database.image_get_all_index(ADMIN, {}, sort_key="name")
    full = database.image_get_all(ADMIN, {}, sort_key="name")
    assert brief == [{key: image[key] for key in image_meta.INDEX_FIELDS} for image in full]
