"""glance-manage through main(), in this process (tests/functional/test_manage_script.py
runs the installed console script)."""

import json
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from glance_lite.cmd import manage
from glance_lite.context import RequestContext
from glance_lite.db import api, migration, session
from tests.migrations.test_migrations import make_glance_database


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "glance-manage.conf"
    path.write_text(f"[database]\nconnection = {url}\n")
    return path


@pytest.fixture
def sqlite_conf(tmp_path) -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path}/glance.sqlite"
    return write_config(tmp_path, url), url


@pytest.fixture
def in_process(monkeypatch, capsys):
    """Call main() in this process (without touching pytest's logging set-up)."""
    monkeypatch.setattr(manage.log, "setup", lambda conf, service: None)
    monkeypatch.setattr(manage, "default_config_files", list)

    def call(conf: Path, *args: str) -> tuple[int, str, str]:
        try:
            manage.main(["--config-file", str(conf), *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--age_in_days", "-1"], "Must supply a non-negative value for age."),
        (["--age_in_days", "100000"], "Maximal age is count of days since epoch."),
        (["--max_rows", "0"], "Minimal rows limit is 1."),
        (["--max_rows", "many"], "Invalid int value for max_rows: many"),
    ],
)
def test_purge_validation(in_process, sqlite_conf, args, message):
    code, _, err = in_process(sqlite_conf[0], "db", "purge", *args)
    assert (code, err.strip()) == (1, message)


def test_new_and_legacy_commands(in_process, sqlite_conf):
    conf = sqlite_conf[0]
    code, out, _ = in_process(conf, "db", "version")
    assert code == 0 and 'run "glance-manage db sync"' in out
    assert in_process(conf, "db_version_control")[1] == (
        "Placed database under migration control at revision: 0001\n"
    )
    head = migration.head()
    assert in_process(conf, "db", "upgrade")[1] == (
        f"Upgraded database, current revision(s): {head}\n"
    )
    assert in_process(conf, "db_upgrade", "0001")[1] == (
        f"Upgraded database to: 0001, current revision(s): {head}\n"
    )
    assert in_process(conf, "db", "version_control", "--version", "0001")[0] == 0


def test_an_unknown_revision_is_an_error(in_process, sqlite_conf):
    code, _, err = in_process(sqlite_conf[0], "db", "upgrade", "--version", "nope")
    assert code == 1 and err.startswith("ERROR: Can't locate revision")


def test_a_missing_config_file_is_an_error(in_process, tmp_path):
    code, _, err = in_process(tmp_path / "absent.conf", "db", "version")
    assert code == 1 and err.startswith("ERROR: Failed to find some config files")


def test_an_unreachable_database_is_an_error(in_process, tmp_path):
    conf = write_config(tmp_path, "postgresql://glance:pw-x@127.0.0.1:1/glance")
    code, _, err = in_process(conf, "db", "version")
    assert code == 1 and err.startswith("ERROR: Could not reach the image database")
    assert "pw-x" not in err


def test_sync_takes_over_a_glance_database(in_process, sqlite_conf):
    conf, url = sqlite_conf
    engine = session.create_engine(url)
    make_glance_database(engine, "rocky_contract02")
    code, out, _ = in_process(conf, "db", "sync")
    assert code == 0
    assert out.splitlines()[-1] == "Database is synced successfully."
    assert "rocky_contract02" in out
    assert migration.current_heads(engine) == (migration.head(),)


def test_sync_names_missing_columns_and_changes_nothing(in_process, sqlite_conf):
    conf, url = sqlite_conf
    engine = session.create_engine(url)
    make_glance_database(engine)
    with session.writer(engine).begin() as conn:
        conn.exec_driver_sql("ALTER TABLE image_members DROP COLUMN status")
    code, _, err = in_process(conf, "db_sync")
    assert code == 1 and err.startswith("Failed to sync database: ERROR: ")
    assert "image_members.status" in err
    assert migration.VERSION_TABLE not in sa.inspect(engine).get_table_names()


def test_sync_refuses_a_database_that_is_not_glance(in_process, sqlite_conf):
    conf, url = sqlite_conf
    engine = session.create_engine(url)
    make_glance_database(engine, "some_other_app_rev")
    code, _, err = in_process(conf, "db", "sync")
    assert code == 1 and "not a Glance database from Queens or later" in err
    assert migration.VERSION_TABLE not in sa.inspect(engine).get_table_names()


def test_rebuild_listings_renders_stale_and_missing_entries_again(
    in_process, tmp_path, migrated_sqlite_url
):
    conf = write_config(tmp_path, migrated_sqlite_url)
    db = api.Database.from_url(migrated_sqlite_url)
    ctx = RequestContext(is_admin=True)
    first = db.image_create(ctx, {"name": "one", "status": "active", "properties": {"a": "1"}})
    second = db.image_create(ctx, {"name": "two", "status": "queued"})
    # another program rewrites one row behind glance-lite's back and leaves one without
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE images SET name = 'renamed' WHERE id = :id"), {"id": first["id"]}
        )
        conn.execute(
            sa.text("UPDATE images SET listing_doc = NULL WHERE id = :id"), {"id": second["id"]}
        )
    code, out, _ = in_process(conf, "db", "rebuild_listings")
    assert (code, out) == (0, "Rebuilt the listing entries of 2 image(s).\n")
    with db.engine.connect() as conn:
        docs = dict(conn.execute(sa.text("SELECT id, listing_doc FROM images")).all())
    assert json.loads(docs[first["id"]])["name"] == "renamed"
    assert json.loads(docs[first["id"]])["properties"] == {"a": "1"}
    assert json.loads(docs[second["id"]])["name"] == "two"
    db.dispose()


def test_rebuild_listings_wants_an_up_to_date_database(in_process, sqlite_conf):
    code, _, err = in_process(sqlite_conf[0], "db", "rebuild_listings")
    assert code == 1 and 'run "glance-manage db sync" first' in err
