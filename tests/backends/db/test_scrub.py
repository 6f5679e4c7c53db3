"""tests/unit/db/test_scrub.py again, on the database servers."""

from tests.unit.db.test_scrub import *  # noqa: F403
