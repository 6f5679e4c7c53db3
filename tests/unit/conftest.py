"""The unit tests run in-process on SQLite alone, so that they need no server and run in
seconds. tests/backends runs the ones that take `db_url` again on PostgreSQL and MariaDB."""

from collections.abc import Iterator

import pytest

from tests.conftest import backend_url


@pytest.fixture(params=["sqlite"])
def db_url(request) -> Iterator[str]:
    yield from backend_url(request)
