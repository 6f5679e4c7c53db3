"""The database floor: the no-op chain's backend replaced by the least a registry on its
database can do for each metadata call.

    python -m bench.noop --config-file C --port-file P --role floor --floor-database URL

It serves the no-op front's calls (`GET /v1/images/<id>`, `GET /v1/images/detail?...`,
`POST /v1/images`) on the registry's own database schema with the very statements that
glance-registry sends (found by tracing them): on SQLite through the standard library's
sqlite3 on a connection set up as the registry's (glance_lite.db.session: WAL,
synchronous=NORMAL, the write lock waited for in green sleeps); on PostgreSQL through
psycopg on connections opened as the registry opens its own, kept per worker (as many
as calls at once, as its pool), with no ping before each use. No paste pipeline, routes,
webob, context, validation or property handling; the answer is built with one
json.dumps.

So the chain with this backend is the floor of glance-lite's metadata calls on this
stack: the two hops every call takes plus the database work no registry can skip. What
glance-api and glance-registry take beyond it is their own code.

With --framed (the stack floor), both servers of that chain also do what any webob and
routes application does at the least, as the shape of glance-lite has it: the front
behind glance-api's route table, the backend behind glance-registry's, each dispatched
by glance-lite's Router (one webob Request, one routes match, one webob Response); no
pipeline filter, context, policy, validation or serialization of glance-lite's.
"""

import contextlib
import datetime
import json
import uuid
from collections.abc import Callable, Iterable, Iterator

from glance_lite.api import router as api_router
from glance_lite.db.session import create_engine, wait_for_lock
from glance_lite.registry import router as registry_router

SHOW = (
    "SELECT id, name, disk_format, container_format, size, virtual_size, status, visibility, "
    "checksum, min_disk, min_ram, owner, protected, created_at, updated_at, deleted_at, "
    "deleted FROM images WHERE id = ?",
    "SELECT image_id, name, value, deleted FROM image_properties WHERE image_id IN (?) ORDER BY id",
    "SELECT image_id, id, value, meta_data, status, deleted FROM image_locations "
    "WHERE image_id IN (?) ORDER BY id",
)
SHOW_COLUMNS = SHOW[0].removeprefix("SELECT ").split(" FROM")[0].split(", ")
# the registry's stored listing entries, joined by SQLite (glance_lite.db.listing)
LIST = (
    "SELECT CAST(group_concat(coalesce(page.document, X'00'), ', ') AS BLOB) FROM "
    "(SELECT id, CAST(listing_doc AS BLOB) AS document FROM images "
    "WHERE deleted = 0 AND (status NOT IN ('killed', 'deleted', 'pending_delete')) "
    "AND visibility = 'public' ORDER BY created_at DESC, id DESC LIMIT ? OFFSET 0) AS page"
)
CREATE = (
    "INSERT INTO images (id, name, disk_format, container_format, size, virtual_size, "
    "status, visibility, checksum, min_disk, min_ram, owner, protected, listing_doc, "
    "created_at, updated_at, deleted_at, deleted) "
    "VALUES (?, ?, 'raw', 'bare', NULL, NULL, 'queued', 'public', NULL, 0, 0, NULL, 0, ?, "
    "?, ?, NULL, 0)"
)
# the same on PostgreSQL (booleans for booleans, the listing joined here)
SHOW_PG = tuple(statement.replace("?", "%s") for statement in SHOW)
LIST_PG = (
    "SELECT convert_to(listing_doc, 'UTF8') FROM images WHERE deleted = false AND "
    "(status NOT IN ('killed', 'deleted', 'pending_delete')) AND visibility = 'public' "
    "ORDER BY created_at DESC, id DESC LIMIT %s"
)
CREATE_PG = (
    CREATE.replace("?", "%s")
    .replace("'public', NULL, 0, 0, NULL, 0,", "'public', NULL, 0, 0, NULL, false,")
    .replace("NULL, 0)", "NULL, false)")
)
DEFAULT_LIMIT = 25


class DatabaseFloor:
    def __init__(self, url: str):
        engine = create_engine(url, busy_wait_in_sqlite=False)
        if engine.dialect.name == "sqlite":
            self.db: _Sqlite | _Postgres = _Sqlite(engine)
        elif engine.dialect.name == "postgresql":
            self.db = _Postgres(engine)
        else:
            raise SystemExit("the database floor runs on SQLite and PostgreSQL")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("", "/"):  # the bench's health check
            status, body = "200 OK", b"{}"
        elif environ["REQUEST_METHOD"] == "POST":
            status, body = "201 Created", self.create()
        elif path.endswith("/detail"):
            joined = self.db.listing(_limit(environ.get("QUERY_STRING", "")))
            status, body = "200 OK", b'{"images": [' + joined + b"]}"
        else:
            status, body = self.show(path.rsplit("/", 1)[-1])
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    def show(self, image_id: str) -> tuple[str, bytes]:
        row, properties, locations = self.db.show(image_id)
        if row is None:
            return "404 Not Found", b"{}"
        image = dict(zip(SHOW_COLUMNS, row, strict=True))
        for key in ("created_at", "updated_at", "deleted_at"):
            if isinstance(image[key], datetime.datetime):
                image[key] = image[key].isoformat()
        image["properties"] = {name: value for _, name, value, deleted in properties if not deleted}
        image["location_data"] = [{"url": loc[2], "metadata": loc[3]} for loc in locations]
        return "200 OK", json.dumps({"image": image}).encode()

    def create(self) -> bytes:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        stamp = now.isoformat(timespec="microseconds")
        image = {
            "id": str(uuid.uuid4()),
            "name": "floor",
            "status": "queued",
            "size": None,
            "virtual_size": None,
            "disk_format": "raw",
            "container_format": "bare",
            "min_disk": 0,
            "min_ram": 0,
            "is_public": True,
            "checksum": None,
            "owner": None,
            "protected": False,
            "created_at": stamp,
            "updated_at": stamp,
            "deleted_at": None,
            "deleted": False,
            "properties": {},
        }
        self.db.insert(image["id"], image["name"], json.dumps(image), now)
        return json.dumps({"image": image}).encode()


class _Sqlite:
    def __init__(self, engine):
        # one connection for the worker, set up by the registry's own connect hook
        self.conn = engine.raw_connection().driver_connection

    def show(self, image_id: str) -> tuple:
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            row = cur.execute(SHOW[0], (image_id,)).fetchone()
            properties = cur.execute(SHOW[1], (image_id,)).fetchall()
            locations = cur.execute(SHOW[2], (image_id,)).fetchall()
        finally:
            cur.execute("COMMIT")
        return row, properties, locations

    def listing(self, limit: int) -> bytes:
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            (joined,) = cur.execute(LIST, (limit,)).fetchone()
        finally:
            cur.execute("COMMIT")
        return joined or b""

    def insert(self, image_id: str, name: str, document: str, now: datetime.datetime) -> None:
        stored = now.isoformat(sep=" ", timespec="microseconds")
        cur = self.conn.cursor()
        wait_for_lock(lambda: cur.execute("BEGIN IMMEDIATE"))
        try:
            cur.execute(CREATE, (image_id, name, document, stored, stored))
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


class _Postgres:
    def __init__(self, engine):
        self.engine = engine
        self.free: list = []  # idle connections of this worker (proxies kept: never pooled back)

    @contextlib.contextmanager
    def transaction(self) -> Iterator:
        proxy = self.free.pop() if self.free else self.engine.raw_connection()
        conn = proxy.driver_connection
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            self.free.append(proxy)

    def show(self, image_id: str) -> tuple:
        with self.transaction() as cur:
            row = cur.execute(SHOW_PG[0], (image_id,)).fetchone()
            properties = cur.execute(SHOW_PG[1], (image_id,)).fetchall()
            locations = cur.execute(SHOW_PG[2], (image_id,)).fetchall()
        return row, properties, locations

    def listing(self, limit: int) -> bytes:
        with self.transaction() as cur:
            documents = [bytes(doc) for (doc,) in cur.execute(LIST_PG, (limit,))]
        return b", ".join(documents)

    def insert(self, image_id: str, name: str, document: str, now: datetime.datetime) -> None:
        with self.transaction() as cur:
            cur.execute(CREATE_PG, (image_id, name, document, now, now))


def _limit(query: str) -> int:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "limit" and value.isdigit():
            return int(value)
    return DEFAULT_LIMIT


class _Passthrough:
    """Every action of a router's controllers: the request, as it stands, to `app`."""

    def __init__(self, app: Callable):
        self._app = app

    def __getattr__(self, action: str) -> Callable:
        return lambda req, **_: req.get_response(self._app)


def framed_front(front: Callable) -> Callable:
    """`front` behind glance-api's route table under /v1, as the api's URL map mounts it
    (the bench's health check, `/`, goes straight through)."""
    through = _Passthrough(front)
    router = api_router.make_router(through, through)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/v1/"):
            return front(environ, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/v1"
        environ["PATH_INFO"] = path.removeprefix("/v1")
        return router(environ, start_response)

    return app


def framed_backend(backend: Callable) -> Callable:
    """`backend` behind glance-registry's route table."""
    through = _Passthrough(backend)
    return registry_router.make_router(through, through, through, through)
