"""The no-op chain's two servers, on glance-lite's own server stack (glance_lite.server).

    python -m bench.noop --config-file C --port-file P --role backend
    python -m bench.noop --config-file C --port-file P --role front --backend-url URL
    python -m bench.noop --config-file C --port-file P --role floor --floor-database URL
    (--framed on the front and the floor: the stack floor, see bench/floor.py)

The front forwards each request as one HTTP call with glance-api's own sending code
(glance_lite.registry.client.send: a prepared request straight to the pooled session's
transport adapter, the answer read in one go) and returns the backend's JSON untouched; the backend
answers at once from memory. No database, no paste pipeline, no parsing: what glance-api
and glance-registry take beyond this chain is glance-lite's own overhead.

With --file-root, `GET /files/<name>` on the front is the same forwarded call followed by
the file `<name>` under that root, sent as glance-api sends image data (the server's
file_wrapper, sendfile): the least any download through a registry call can take.
"""

import json
import os
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path

from glance_lite.server import green

green.monkey_patch()  # before anything else imports sockets or threads, as glance-api's

from oslo_config import cfg

from bench.floor import DatabaseFloor, framed_backend, framed_front
from glance_lite import config, log, offload, opts
from glance_lite.registry.client import pooled_session, send
from glance_lite.server import workers

IMAGE_DOC = json.dumps(
    {
        "image": {
            "id": "2b4c6f0e-0d0f-4d4a-9a53-0c6f3b8a9e11",
            "name": "noop",
            "status": "queued",
            "is_public": True,
            "disk_format": "raw",
            "container_format": "bare",
            "size": None,
            "checksum": None,
            "min_disk": 0,
            "min_ram": 0,
            "owner": None,
            "protected": False,
            "deleted": False,
            "deleted_at": None,
            "created_at": "2024-01-01T00:00:00.000000",
            "updated_at": "2024-01-01T00:00:00.000000",
            "properties": {},
        }
    }
).encode()


class Backend:
    """Answers list calls (a path ending in /detail) with the payload file, read when first
    asked for, and anything else with IMAGE_DOC."""

    def __init__(self, list_payload: Path):
        self.list_payload = list_payload
        self._list_body: bytes | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        _drain(environ)
        if environ.get("PATH_INFO", "").endswith("/detail"):
            if self._list_body is None:
                self._list_body = self.list_payload.read_bytes()
            body = self._list_body
        else:
            body = IMAGE_DOC
        status = "201 Created" if environ["REQUEST_METHOD"] == "POST" else "200 OK"
        start_response(status, _json_headers(body))
        return [body]


FORWARD_TIMEOUT = (3, 60)  # connect, read


class Front:
    """Forwards the request (POST stays POST, anything else becomes GET) and returns the
    backend's status and JSON body as they are."""

    def __init__(self, backend_url: str, file_root: Path | None = None):
        self.backend_url = backend_url.rstrip("/")
        self.file_root = file_root
        self.session = pooled_session(100)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        _drain(environ)
        method = "POST" if environ["REQUEST_METHOD"] == "POST" else "GET"
        path = environ.get("PATH_INFO", "/")
        url = self.backend_url + path
        if environ.get("QUERY_STRING"):
            url += "?" + environ["QUERY_STRING"]
        # the very code glance-api sends its registry calls with
        reply = send(self.session, method, url, {}, FORWARD_TIMEOUT)
        if self.file_root is not None and path.startswith("/files/"):
            return self._file(environ, start_response, path.removeprefix("/files/"))
        status = f"{reply.status_code} {HTTPStatus(reply.status_code).phrase}"
        start_response(status, _json_headers(reply.content))
        return [reply.content]

    def _file(self, environ: dict, start_response: Callable, name: str) -> Iterable[bytes]:
        # one open and one fstat, as the file store does for glance-api
        try:
            data = (self.file_root / Path(name).name).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            start_response("404 Not Found", _json_headers(b""))
            return [b""]
        size = os.fstat(data.fileno()).st_size
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](data)


def _json_headers(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


def _drain(environ: dict) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)


def _as_is(app: Callable) -> Callable:
    return app


def register_opts(conf: cfg.ConfigOpts) -> None:
    opts.register_registry_opts(conf)  # the server options, as both services have them
    conf.register_cli_opts(
        [
            cfg.StrOpt("role", choices=["front", "backend", "floor"], required=True),
            cfg.StrOpt("backend-url", dest="backend_url"),
            cfg.StrOpt("list-payload", dest="list_payload"),
            cfg.StrOpt("floor-database", dest="floor_database", help="the floor's database URL"),
            cfg.StrOpt("file-root", dest="file_root"),
            cfg.BoolOpt("framed", default=False, help="webob and routes on each side"),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    conf = config.load("noop", register_opts, argv)
    config.set(conf)
    offload.use(green.ThreadPool())
    log.setup(conf, f"noop-{conf.role}")
    if conf.role == "front":
        root = Path(conf.file_root) if conf.file_root else None
        frame = framed_front if conf.framed else _as_is
        load_app = lambda: frame(Front(conf.backend_url, root))  # noqa: E731 - in each worker
    elif conf.role == "floor":
        frame = framed_backend if conf.framed else _as_is
        load_app = lambda: frame(DatabaseFloor(conf.floor_database))  # noqa: E731
    else:
        load_app = lambda: Backend(Path(conf.list_payload))  # noqa: E731
    workers.Service(f"noop-{conf.role}", conf, load_app, 0).serve()


if __name__ == "__main__":
    sys.exit(main())
