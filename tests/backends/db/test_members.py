"""tests/unit/db/test_members.py again, on the database servers."""

from tests.unit.db.test_members import *  # noqa: F403
