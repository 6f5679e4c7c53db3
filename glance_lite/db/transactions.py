"""The engine behind a Database and its one transaction path.

Every Database method runs its statements in one transaction on a pooled DBAPI
connection, through a prepared.Cursor: each statement is built as SQLAlchemy Core once
per shape, compiled once per dialect and run as SQL text (prepared.py says why).
"""

import contextlib
import threading
from collections.abc import Iterator

import sqlalchemy as sa

from glance_lite.db import prepared, session


class Transactions:
    """The engine, its prepared statements, and `_read` / `_write` transactions."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._statements = prepared.Statements(engine.dialect)
        # SQLite has one writer at a time. Writers of this process queue here (a green
        # lock under eventlet) instead of in SQLite's busy handler, which sleeps without
        # yielding and would stall the green thread that holds the lock.
        self.sqlite = sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if sqlite else contextlib.nullcontext()
        # On SQLite we emit BEGIN ourselves (session.py); a writer takes the lock up front.
        self._begin_read = "BEGIN" if sqlite else None
        self._begin_write = "BEGIN IMMEDIATE" if sqlite else None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_pool_size: int = 5,
        max_overflow: int = 50,
        pool_timeout: int | None = None,
        connection_recycle_time: int = 3600,
    ):
        return cls(
            session.create_engine(
                url,
                max_pool_size=max_pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                connection_recycle_time=connection_recycle_time,
                busy_wait_in_sqlite=False,
            )
        )

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _read(self) -> Iterator[prepared.Cursor]:
        with prepared.transaction(self.engine, self._statements, begin=self._begin_read) as cur:
            yield cur

    @contextlib.contextmanager
    def _write(self) -> Iterator[prepared.Cursor]:
        with (
            self._write_lock,
            prepared.transaction(self.engine, self._statements, begin=self._begin_write) as cur,
        ):
            yield cur
