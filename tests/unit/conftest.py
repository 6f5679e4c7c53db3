"""The unit tests run in-process on SQLite alone, so that they need no server and run in
seconds. tests/backends runs the ones that take `db_url` again on PostgreSQL and MariaDB."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from glance_lite.db import migration, session
from tests.conftest import backend_url


@pytest.fixture(params=["sqlite"])
def db_url(request) -> Iterator[str]:
    yield from backend_url(request)


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file migrated to head once per session, for tests to copy."""
    path = tmp_path_factory.mktemp("template") / "glance.sqlite"
    engine = session.create_engine(f"sqlite:///{path}")
    migration.upgrade(engine)
    engine.dispose()  # the last connection closed: the write-ahead log is in the file
    return path


@pytest.fixture
def migrated_sqlite_url(tmp_path, migrated_sqlite_template) -> str:
    """A database of the test's own in a new SQLite file, at head and empty: a copy of
    the template (1 ms, where running the migrations takes 100 ms)."""
    path = tmp_path / "glance.sqlite"
    shutil.copyfile(migrated_sqlite_template, path)
    return f"sqlite:///{path}"
