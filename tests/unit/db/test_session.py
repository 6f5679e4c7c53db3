"""Engines, connection failures and concurrent SQLite writers."""

import socket
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.db import api, errors, migration, rows, session
from tests.helpers import make_context

ALICE = make_context("alice")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg"),
        ("mysql://u:p@h/db", "mysql+pymysql"),
        ("mysql+pymysql://u:p@h/db", "mysql+pymysql"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_urls_map_to_the_shipped_drivers(given, driver):
    assert session.parse_url(given).drivername == driver


def test_a_malformed_url_is_a_config_error():
    with pytest.raises(exceptions.ConfigError, match="Invalid \\[database\\] connection URL"):
        session.create_engine("not a url")


def test_a_missing_sqlite_directory_is_a_clear_error(tmp_path):
    with pytest.raises(exceptions.ConfigError, match="does not exist"):
        session.create_engine(f"sqlite:///{tmp_path}/missing/glance.sqlite")


def test_file_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    engine = session.create_engine(f"sqlite:///{tmp_path}/g.sqlite")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    engine.dispose()


def test_pool_options_reach_the_pool(tmp_path):
    engine = session.create_engine(
        f"sqlite:///{tmp_path}/g.sqlite", max_pool_size=3, max_overflow=4, pool_timeout=7
    )
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (3, 4, 7)


def test_in_memory_sqlite_shares_one_database():
    db = api.Database.from_url("sqlite://")
    migration.upgrade(db.engine)
    image = db.image_create(ALICE, {})
    assert db.image_get(ALICE, image["id"])["id"] == image["id"]


@pytest.mark.parametrize("scheme", ["postgresql", "mysql+pymysql"])
def test_an_unreachable_server_is_service_unavailable(scheme):
    url = f"{scheme}://glance:s3cret-pw@127.0.0.1:{closed_port()}/glance"
    db = api.Database.from_url(url)
    with pytest.raises(exceptions.ServiceUnavailable) as caught:
        db.image_get(ALICE, "x")
    message = str(caught.value)
    assert message.startswith("Could not reach the image database: ")
    assert "s3cret-pw" not in message
    assert caught.value.__cause__ is None


def test_a_database_without_schema_says_to_run_db_sync(tmp_path):
    db = api.Database.from_url(f"sqlite:///{tmp_path}/empty.sqlite")
    with pytest.raises(exceptions.ServiceUnavailable, match="glance-manage db sync"):
        db.image_get_all(ALICE, {})


def test_sixteen_concurrent_writers_all_succeed(migrated_sqlite_url):
    db = api.Database.from_url(migrated_sqlite_url, max_pool_size=16, max_overflow=0)
    image = db.image_create(ALICE, {"status": "queued"})
    errors, start = [], threading.Barrier(16)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(5):
                db.image_create(ALICE, {"name": f"w{n}-{i}", "properties": {"n": str(n)}})
                db.image_update(ALICE, image["id"], {"properties": {f"w{n}": str(i)}})
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(db.image_get_all(ALICE, {})) == 81
    assert len(db.image_get(ALICE, image["id"])["properties"]) == 16


def test_a_writer_waits_for_another_connections_lock_in_python(migrated_sqlite_url, monkeypatch):
    # SQLite's busy handler would sleep the whole eventlet worker: the server's engine
    # leaves it off and waits with time.sleep, which yields to the other green threads.
    db = api.Database.from_url(migrated_sqlite_url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    pauses = []
    real_sleep = time.sleep
    monkeypatch.setattr(session.time, "sleep", lambda s: (pauses.append(s), real_sleep(s)))
    path = session.parse_url(migrated_sqlite_url).database
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    threading.Timer(0.1, holder.rollback).start()
    started = time.monotonic()
    image = db.image_create(ALICE, {"name": "waited"})
    assert time.monotonic() - started >= 0.08
    assert pauses and max(pauses) <= session.LOCK_PAUSE_MAX * 1.5
    assert db.image_get(ALICE, image["id"])["name"] == "waited"
    holder.close()


def test_locked_errors_are_retried_then_reported(migrated_sqlite_url, monkeypatch):
    monkeypatch.setattr(errors, "RETRY_BASE_DELAY", 0.001)
    db = api.Database.from_url(migrated_sqlite_url)
    monkeypatch.setattr(session, "SQLITE_BUSY_TIMEOUT_MS", 0)
    calls = []
    original = rows.visible_image

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError(
                "SELECT", {}, sqlite3.OperationalError("database is locked")
            )
        return original(*args, **kwargs)

    image = db.image_create(ALICE, {})
    monkeypatch.setattr(rows, "visible_image", flaky)
    assert db.image_get(ALICE, image["id"])["id"] == image["id"]
    assert len(calls) == 3
    calls.clear()
    monkeypatch.setattr(errors, "RETRY_ATTEMPTS", 2)
    with pytest.raises(exceptions.ServiceUnavailable, match="database is locked"):
        db.image_get(ALICE, image["id"])
