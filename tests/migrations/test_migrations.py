"""Alembic migrations on every backend, and the take-over of an existing Glance database."""

import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from glance_lite.db import api, migration, models, session
from glance_lite.db.documents import listing_json
from tests.conftest import OUR_TABLES, wipe_schema
from tests.helpers import admin_context
from tests.unit.db.documents import rendered_documents, stored_documents

LISTING_INDEX = "ix_images_deleted_created_at_id"


@pytest.fixture
def engine(db_url):
    engine = session.create_engine(db_url)
    wipe_schema(engine)
    yield engine
    wipe_schema(engine)
    engine.dispose()


def table_names(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": migration.VERSION_TABLE, "compare_type": True}
        )
        return compare_metadata(context, models.metadata)


def test_upgrade_head_then_downgrade_base(engine):
    migration.upgrade(engine)
    assert table_names(engine) == OUR_TABLES
    assert migration.current_heads(engine) == (migration.head(),)
    assert schema_differences(engine) == []
    migration.downgrade(engine, "base")
    assert table_names(engine) == {migration.VERSION_TABLE}
    assert migration.current_heads(engine) == ()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            types = conn.exec_driver_sql("SELECT typname FROM pg_type").scalars().all()
        assert "image_visibility" not in types


def test_the_baseline_keeps_glance_index_names(engine):
    migration.upgrade(engine)
    inspector = sa.inspect(engine)
    names = {index["name"] for index in inspector.get_indexes("images")}
    assert {"checksum_image_idx", "visibility_image_idx", "ix_images_deleted",
            "owner_image_idx", "created_at_image_idx", "updated_at_image_idx"} <= names  # fmt: skip


def test_scripts_are_found_through_the_package():
    location = migration.script_location()
    assert (location / "env.py").is_file()
    assert migration.revisions() == ["0003", "0002", migration.BASELINE]


# --- taking over a Glance database ---------------------------------------------------------


def make_glance_database(engine, revision: str | None = "queens_contract01") -> None:
    """Glance's Queens tables (our baseline, without our version table), plus Glance's
    alembic_version holding `revision`."""
    migration.upgrade(engine, migration.BASELINE)
    with session.writer(engine).begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {migration.VERSION_TABLE}")
        if revision is not None:
            conn.exec_driver_sql(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
            )
            conn.execute(
                sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision}
            )


def glance_revisions(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()


def test_a_glance_database_is_adopted_and_its_version_kept(engine):
    make_glance_database(engine)
    assert migration.adopt_glance_database(engine) == ["queens_contract01"]
    assert migration.current_heads(engine) == (migration.BASELINE,)
    assert glance_revisions(engine) == ["queens_contract01"]
    migration.upgrade(engine)
    assert migration.current_heads(engine) == (migration.head(),)


@pytest.mark.parametrize(
    "revision",
    ["queens_expand01", "rocky_contract02", "wallaby_expand01", "2024_1_contract01",
     "2025_1_expand01"],
)  # fmt: skip
def test_every_glance_revision_from_queens_on_is_accepted(revision):
    assert migration.is_glance_revision(revision)


@pytest.mark.parametrize("revision", ["pike_contract01", "ocata01", "liberty", "abc123"])
def test_older_or_foreign_revisions_are_not(revision):
    assert not migration.is_glance_revision(revision)


def test_a_glance_database_missing_a_column_is_refused(sqlite_url, tmp_path):
    engine = session.create_engine(f"sqlite:///{tmp_path}/glance.sqlite")
    make_glance_database(engine)
    with session.writer(engine).begin() as conn:
        conn.exec_driver_sql("ALTER TABLE images DROP COLUMN virtual_size")
    with pytest.raises(migration.MigrationError, match=r"images\.virtual_size"):
        migration.adopt_glance_database(engine)
    assert migration.VERSION_TABLE not in table_names(engine)


@pytest.mark.parametrize("revision", ["pike_contract01", None])
def test_other_databases_with_tables_are_refused(tmp_path, revision):
    engine = session.create_engine(f"sqlite:///{tmp_path}/other.sqlite")
    make_glance_database(engine, revision)
    with pytest.raises(migration.MigrationError, match="Nothing was changed"):
        migration.adopt_glance_database(engine)
    assert migration.VERSION_TABLE not in table_names(engine)


def test_empty_and_own_databases_need_no_adoption(tmp_path):
    engine = session.create_engine(f"sqlite:///{tmp_path}/fresh.sqlite")
    assert migration.adopt_glance_database(engine) == []
    migration.upgrade(engine)
    assert migration.adopt_glance_database(engine) == []


# --- 0002: listing documents ------------------------------------------------------------------

T0 = datetime.datetime(2021, 2, 3, 4, 5, 6)


def insert_glance_rows(engine) -> list[str]:
    """Images and properties as Glance writes them: no listing document."""
    glance_columns = [c for c in models.images.c if c.name != "listing_doc"]
    images = sa.table("images", *(sa.column(c.name, c.type) for c in glance_columns))
    props = sa.table(
        "image_properties", *(sa.column(c.name, c.type) for c in models.image_properties.c)
    )
    base = {
        "name": None, "disk_format": None, "container_format": None, "size": None,
        "virtual_size": None, "status": "active", "visibility": "shared", "checksum": None,
        "min_disk": 0, "min_ram": 0, "owner": None, "protected": False, "created_at": T0,
        "updated_at": T0, "deleted_at": None, "deleted": False,
    }  # fmt: skip
    rows = [
        {**base, "id": "00000000-0000-0000-0000-00000000000a", "name": "n\u00e9 \"q\"",
         "visibility": "public", "size": 2**40, "owner": "alice", "protected": True},
        {**base, "id": "00000000-0000-0000-0000-00000000000b", "visibility": "community",
         "status": "deleted", "deleted": True, "deleted_at": T0},
        {**base, "id": "00000000-0000-0000-0000-00000000000c", "visibility": "private",
         "disk_format": "raw", "container_format": "bare", "checksum": "c" * 32},
    ]  # fmt: skip
    prop = {"created_at": T0, "updated_at": T0, "deleted_at": None, "deleted": False}
    with session.writer(engine).begin() as conn:
        conn.execute(images.insert(), rows)
        conn.execute(
            props.insert(),
            [
                {**prop, "image_id": rows[0]["id"], "name": "b", "value": "2"},
                {**prop, "image_id": rows[0]["id"], "name": "a", "value": None},
                {**prop, "image_id": rows[1]["id"], "name": "gone", "value": "x",
                 "deleted": True, "deleted_at": T0},
                {**prop, "image_id": rows[2]["id"], "name": "kernel", "value": "\\k"},
            ],
        )  # fmt: skip
    return [row["id"] for row in rows]


def assert_documents_rendered(engine, ids) -> None:
    stored = stored_documents(engine)
    assert set(stored) == set(ids)
    assert stored == rendered_documents(engine)
    database = api.Database(engine)
    admin = admin_context("admins")
    listed = database.image_get_all_documents(admin, {"changes_since": T0 - datetime.timedelta(1)})
    expected = database.image_get_all(admin, {"changes_since": T0 - datetime.timedelta(1)})
    assert listed.decode() == ", ".join(listing_json(i) for i in expected)


def test_0002_renders_the_documents_of_a_populated_0001_database(engine):
    migration.upgrade(engine, migration.BASELINE)
    ids = insert_glance_rows(engine)
    migration.upgrade(engine)
    assert_documents_rendered(engine, ids)
    assert LISTING_INDEX in {index["name"] for index in sa.inspect(engine).get_indexes("images")}


def test_an_adopted_glance_database_gets_its_documents(engine):
    make_glance_database(engine)
    ids = insert_glance_rows(engine)
    assert migration.adopt_glance_database(engine) == ["queens_contract01"]
    migration.upgrade(engine)
    assert migration.current_heads(engine) == (migration.head(),)
    assert_documents_rendered(engine, ids)


def test_0002_downgrades_to_glance_schema(engine):
    migration.upgrade(engine)
    migration.downgrade(engine, migration.BASELINE)
    inspector = sa.inspect(engine)
    assert "listing_doc" not in {column["name"] for column in inspector.get_columns("images")}
    assert LISTING_INDEX not in {index["name"] for index in inspector.get_indexes("images")}
    assert migration.missing_schema(inspector) == []
    migration.upgrade(engine)
    assert schema_differences(engine) == []


def test_running_0002_again_renders_every_document_again(engine):
    migration.upgrade(engine)
    ids = insert_glance_rows(engine)
    with session.writer(engine).begin() as conn:
        conn.exec_driver_sql("UPDATE images SET listing_doc = '{\"stale\": true}'")
    migration.stamp(engine, migration.BASELINE)
    migration.upgrade(engine)
    assert_documents_rendered(engine, ids)


# --- 0003: upload leases ------------------------------------------------------------------


def test_an_adopted_glance_database_gets_the_lease_table_and_keeps_saving_images(engine):
    make_glance_database(engine)
    ids = insert_glance_rows(engine)
    with session.writer(engine).begin() as conn:
        conn.execute(sa.text("UPDATE images SET status = 'saving' WHERE id = :id"), {"id": ids[0]})
    migration.adopt_glance_database(engine)
    migration.upgrade(engine)
    inspector = sa.inspect(engine)
    assert "image_leases" in inspector.get_table_names()
    assert "ix_images_status" in {index["name"] for index in inspector.get_indexes("images")}
    assert glance_revisions(engine) == ["queens_contract01"]
    # an image Glance left saving has no lease: a sweep judges it by its updated_at
    database = api.Database(engine)
    assert database.image_get(admin_context(None), ids[0])["status"] == "saving"
    killed = database.image_leases_sweep(admin_context(None), grace=60, limit=10)
    assert [lease["image_id"] for lease in killed] == [ids[0]]


def test_0003_downgrades_to_0002(engine):
    migration.upgrade(engine)
    migration.downgrade(engine, "0002")
    inspector = sa.inspect(engine)
    assert "image_leases" not in inspector.get_table_names()
    assert "ix_images_status" not in {index["name"] for index in inspector.get_indexes("images")}
    migration.upgrade(engine)
    assert schema_differences(engine) == []
