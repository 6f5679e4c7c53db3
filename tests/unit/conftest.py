"""The unit tests run in-process on SQLite alone, so that they need no server and run in
seconds. tests/backends runs the ones that take `db_url` again on PostgreSQL and MariaDB."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from glance_lite.db import migration, session
from tests.conftest import backend_url

# eventlet's green DNS resolver re-imports some 130 dnspython modules as eventlet's
# socket module is imported: 0.25 s of the unit run, for a resolver that no unit test
# uses (the server's pieces are tested without a hub). So the unit tests import it
# without, and the variable goes again: a server that a test starts inherits the
# environment as it was, green resolver included.
if "EVENTLET_NO_GREENDNS" not in os.environ:
    os.environ["EVENTLET_NO_GREENDNS"] = "yes"
    try:
        import glance_lite.server.protocol  # noqa: F401 - eventlet's socket module with it
    finally:
        del os.environ["EVENTLET_NO_GREENDNS"]


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
