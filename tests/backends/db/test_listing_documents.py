"""tests/unit/db/test_listing_documents.py again, on the database servers."""

from tests.unit.db.test_listing_documents import *  # noqa: F403
