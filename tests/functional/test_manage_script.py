"""glance-manage as installed: the console script for db_sync, db_version and purge,
and its usage, each in a process of its own."""

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from glance_lite.db import api, migration, models, session
from tests.conftest import wipe_schema
from tests.helpers import make_context

SCRIPT = Path(sys.executable).parent / "glance-manage"


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "glance-manage.conf"
    path.write_text(f"[database]\nconnection = {url}\n")
    return path


def run_script(conf: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), "--config-file", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sqlite_conf(tmp_path) -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path}/glance.sqlite"
    return write_config(tmp_path, url), url


def test_sync_then_version_through_the_console_script(db_url, tmp_path):
    engine = session.create_engine(db_url)
    wipe_schema(engine)
    conf = write_config(tmp_path, db_url)
    first = run_script(conf, "db_sync")
    assert (first.returncode, first.stdout) == (0, "Database is synced successfully.\n")
    again = run_script(conf, "db", "sync")
    assert again.stdout == "Database is up to date. No migrations needed.\n"
    version = run_script(conf, "db_version")
    assert (version.returncode, version.stdout) == (0, f"{migration.head()}\n")
    assert "alembic_version" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_purge_through_the_console_script(sqlite_conf):
    conf, url = sqlite_conf
    db = api.Database.from_url(url)
    migration.upgrade(db.engine)
    image = db.image_create(make_context("alice"), {"properties": {"a": "b"}})
    db.image_destroy(make_context("alice"), image["id"])
    with db.engine.begin() as conn:
        old = models.utcnow() - datetime.timedelta(days=40)
        for table in (models.images, models.image_properties):
            conn.execute(table.update().values(deleted_at=old))
    done = run_script(conf, "db", "purge", "--age_in_days", "30", "--max_rows", "10")
    assert done.returncode == 0, done.stderr
    assert "Deleted 1 row(s) from table images" in done.stderr
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(models.images)).scalar() == 0
    bad = run_script(conf, "db", "purge", "--age_in_days", "soon")
    assert (bad.returncode, bad.stderr.strip()) == (1, "Invalid int value for age_in_days: soon")
    db.dispose()


def test_no_arguments_prints_the_usage_and_exits_2():
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        "glance-manage category action [<args>]", "Available categories:", "\tdb"
    ]  # fmt: skip
