"""The unit tests that take `db_url`, run again on PostgreSQL and MariaDB.

Each module here imports one module of tests/unit whole; `db_url` is narrowed to the
servers, and the tests that do not take it (they already ran in tests/unit) are left
out. The server URLs come from GLANCE_LITE_TEST_PG_URL / GLANCE_LITE_TEST_MYSQL_URL:
unset or unreachable means skip, or fail when CI=true.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import backend_url

HERE = Path(__file__).parent


@pytest.fixture(params=["postgresql", "mysql"])
def db_url(request) -> Iterator[str]:
    yield from backend_url(request)


def pytest_collection_modifyitems(config, items):
    kept, repeated = [], []
    for item in items:
        ours = HERE in item.path.parents
        (repeated if ours and "db_url" not in item.fixturenames else kept).append(item)
    if repeated:
        config.hook.pytest_deselected(items=repeated)
        items[:] = kept
