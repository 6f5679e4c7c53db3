"""tests/unit/registry/test_backends.py again, on the database servers."""

from tests.unit.registry.test_backends import *  # noqa: F403
