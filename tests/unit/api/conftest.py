"""The v1 app in-process: real controllers, layers, registry client and registry app
(over a requests transport, no socket), a memory store."""

import pytest
import webob

from glance_lite import context
from glance_lite import image_meta as im
from glance_lite.api import policy
from glance_lite.api.app import make_app
from glance_lite.api.leases import LeaseTerms
from glance_lite.registry.app import make_app as make_registry_app
from glance_lite.registry.client import RegistryClient
from glance_lite.store.base import Stores
from glance_lite.store.memory import MemoryStore
from tests.wsgi_transport import AnswerLosingAdapter, session_for

DISK_FORMATS = im.DISK_FORMATS
CONTAINER_FORMATS = im.CONTAINER_FORMATS


def trusted(app):
    return context.TrustedAuthContext(
        app,
        owner_is_tenant=True,
        admin_role="admin",
        allow_anonymous_access=False,
        max_request_id_length=64,
    )


class Api:
    """The v1 router behind the trusted-auth context, and what it stores into."""

    def __init__(self, database, **options):
        registry = trusted(
            make_registry_app(
                database=database,
                api_limit_max=1000,
                limit_param_default=25,
                max_json_body=options.get("max_json_body", 1 << 20),
            )
        )
        self.store = MemoryStore(capacity=options.pop("store_capacity", None))
        policy_file = options.pop("policy_file", None)
        enforcer = options.pop("enforcer", None) or policy.Enforcer(policy_file)
        # loses_answer(request): the registry applies the request, its answer is lost
        loses_answer = options.pop("loses_answer", None)
        adapter = AnswerLosingAdapter(registry, loses_answer) if loses_answer else None
        settings = {
            "delayed_delete": False,
            "property_quota": 128,
            "member_quota": 128,
            "size_cap": 1 << 40,
            "storage_quota": 0,
            "protections": None,
            "disk_formats": DISK_FORMATS,
            "container_formats": CONTAINER_FORMATS,
            "upload_chunk_size": 4096,
            "max_json_body": 1 << 20,
            "lease_terms": LeaseTerms(node_id="unit-node", duration=60),
        }
        settings.update(options)
        self.registry = RegistryClient(
            "http://registry.test",
            send_identity_headers=True,
            session=session_for(registry, adapter=adapter),
        )
        self.stores = Stores({"memory": self.store}, default="memory")
        api = make_app(
            registry=self.registry,
            stores=self.stores,
            enforcer=enforcer,
            **settings,
        )
        self.app = trusted(api)

    def call(self, method, path, *, tenant="alice", roles="member", headers=None, body=None):
        req = webob.Request.blank(path, method=method)
        req.headers.update(
            {
                "X-Identity-Status": "Confirmed",
                "X-Tenant-Id": tenant,
                "X-User-Id": f"user-{tenant}",
                "X-Roles": roles,
            }
        )
        req.headers.update(headers or {})
        if body is not None:
            req.body = body
            req.content_type = req.headers.get("Content-Type") or "application/octet-stream"
        return req.get_response(self.app)

    def upload(self, data: bytes = b"image-bytes", **kw):
        headers = {
            "Content-Type": "application/octet-stream",
            "x-image-meta-name": "img",
            "x-image-meta-disk_format": "raw",
            "x-image-meta-container_format": "bare",
        }
        headers.update(kw.pop("headers", {}))
        return self.call("POST", "/images", headers=headers, body=data, **kw)


@pytest.fixture
def api(sqlite_database):
    return Api(sqlite_database)


@pytest.fixture
def make_api(sqlite_database):
    return lambda **options: Api(sqlite_database, **options)
