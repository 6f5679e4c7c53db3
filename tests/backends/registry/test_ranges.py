"""tests/unit/registry/test_ranges.py again, on the database servers."""

from tests.unit.registry.test_ranges import *  # noqa: F403
