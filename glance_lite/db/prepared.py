"""Core statements compiled once per dialect and run on the DBAPI cursor (the hot paths).

Executing a Core statement costs SQLAlchemy a statement build, a cache-key walk, parameter
processing and a result wrapper on every call, more than the registry's small
per-request queries take in the database. The hot paths instead build each statement once
per *shape* (which filters, how many values: never the values themselves), compile it
once for the engine's dialect, and run the SQL text on the cursor with the type
processors the compiler chose. Driver errors come out as SQLAlchemy's DBAPIError, as they
would from Core, so the retries and error translation of errors.py apply unchanged.
"""

import collections
import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence

import sqlalchemy as sa

from glance_lite.db import session

CACHE_SIZE = 512


class Prepared:
    """One compiled statement: SQL text, parameter order and type processors."""

    __slots__ = ("_binds", "_defaults", "_names", "_positional", "_results", "sql")

    def __init__(self, stmt: sa.Executable, dialect: sa.Dialect):
        compiled = stmt.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("prepared statements take plain bind parameters only")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("prepared statements run no Python-side column defaults")
        self.sql = compiled.string
        self._positional = compiled.positional
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        self._names = tuple(names)
        binds = [compiled.binds[name] for name in names]
        self._binds = tuple(
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in zip(names, binds, strict=True)
        )
        self._defaults = {
            name: bind.effective_value
            for name, bind in zip(names, binds, strict=True)
            if not bind.required
        }
        columns = getattr(stmt, "selected_columns", None) or ()
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self._results = tuple(processors) if any(processors) else None

    def parameters(self, values: dict) -> tuple | dict:
        out = []
        for name, process in self._binds:
            value = values[name] if name in values else self._defaults[name]
            out.append(value if process is None else process(value))
        return tuple(out) if self._positional else dict(zip(self._names, out, strict=True))

    def rows(self, raw: list[tuple]) -> list[tuple]:
        results = self._results
        if results is None:
            return raw
        return [
            tuple(v if p is None else p(v) for p, v in zip(results, row, strict=True))
            for row in raw
        ]


class Statements:
    """Prepared statements of one dialect, built on first use, the least recently used
    dropped."""

    def __init__(self, dialect: sa.Dialect, size: int = CACHE_SIZE):
        self.dialect = dialect
        self._size = size
        self._cache: collections.OrderedDict[Hashable, Prepared] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, build: Callable[..., sa.Executable], shape: tuple) -> Prepared:
        """The prepared form of build(*shape); `build` must depend on nothing but `shape`."""
        key = (build, shape)
        prepared = self._cache.get(key)
        if prepared is not None:
            with contextlib.suppress(KeyError):  # dropped meanwhile: still good to run
                self._cache.move_to_end(key)  # the least recently used go first
            return prepared
        prepared = Prepared(build(*shape), self.dialect)
        with self._lock:
            self._cache[key] = prepared
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return prepared


class Cursor:
    """Runs prepared statements on one DBAPI connection (inside the caller's transaction)."""

    def __init__(self, dbapi_connection, statements: Statements):
        self._connection = dbapi_connection
        self.statements = statements
        self._dbapi_error = statements.dialect.loaded_dbapi.Error

    def _run(self, sql: str, params, *, many: bool = False):
        cursor = self._connection.cursor()
        try:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        except self._dbapi_error as err:
            cursor.close()
            raise wrap(err, sql, params, self.statements.dialect) from err
        return cursor

    def fetch(self, build: Callable[..., sa.Executable], values: dict, *shape: Hashable) -> list:
        """The rows of build(*shape), a SELECT, with its columns' result processors applied."""
        prepared = self.statements.get(build, shape)
        cursor = self._run(prepared.sql, prepared.parameters(values))
        try:
            raw = cursor.fetchall()
        except self._dbapi_error as err:
            raise wrap(err, prepared.sql, values, self.statements.dialect) from err
        finally:
            cursor.close()
        return prepared.rows(raw)

    def execute(self, build: Callable[..., sa.Executable], values: dict, *shape: Hashable) -> int:
        """Run build(*shape), an INSERT, UPDATE or DELETE; the number of rows it matched."""
        prepared = self.statements.get(build, shape)
        cursor = self._run(prepared.sql, prepared.parameters(values))
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def execute_many(
        self, build: Callable[..., sa.Executable], rows: Sequence[dict], *shape: Hashable
    ) -> None:
        """Run build(*shape) once for each of `rows` (one executemany)."""
        prepared = self.statements.get(build, shape)
        params = [prepared.parameters(values) for values in rows]
        self._run(prepared.sql, params, many=True).close()

    def text(self, sql: str) -> None:
        """Run a fixed statement without parameters (BEGIN and the like)."""
        self._run(sql, ()).close()


def wrap(err: Exception, sql: str, params, dialect: sa.Dialect) -> Exception:
    """The driver error as SQLAlchemy's DBAPIError subclass, as Core would raise it."""
    return sa.exc.DBAPIError.instance(
        sql, params, err, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


@contextlib.contextmanager
def transaction(
    engine: sa.Engine, statements: Statements, *, begin: str | None
) -> Iterator[Cursor]:
    """A pooled DBAPI connection in one transaction; `begin` is SQLite's BEGIN statement.

    Commits when the block ends, rolls back when it raises; driver errors on the way in
    and out are wrapped as SQLAlchemy's.
    """
    dialect = statements.dialect
    try:
        connection = engine.raw_connection()
    except dialect.loaded_dbapi.Error as err:
        raise wrap(err, None, None, dialect) from err
    try:
        cursor = Cursor(connection.dbapi_connection, statements)
        if begin is not None:
            session.wait_for_lock(lambda: cursor.text(begin))
        try:
            yield cursor
        except BaseException:
            with contextlib.suppress(Exception):
                connection.rollback()
            raise
        try:
            connection.commit()
        except dialect.loaded_dbapi.Error as err:
            with contextlib.suppress(Exception):
                connection.rollback()
            raise wrap(err, "COMMIT", (), dialect) from err
    finally:
        connection.close()
