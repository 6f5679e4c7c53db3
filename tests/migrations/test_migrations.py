"""Alembic migrations on every backend, and the take-over of an existing Glance database."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from glance_lite.db import migration, models, session
from tests.conftest import OUR_TABLES, wipe_schema


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
    assert migration.revisions() == [migration.BASELINE]


# --- taking over a Glance database ---------------------------------------------------------


def make_glance_database(engine, revision: str | None = "queens_contract01") -> None:
    """Our tables made from the models, plus Glance's alembic_version holding `revision`."""
    with session.writer(engine).begin() as conn:
        models.metadata.create_all(conn)
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
