"""Engines for the image database: URL spelling, SQLite pragmas and pool settings."""

import os
import random
import sqlite3
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from glance_lite import exceptions

# Execution option that makes a transaction start with BEGIN IMMEDIATE on SQLite, so a
# writer takes the write lock up front instead of failing a lock upgrade mid-way.
WRITE_OPTION = "glance_lite_write"

SQLITE_BUSY_TIMEOUT_MS = 5000

# Waiting for another process's write lock in Python (see wait_for_lock): first pause and
# the longest, in seconds; a write holds the lock for a fraction of a millisecond.
LOCK_PAUSE_FIRST = 0.0005
LOCK_PAUSE_MAX = 0.02

# Plain dialect names Glance's operators write, mapped to the drivers we ship with.
_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


def parse_url(url: str) -> URL:
    """The URL with `postgresql://` meaning psycopg 3 and `mysql://` meaning PyMySQL."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as err:
        raise exceptions.ConfigError(f"Invalid [database] connection URL: {err}") from None
    driver = _DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def pool_options(database_conf) -> dict:
    """The pool keyword arguments of create_engine, from the `[database]` config group."""
    return {
        "max_pool_size": database_conf.max_pool_size,
        "max_overflow": database_conf.max_overflow,
        "pool_timeout": database_conf.pool_timeout,
        "connection_recycle_time": database_conf.connection_recycle_time,
    }


def create_engine(
    url: str,
    *,
    max_pool_size: int = 5,
    max_overflow: int = 50,
    pool_timeout: int | None = None,
    connection_recycle_time: int = 3600,
    busy_wait_in_sqlite: bool = True,
) -> sa.Engine:
    """An engine for `url` with the pool options that its dialect supports.

    `busy_wait_in_sqlite=False` (a server's engine): an SQLite connection never waits
    in SQLite's busy handler, which sleeps the whole process (every green thread of an
    eventlet worker) while another process writes. Taking the write lock waits in
    Python instead (wait_for_lock); any other statement that finds the database locked
    fails at once, for the caller to retry.
    """
    parsed = parse_url(url)
    if is_sqlite(parsed):
        return _sqlite_engine(
            parsed, max_pool_size, max_overflow, pool_timeout, busy_wait_in_sqlite
        )
    kwargs = {
        "pool_size": max_pool_size,
        "max_overflow": max_overflow,
        "pool_recycle": connection_recycle_time,
        "pool_pre_ping": True,
    }
    if pool_timeout is not None:
        kwargs["pool_timeout"] = pool_timeout
    try:
        return sa.create_engine(parsed, **kwargs)
    except (ImportError, sa.exc.ArgumentError) as err:
        raise exceptions.ConfigError(
            f"Unsupported [database] connection URL {parsed.drivername}://...: {err}"
        ) from None


def _sqlite_engine(
    url: URL,
    max_pool_size: int,
    max_overflow: int,
    pool_timeout: int | None,
    busy_wait_in_sqlite: bool,
) -> sa.Engine:
    path = url.database
    in_memory = not path or path == ":memory:" or path.startswith("file::memory:")
    if in_memory:
        # One shared connection: every pooled connection would otherwise see its own
        # empty in-memory database.
        engine = sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        _check_sqlite_directory(path)
        kwargs = {"pool_size": max_pool_size, "max_overflow": max_overflow}
        if pool_timeout is not None:
            kwargs["pool_timeout"] = pool_timeout
        engine = sa.create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000 if busy_wait_in_sqlite else 0,
            },
            **kwargs,
        )
    _add_sqlite_listeners(engine, wal=not in_memory, busy_wait=busy_wait_in_sqlite)
    return engine


def _check_sqlite_directory(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise exceptions.ConfigError(
            f"The directory of the SQLite database {path} does not exist: {directory}"
        )


def _add_sqlite_listeners(engine: sa.Engine, *, wal: bool, busy_wait: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record) -> None:
        # We emit BEGIN ourselves (see on_begin); pysqlite's own would be DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
            if not busy_wait:  # set last: the pragmas above may wait for a lock
                cursor.execute("PRAGMA busy_timeout = 0")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        wait_for_lock(lambda: connection.exec_driver_sql(statement))


def is_locked(err: Exception) -> bool:
    """Whether a (wrapped) driver error says another connection holds SQLite's lock."""
    orig = getattr(err, "orig", err)
    return isinstance(orig, sqlite3.OperationalError) and (
        getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
        or "database is locked" in str(orig)
    )


def wait_for_lock(begin: Callable[[], object]) -> None:
    """Run `begin` (a BEGIN statement) until SQLite's lock is free, pausing with
    time.sleep (a green sleep under eventlet: the process serves others meanwhile), for
    at most SQLITE_BUSY_TIMEOUT_MS in all, then let the locked error through."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = LOCK_PAUSE_FIRST
    while True:
        try:
            begin()
            return
        except (sa.exc.DBAPIError, sqlite3.OperationalError) as err:  # wrapped, or raw
            if not is_locked(err) or time.monotonic() >= deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter
        pause = min(LOCK_PAUSE_MAX, pause * 2)


def writer(engine: sa.Engine) -> sa.Engine:
    """The same engine (and pool) with transactions marked as writes."""
    return engine.execution_options(**{WRITE_OPTION: True})
