"""tests/unit/db/test_images.py again, on the database servers."""

from tests.unit.db.test_images import *  # noqa: F403
