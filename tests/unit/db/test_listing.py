"""image_get_all on every backend: filters, visibility, ordering and marker paging."""

import datetime
import itertools
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from glance_lite import exceptions, image_meta
from glance_lite.db import models
from tests.helpers import admin_context, make_context

ALICE = make_context("alice")
BOB = make_context("bob")
CAROL = make_context("carol")
ADMIN = admin_context("admins")
ANONYMOUS = make_context(None)
T0 = datetime.datetime(2020, 1, 1, 12, 0, 0)


def ids(images: list[dict]) -> list[str]:
    return [image["id"] for image in images]


def listed(database, context, filters=None, **kw) -> set[str]:
    return set(ids(database.image_get_all(context, filters or {}, **kw)))


def set_visibility(database, image_id: str, visibility: str) -> None:
    with database.engine.begin() as conn:
        conn.execute(
            models.images.update()
            .where(models.images.c.id == image_id)
            .values(visibility=visibility)
        )  # fmt: skip


# --- visibility ----------------------------------------------------------------------------


@pytest.fixture
def tenants(database):
    """alice: private + public; bob: two private, one shared with alice; an ownerless one."""
    made = {
        "alice_private": database.image_create(ALICE, {"is_public": False}),
        "alice_public": database.image_create(ALICE, {"is_public": True}),
        "bob_private": database.image_create(BOB, {"is_public": False}),
        "bob_shared": database.image_create(BOB, {"is_public": False}),
        "bob_community": database.image_create(BOB, {}),
        "ownerless": database.image_create(admin_context(None), {"is_public": False}),
    }
    database.image_member_set(BOB, made["bob_shared"]["id"], "alice", False)
    set_visibility(database, made["bob_community"]["id"], "community")
    return {name: image["id"] for name, image in made.items()}


def test_each_tenant_lists_public_own_and_shared(database, tenants):
    assert listed(database, ALICE) == {
        tenants["alice_private"], tenants["alice_public"], tenants["bob_shared"]
    }  # fmt: skip
    assert listed(database, BOB) == {
        tenants["bob_private"], tenants["bob_shared"], tenants["bob_community"],
        tenants["alice_public"],
    }  # fmt: skip
    assert listed(database, CAROL) == {tenants["alice_public"]}


def test_admin_lists_everything_unless_acting_as_a_user(database, tenants):
    assert listed(database, ADMIN) == set(tenants.values())
    assert listed(database, ADMIN, admin_as_user=True) == {tenants["alice_public"]}


def test_a_caller_without_owner_lists_only_public_images(database, tenants):
    # Glance listed every shared image with any live member to such a caller.
    assert listed(database, ANONYMOUS) == {tenants["alice_public"]}
    unauthenticated_admin = admin_context(None)
    assert listed(database, unauthenticated_admin, admin_as_user=True) == {
        tenants["alice_public"]
    }  # fmt: skip


def test_a_caller_without_owner_lists_what_it_may_show(database, tenants):
    for name, image_id in tenants.items():
        if image_id in listed(database, ANONYMOUS):
            assert database.image_get(ANONYMOUS, image_id)["id"] == image_id, name
    with pytest.raises(exceptions.NotFound):
        database.image_get(ANONYMOUS, tenants["bob_shared"])


def test_a_deleted_membership_stops_sharing(database, tenants):
    database.image_member_delete(BOB, tenants["bob_shared"], "alice")
    assert tenants["bob_shared"] not in listed(database, ALICE)


def test_private_visibility_is_not_shared_through_members(database, tenants):
    set_visibility(database, tenants["bob_shared"], "private")
    assert tenants["bob_shared"] not in listed(database, ALICE)


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def catalog(database):
    def make(name, **values):
        return database.image_create(ALICE, {"name": name, **values})["id"]

    return {
        "raw": make("raw", disk_format="raw", container_format="bare", size=10, min_ram=1),
        "qcow": make("qcow", disk_format="qcow2", container_format="ovf", size=20, min_disk=5),
        "iso": make("iso", disk_format="iso", size=30, protected=True, is_public=True),
        "propped": make("propped", properties={"os": "linux", "arch": "x86"}),
        "killed": make("killed", status="killed"),
        "queued": make("queued", status="queued"),
    }


FILTER_CASES = [
    ({"name": "raw"}, ["raw"]),
    ({"name": ["raw", "iso"]}, ["raw", "iso"]),
    ({"status": "queued"}, ["queued"]),
    ({"disk_format": "qcow2"}, ["qcow"]),
    ({"container_format": ["bare", "ovf"]}, ["raw", "qcow"]),
    ({"size_min": 20}, ["qcow", "iso"]),
    ({"size_max": 20}, ["raw", "qcow"]),
    ({"size_min": 15, "size_max": 25}, ["qcow"]),
    ({"min_ram": 1}, ["raw"]),
    ({"min_disk": 5}, ["qcow"]),
    ({"protected": True}, ["iso"]),
    ({"properties": {"os": "linux"}}, ["propped"]),
    ({"properties": {"os": "linux", "arch": "x86"}}, ["propped"]),
    ({"properties": {"os": "linux", "arch": "arm"}}, []),
]


def test_filters(database, catalog):
    # the catalog is only read: one build serves every case
    for filters, expected in FILTER_CASES:
        assert listed(database, ALICE, filters) == {catalog[name] for name in expected}, filters


def test_killed_and_deleted_images_are_hidden_by_default(database, catalog):
    database.image_destroy(ALICE, catalog["raw"])
    shown = listed(database, ALICE)
    assert catalog["killed"] not in shown and catalog["raw"] not in shown
    assert catalog["killed"] not in listed(database, ADMIN, {"deleted": False})


@pytest.mark.parametrize("status", ["deleted", "pending_delete"])
def test_an_image_a_delete_stopped_on_is_listed_only_by_changes_since(database, catalog, status):
    # the status a v1 delete sets first, without the removal that follows it
    database.image_update(ALICE, catalog["raw"], {"status": status})
    assert catalog["raw"] not in listed(database, ALICE)
    assert catalog["raw"] not in listed(database, ADMIN)
    assert catalog["raw"] not in listed(database, ADMIN, {"deleted": True})
    assert catalog["raw"] in listed(database, ALICE, {"changes_since": T0})


def test_deleted_filter_lists_only_deleted_rows(database, catalog):
    database.image_destroy(ALICE, catalog["raw"])
    assert listed(database, ADMIN, {"deleted": True}) == {catalog["raw"]}


def test_changes_since_includes_deleted_and_killed_rows(database, catalog):
    database.image_destroy(ALICE, catalog["raw"])
    found = listed(database, ALICE, {"changes_since": T0})
    assert found == set(catalog.values())
    future = models.utcnow() + datetime.timedelta(days=1)
    assert listed(database, ALICE, {"changes_since": future}) == set()


def test_deleted_listing_shows_pending_delete_locations(database):
    image = database.image_create(ALICE, {"location": "file:///a"})
    loc_id = image["location_data"][0]["id"]
    database.image_location_delete(ADMIN, image["id"], loc_id, "pending_delete")
    database.image_update(ALICE, image["id"], {"status": "pending_delete"})
    database.image_destroy(ALICE, image["id"])
    [found] = database.image_get_all(ADMIN, {"deleted": True, "status": "pending_delete"})
    assert [loc["status"] for loc in found["location_data"]] == ["pending_delete"]


def test_deleted_properties_do_not_match(database, catalog):
    database.image_update(ALICE, catalog["propped"], {"properties": {}}, purge_props=True)
    assert listed(database, ALICE, {"properties": {"os": "linux"}}) == set()


def test_is_public_filter_for_admins(database, catalog):
    assert listed(database, ADMIN, {"is_public": True}) == {catalog["iso"]}
    assert catalog["iso"] not in listed(database, ADMIN, {"is_public": False})


def test_limits(database, catalog):
    assert database.image_get_all(ALICE, {}, limit=0) == []
    assert len(database.image_get_all(ALICE, {}, limit=2)) == 2
    assert len(database.image_get_all(ALICE, {}, limit=None)) == 5  # all but killed


# --- ordering and paging -------------------------------------------------------------------

_DEFAULTS = {"name": "", "container_format": "", "disk_format": "", "size": 0}


def expected_order(images: list[dict], key: str, direction: str) -> list[str]:
    def sort_value(image):
        value = image[key]
        return (
            _DEFAULTS.get(key, T0) if value is None else value,
            image["created_at"],
            image["id"],
        )

    keys = [key] + [k for k in ("created_at", "id") if k != key]

    def tuple_key(image):
        return tuple(sort_value(image)[0] if k == key else image[k] for k in keys)

    return ids(sorted(images, key=tuple_key, reverse=direction == "desc"))


@pytest.fixture
def sortable(database):
    """Images with ties and NULLs in every sort key; created_at ties too."""
    rows = [
        {"name": "b", "status": "active", "disk_format": "raw", "size": 3, "created_at": T0},
        {"name": "a", "status": "queued", "disk_format": "raw", "size": 3, "created_at": T0},
        {"name": "b", "status": "active", "container_format": "bare", "created_at": T0},
        {"name": None, "status": "saving", "disk_format": "iso", "size": 1,
         "created_at": T0 + datetime.timedelta(seconds=1)},
        {"name": "c", "status": "active", "container_format": "ovf", "size": 3,
         "created_at": T0 + datetime.timedelta(seconds=2)},
    ]  # fmt: skip
    return [database.image_create(ALICE, row) for row in rows]


def test_sorting_with_tie_breakers(database, sortable):
    # the images are only read: one build serves every key and direction
    for key, direction in itertools.product(image_meta.SORT_KEYS, image_meta.SORT_DIRS):
        found = database.image_get_all(ALICE, {}, sort_key=key, sort_dir=direction)
        assert ids(found) == expected_order(found, key, direction), (key, direction)
        assert len(found) == len(sortable)


def test_marker_pages_walk_the_whole_list(database, sortable):
    keys = ["name", "size", "created_at", "container_format"]
    for key, direction in itertools.product(keys, image_meta.SORT_DIRS):
        whole = ids(database.image_get_all(ALICE, {}, sort_key=key, sort_dir=direction))
        walked, marker = [], None
        while True:
            page = database.image_get_all(
                ALICE, {}, marker=marker, limit=2, sort_key=key, sort_dir=direction
            )
            if not page:
                break
            walked += ids(page)
            marker = page[-1]["id"]
        assert walked == whole, (key, direction)


def test_an_invisible_or_missing_marker_is_invalid(database):
    hidden = database.image_create(BOB, {})
    for marker in (hidden["id"], "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(
            exceptions.Invalid, match=r"^Invalid marker. Image could not be found.$"
        ):
            database.image_get_all(ALICE, {}, marker=marker)


def test_a_deleted_marker_needs_a_deleted_listing(database):
    first = database.image_create(ALICE, {"created_at": T0})
    gone = database.image_create(ALICE, {"created_at": T0 + datetime.timedelta(seconds=5)})
    database.image_destroy(ALICE, gone["id"])
    with pytest.raises(exceptions.Invalid):
        database.image_get_all(ALICE, {}, marker=gone["id"])
    after = database.image_get_all(ALICE, {"changes_since": T0}, marker=gone["id"])
    assert ids(after) == [first["id"]]


@pytest.fixture
def sqlite_statements(sqlite_database) -> Iterator[list[str]]:
    """The SQL text the test's new connections send to SQLite (the pool starts empty)."""
    sent: list[str] = []

    def trace(dbapi_connection, _record) -> None:
        dbapi_connection.set_trace_callback(sent.append)

    sqlite_database.engine.dispose()
    sa.event.listen(sqlite_database.engine, "connect", trace)
    yield sent
    sa.event.remove(sqlite_database.engine, "connect", trace)
    sqlite_database.engine.dispose()


def test_listing_reads_children_in_two_queries(sqlite_database, sqlite_statements):
    for i in range(5):
        sqlite_database.image_create(ALICE, {"properties": {"i": str(i)}, "location": f"f:///{i}"})
    sqlite_statements.clear()
    found = sqlite_database.image_get_all(ALICE, {})
    selects = [s for s in sqlite_statements if s.lstrip().upper().startswith("SELECT")]
    assert len(found) == 5 and len(selects) == 3
