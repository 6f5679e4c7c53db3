"""tests/unit/db/test_listing.py again, on the database servers."""

from tests.unit.db.test_listing import *  # noqa: F403
