"""Database failures as domain errors, and the retry of a whole Database method.

A method runs again from the start when SQLite is busy or a server reports a deadlock
or a serialization failure; a connection that cannot be had or was lost is a 503.
"""

import functools
import random
import time
from collections.abc import Callable

import sqlalchemy as sa

from glance_lite import exceptions

RETRY_ATTEMPTS = 12
RETRY_BASE_DELAY = 0.02
RETRY_MAX_DELAY = 1.0


def _dbapi_message(err: sa.exc.DBAPIError, password: str | None) -> str:
    text = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else type(err).__name__
    if password:
        text = text.replace(password, "***")
    return text


def _is_retryable(err: sa.exc.DBAPIError) -> bool:
    orig = err.orig
    text = str(orig).lower()
    if "database is locked" in text or "database table is locked" in text:
        return True
    code = orig.args[0] if getattr(orig, "args", None) else None
    if code in (1205, 1213):  # MySQL lock wait timeout, deadlock
        return True
    return getattr(orig, "sqlstate", None) in ("40001", "40P01")


def _is_missing_table(err: sa.exc.DBAPIError) -> bool:
    orig = err.orig
    code = orig.args[0] if getattr(orig, "args", None) else None
    return (
        "no such table" in str(orig) or getattr(orig, "sqlstate", None) == "42P01" or code == 1146
    )


def translate_error(err: Exception, password: str | None) -> exceptions.GlanceLiteError | None:
    """The domain error a database failure stands for, or None to let it through."""
    if isinstance(err, sa.exc.TimeoutError):
        return exceptions.ServiceUnavailable(
            f"Could not reach the image database: no free connection in the pool ({err})"
        )
    if not isinstance(err, sa.exc.DBAPIError):
        return None
    if _is_missing_table(err):
        return exceptions.ServiceUnavailable(
            "The image database has no glance-lite schema; run 'glance-manage db sync': "
            + _dbapi_message(err, password)
        )
    if isinstance(err, sa.exc.OperationalError | sa.exc.InterfaceError) or (
        err.connection_invalidated
    ):
        return exceptions.ServiceUnavailable(
            "Could not reach the image database: " + _dbapi_message(err, password)
        )
    return None


def db_call(method: Callable) -> Callable:
    """Run a Database method as a unit: retry it when busy, translate connection errors."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        for attempt in range(RETRY_ATTEMPTS):
            try:
                return method(self, *args, **kwargs)
            except sa.exc.DBAPIError as err:
                if attempt + 1 < RETRY_ATTEMPTS and _is_retryable(err):
                    delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**attempt)
                    time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
                    continue
                translated = translate_error(err, self.engine.url.password)
                if translated is None:
                    raise
                raise translated from None
            except sa.exc.TimeoutError as err:
                raise translate_error(err, None) from None
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper
