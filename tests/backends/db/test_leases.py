"""tests/unit/db/test_leases.py again, on the database servers."""

from tests.unit.db.test_leases import *  # noqa: F403
