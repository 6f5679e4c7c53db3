"""Keystone's v2.0 password sign-in, answered by the real Keystone's v3 API.

Keystone removed its v2.0 API (Queens), and no release that has it still installs here,
yet swift accounts with `swift_store_auth_version = 2` sign in with it. This translator
takes a v2.0 `POST /v2.0/tokens` (passwordCredentials and a tenantName), asks the real
Keystone for a project-scoped v3 token by password, and answers in v2.0's shape: the
same token id, its project as the tenant, the v3 catalog as a v2.0 serviceCatalog (one
entry per region, with its public, internal and admin URLs). Everything after the sign-in
is real: Swift checks the token against Keystone, and a refused password is Keystone's
own 401. It translates; it decides nothing.
"""

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

from tests.functional.keystone import DOMAIN, TIMEOUT

TOKENS_PATH = "/v2.0/tokens"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class _ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def v2_access(token_id: str, token: dict) -> dict:
    """A v3 token document as v2.0's `access` document."""
    project = token.get("project") or {}
    catalog = []
    for service in token.get("catalog", []):
        by_region: dict[str, dict] = {}
        for endpoint in service.get("endpoints", []):
            region = endpoint.get("region_id") or endpoint.get("region") or ""
            entry = by_region.setdefault(region, {"region": region, "id": endpoint.get("id")})
            entry[f"{endpoint['interface']}URL"] = endpoint["url"]
        catalog.append(
            {
                "type": service["type"],
                "name": service.get("name", ""),
                "endpoints": [*by_region.values()],
            }
        )
    return {
        "access": {
            "token": {
                "id": token_id,
                "issued_at": token.get("issued_at"),
                "expires": token["expires_at"],
                "tenant": {"id": project.get("id"), "name": project.get("name"), "enabled": True},
            },
            "serviceCatalog": catalog,
            "user": {
                "id": token["user"]["id"],
                "name": token["user"]["name"],
                "roles": [{"name": role["name"]} for role in token.get("roles", [])],
            },
            "metadata": {"roles": [role["id"] for role in token.get("roles", [])]},
        }
    }


def translator(keystone_url: str):
    """The WSGI app: `POST /v2.0/tokens` only."""

    def app(environ, start_response):
        def answer(status: str, doc: object):
            body = json.dumps(doc).encode()
            start_response(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]

        if environ["PATH_INFO"].rstrip("/") != TOKENS_PATH or environ["REQUEST_METHOD"] != "POST":
            return answer("404 Not Found", {"error": {"code": 404, "message": "not translated"}})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            auth = json.loads(environ["wsgi.input"].read(length))["auth"]
            credentials = auth["passwordCredentials"]
            tenant = auth["tenantName"]
        except (ValueError, KeyError, TypeError):
            return answer("400 Bad Request", {"error": {"code": 400, "message": "bad v2.0 auth"}})
        v3 = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": credentials["username"],
                            "password": credentials["password"],
                            "domain": {"id": DOMAIN},
                        }
                    },
                },
                "scope": {"project": {"name": tenant, "domain": {"id": DOMAIN}}},
            }
        }
        resp = requests.post(f"{keystone_url}/auth/tokens", json=v3, timeout=TIMEOUT)
        if resp.status_code != 201:
            return answer(f"{resp.status_code} {resp.reason}", resp.json())
        return answer("200 OK", v2_access(resp.headers["X-Subject-Token"], resp.json()["token"]))

    return app


@contextmanager
def serving(keystone_url: str) -> Iterator[str]:
    """The translator on a free loopback port; yields its v2.0 auth URL."""
    server = make_server(
        "127.0.0.1", 0, translator(keystone_url), server_class=_ThreadedServer, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v2.0"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
