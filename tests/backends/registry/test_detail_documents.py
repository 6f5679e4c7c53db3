"""tests/unit/registry/test_detail_documents.py again, on the database servers."""

from tests.unit.registry.test_detail_documents import *  # noqa: F403
