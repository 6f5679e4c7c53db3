"""The real web server (nginx, .ci/services/start-nginx.sh) that http store tests read from.

Its URLs come from GLANCE_LITE_TEST_HTTP_URL / GLANCE_LITE_TEST_HTTPS_URL, the directory
it serves from GLANCE_LITE_TEST_HTTP_ROOT and the CA of its certificate from
GLANCE_LITE_TEST_HTTP_CA_FILE, and a forward proxy from GLANCE_LITE_TEST_HTTP_PROXY_URL;
unset or unreachable means skip, or fail when CI=true.
Besides the files, it answers /status/<code>, /redirect/<rest> (302 to /<rest>),
/moved/<rest> (301), /to?url=<url>, /loop, /slow/<file> (1 byte a second, headers
included), /trickle/<file> (100 bytes a second) and /stall/<file> (nothing for minutes).
"""

import dataclasses
import os
import uuid
from pathlib import Path

import requests

from tests.conftest import unavailable

ENV = {
    "url": "GLANCE_LITE_TEST_HTTP_URL",
    "https_url": "GLANCE_LITE_TEST_HTTPS_URL",
    "root": "GLANCE_LITE_TEST_HTTP_ROOT",
    "ca_file": "GLANCE_LITE_TEST_HTTP_CA_FILE",
    "proxy_url": "GLANCE_LITE_TEST_HTTP_PROXY_URL",
}


@dataclasses.dataclass(frozen=True)
class WebServer:
    url: str  # http://127.0.0.1:PORT/
    https_url: str
    root: Path
    ca_file: str
    proxy_url: str  # a forward proxy for http URLs of IP addresses (X-Via-Proxy: yes)

    def put(self, data: bytes, name: str | None = None) -> str:
        """Serve `data` (world-readable: nginx's workers are not root); its path."""
        name = name or f"{uuid.uuid4().hex}.img"
        path = self.root / name
        path.write_bytes(data)
        path.chmod(0o644)
        return name

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


def from_env() -> WebServer:
    values = {}
    for field, env in ENV.items():
        values[field] = os.environ.get(env)
        if not values[field]:
            unavailable(f"{env} is not set; the http store tests need nginx (.ci/services)")
    values["root"] = Path(values["root"])
    server = WebServer(**values)
    try:
        requests.head(server.url, timeout=5)
    except requests.RequestException as err:
        unavailable(f"the web server at {server.url} is unreachable: {err}")
    return server
