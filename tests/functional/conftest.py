"""Shared pieces of the glance-api functional tests.

`client` is one real glance-registry + glance-api pair with the default config, shared by
the whole session (tests find their own images by id or by a property of their own);
`deploy(name, **options)` starts more, with special configs, stopped at the end of the
module. Both hand out an `ApiClient`: the base URLs, the data directory, the processes,
and short helpers for the requests the tests make over and over.
"""

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.functional import webserver
from tests.functional.servers import Deployment, stop_together
from tests.functional.webserver import WebServer

TIMEOUT = 30
OCTET = "application/octet-stream"


def meta_headers(properties: dict | None = None, **fields) -> dict[str, str]:
    """`x-image-meta-<field>` headers (dashed spelling) and `x-image-meta-property-*`."""
    headers = {f"x-image-meta-{k.replace('_', '-')}": str(v) for k, v in fields.items()}
    for name, value in (properties or {}).items():
        headers[f"x-image-meta-property-{name}"] = value
    return headers


class ApiClient:
    """A running deployment seen from outside: HTTP helpers and the files it writes."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.url = deployment.url
        self.v1 = f"{deployment.url}/v1"
        self.port = deployment.api.port
        self.datadir = deployment.datadir
        self.session = requests.Session()
        del self.session.headers["Accept"]  # no Accept: error pages come as plain text
        deployment.api.sessions.append(self.session)

    # --- plain requests ------------------------------------------------------------

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, f"{self.v1}{path}", **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw) -> requests.Response:
        return self.request("HEAD", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # --- images --------------------------------------------------------------------

    def create(
        self, data=None, *, headers: dict | None = None, properties=None, **fields
    ) -> requests.Response:
        """POST /v1/images with metadata headers; a body is sent as octet-stream."""
        sent = meta_headers(properties, **fields)
        if data is not None:
            sent["Content-Type"] = OCTET
        sent.update(headers or {})
        return self.post("/images", data=data, headers=sent)

    def reserve(self, **fields) -> dict:
        resp = self.create(**fields)
        assert resp.status_code == 201, resp.text
        return resp.json()["image"]

    def upload(self, data: bytes = b"hello image", **fields) -> dict:
        fields.setdefault("disk_format", "raw")
        fields.setdefault("container_format", "bare")
        resp = self.create(data, **fields)
        assert resp.status_code == 201, resp.text
        return resp.json()["image"]

    def meta(self, image_id: str, **kw) -> dict[str, str]:
        """HEAD of an image: its headers with lower-cased names (200 asserted)."""
        resp = self.head(f"/images/{image_id}", **kw)
        assert resp.status_code == 200, (resp.status_code, resp.headers)
        return {k.lower(): v for k, v in resp.headers.items()}

    def status(self, image_id: str) -> str:
        return self.meta(image_id)["x-image-meta-status"]

    def update(self, image_id: str, data=None, *, headers=None, properties=None, **fields):
        sent = meta_headers(properties, **fields)
        if data is not None:
            sent["Content-Type"] = OCTET
        sent.update(headers or {})
        return self.put(f"/images/{image_id}", data=data, headers=sent)

    # --- the data directory ----------------------------------------------------------

    def files(self) -> list[str]:
        """Every entry of the store's data directory, hidden temp files included."""
        if not self.datadir.exists():
            return []
        return sorted(p.name for p in self.datadir.iterdir())

    def no_file_for(self, image_id: str) -> bool:
        """Whether the store holds neither the image's file nor a temporary one of it."""
        names = self.files()
        return image_id not in names and not any(n.startswith(f".{image_id}") for n in names)

    def image_file(self, image_id: str) -> Path:
        return self.datadir / image_id

    # --- processes -----------------------------------------------------------------

    @property
    def api_pid(self) -> int:
        return self.deployment.api.proc.pid

    def api_log(self) -> str:
        return self.deployment.api.log()

    def connect(self, timeout: float = TIMEOUT) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def read_response(sock: socket.socket, deadline: float = 30.0) -> tuple[bytes, bytes]:
    """Read one HTTP response head and whatever body follows until the server closes
    (or `deadline` seconds pass): (head, rest)."""
    data = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and _complete(data):
            break
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _complete(data: bytes) -> bool:
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value.strip())
    return False


class Deployments:
    """Starts deployments on demand and stops them all at the end of its scope."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.started: list[Deployment] = []

    def __call__(
        self, name: str, *, registry_options: dict | None = None, **api_options
    ) -> ApiClient:
        workdir = self.tmp_path_factory.mktemp(name)
        deployment = Deployment(workdir, registry_options=registry_options, api_options=api_options)
        self.started.append(deployment)
        deployment.start()
        return ApiClient(deployment)

    def stop_all(self) -> None:
        """Every api, then every registry, each group stopped side by side (the
        registries also when an api had to be killed)."""
        try:
            stop_together(deployment.api for deployment in self.started)
        finally:
            stop_together(deployment.registry for deployment in self.started)


@pytest.fixture(scope="module")
def deploy(tmp_path_factory) -> Iterator[Deployments]:
    """Start deployments with special configs: deploy(name, registry_options=..., **api)."""
    deployments = Deployments(tmp_path_factory)
    yield deployments
    deployments.stop_all()


@pytest.fixture
def uid() -> str:
    """A fresh tag for names, so that a test finds its own images in a shared deployment."""
    return uuid.uuid4().hex[:10]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="session")
def default_api(tmp_path_factory) -> Iterator[ApiClient]:
    """The default deployment (no auth: every caller is an admin), shared by every module
    of this test session (one per xdist worker): tests must not rely on it being empty."""
    deployments = Deployments(tmp_path_factory)
    yield deployments("default")
    deployments.stop_all()


@pytest.fixture(scope="session")
def client(default_api: ApiClient) -> ApiClient:
    """The default deployment (default_api), under the name most tests use."""
    return default_api


@pytest.fixture(scope="session")
def web() -> WebServer:
    """The real web server that http locations and copy-from sources are served by."""
    return webserver.from_env()


@pytest.fixture
def served(web: WebServer):
    """Serve bytes for one test: served(data) -> the file's name under the web root."""
    names = []

    def serve(data: bytes) -> str:
        names.append(web.put(data))
        return names[-1]

    yield serve
    for name in names:
        web.remove(name)
