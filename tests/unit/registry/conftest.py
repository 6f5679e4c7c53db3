"""Drive the registry app in-process, as a caller would: a context filter in front,
identity headers for trusted-auth callers, JSON bodies.
"""

import json

import pytest
import webob

from glance_lite import context
from glance_lite.registry.app import make_app

LIMIT_DEFAULT = 25
LIMIT_MAX = 1000
JSON_BODY_MAX = 1 << 20


class Caller:
    """Sends requests to one WSGI app with a fixed set of headers."""

    def __init__(self, app, headers: dict | None = None):
        self.app = app
        self.headers = dict(headers or {})

    def request(self, method, path, *, json_body=None, body=None, headers=None):
        req = webob.Request.blank(path, method=method)
        req.headers.update(self.headers)
        if json_body is not None:
            body = json.dumps(json_body).encode()
            req.content_type = "application/json"
        if body is not None:
            req.body = body
        req.headers.update(headers or {})
        return req.get_response(self.app)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def put(self, path, json_body=None, **kw):
        return self.request("PUT", path, json_body=json_body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # --- shortcuts for the usual calls ---------------------------------------------

    def create(self, **image) -> dict:
        resp = self.post("/images", {"image": image})
        assert resp.status_int == 200, resp.text
        return resp.json["image"]

    def listing(self, query="", detail=False) -> list[dict]:
        path = "/images/detail" if detail else "/images"
        resp = self.get(f"{path}?{query}" if query else path)
        assert resp.status_int == 200, resp.text
        return resp.json["images"]

    def ids(self, query="", detail=False) -> list[str]:
        return [image["id"] for image in self.listing(query, detail)]


class Registry:
    """One registry app over one database, reachable as different callers."""

    def __init__(self, database, **limits):
        self.database = database
        self.router = make_app(
            database=database,
            api_limit_max=limits.get("api_limit_max", LIMIT_MAX),
            limit_param_default=limits.get("limit_param_default", LIMIT_DEFAULT),
            max_json_body=limits.get("max_json_body", JSON_BODY_MAX),
        )
        self.noauth_app = context.UnauthenticatedContext(self.router, owner_is_tenant=True)
        self.trusted_app = context.TrustedAuthContext(
            self.router,
            owner_is_tenant=True,
            admin_role="admin",
            allow_anonymous_access=True,
            max_request_id_length=64,
        )

    @property
    def admin(self) -> Caller:
        """The default flavor's caller: an admin without user or tenant."""
        return Caller(self.noauth_app)

    def tenant(self, tenant: str, *, roles: str = "member") -> Caller:
        return Caller(
            self.trusted_app,
            {
                "X-Identity-Status": "Confirmed",
                "X-Tenant-Id": tenant,
                "X-User-Id": f"user-of-{tenant}",
                "X-Roles": roles,
            },
        )

    def tenant_admin(self, tenant: str) -> Caller:
        return self.tenant(tenant, roles="admin")

    @property
    def anonymous(self) -> Caller:
        """A read-only anonymous caller (allow_anonymous_access)."""
        return Caller(self.trusted_app)


@pytest.fixture(scope="session")
def _registries() -> dict:
    return {}


@pytest.fixture
def registry(sqlite_database, _registries) -> Registry:
    """The registry over the test's emptied database. The app keeps nothing between
    requests that is not in the database, so one per database serves the session."""
    if sqlite_database not in _registries:
        _registries[sqlite_database] = Registry(sqlite_database)
    return _registries[sqlite_database]


@pytest.fixture
def admin(registry) -> Caller:
    return registry.admin


@pytest.fixture
def small_pages(sqlite_database) -> Registry:
    return Registry(sqlite_database, limit_param_default=3, api_limit_max=5)
