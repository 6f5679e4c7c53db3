"""Who is calling: the request context and the paste filters that build it.

`unauthenticated-context` makes every caller an admin with no user or tenant (Glance's
default flavor). `context` (the trusted-auth flavor) believes the identity headers a
trusted front end sends. Both store the context in environ["glance.context"] and stamp
every response with x-openstack-request-id.
"""

import json
import uuid
from dataclasses import dataclass, field

import webob
import webob.exc

from glance_lite import config, wsgi

ENV_KEY = "glance.context"


@dataclass
class RequestContext:
    user_id: str | None = None
    tenant_id: str | None = None
    roles: list[str] = field(default_factory=list)
    is_admin: bool = False
    read_only: bool = False
    show_deleted: bool = False
    auth_token: str | None = None
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")
    owner_is_tenant: bool = True
    service_catalog: list | None = None
    identity_status: str | None = None

    @property
    def owner(self) -> str | None:
        """The id images created by this caller belong to."""
        return self.tenant_id if self.owner_is_tenant else self.user_id

    @property
    def can_see_deleted(self) -> bool:
        return self.is_admin or self.show_deleted


def service_context(*, admin_role: str, owner_is_tenant: bool) -> RequestContext:
    """glance-lite's own programs acting as an admin toward the registry, as a confirmed
    identity with the admin role (glance-scrubber, glance-api's upload-lease sweep)."""
    return RequestContext(
        roles=[admin_role],
        is_admin=True,
        owner_is_tenant=owner_is_tenant,
        identity_status="Confirmed",
    )


def from_environ(environ) -> RequestContext:
    return environ[ENV_KEY]


class _ContextFilter:
    def __init__(self, app, *, owner_is_tenant: bool):
        self.app = app
        self.owner_is_tenant = owner_is_tenant

    def __call__(self, environ, start_response):
        try:
            ctx = self.build(webob.Request(environ))
        except webob.exc.HTTPException as exc:
            return exc(environ, start_response)
        environ[ENV_KEY] = ctx

        def stamped(status, headers, exc_info=None):
            headers = [h for h in headers if h[0].lower() != "x-openstack-request-id"]
            headers.append(("x-openstack-request-id", ctx.request_id))
            # Some values come from the request (a Location built from Host): however they
            # were folded, none starts a header line of its own.
            return start_response(status, wsgi.safe_headers(headers), exc_info)

        return self.app(environ, stamped)

    def build(self, req: webob.Request) -> RequestContext:
        raise NotImplementedError


class UnauthenticatedContext(_ContextFilter):
    """Every caller is an admin without user or tenant; request-id headers are ignored."""

    def build(self, req):
        return RequestContext(is_admin=True, owner_is_tenant=self.owner_is_tenant)


class TrustedAuthContext(_ContextFilter):
    """Identity from X-Identity-Status/X-User-Id/X-Tenant-Id/X-Roles, trusted as sent."""

    def __init__(
        self,
        app,
        *,
        owner_is_tenant: bool,
        admin_role: str,
        allow_anonymous_access: bool,
        max_request_id_length: int,
        is_admin_check=None,
    ):
        super().__init__(app, owner_is_tenant=owner_is_tenant)
        self.is_admin_check = is_admin_check  # e.g. the context_is_admin policy rule
        self.admin_role = admin_role.strip().lower()
        self.allow_anonymous_access = allow_anonymous_access
        self.max_request_id_length = max_request_id_length

    def build(self, req):
        request_id = self._request_id(req)
        headers = req.headers
        if headers.get("X-Identity-Status") != "Confirmed":
            if not self.allow_anonymous_access:
                raise webob.exc.HTTPUnauthorized()
            return RequestContext(
                read_only=True,
                request_id=request_id,
                owner_is_tenant=self.owner_is_tenant,
            )
        roles = [r.strip().lower() for r in headers.get("X-Roles", "").split(",") if r.strip()]
        catalog = None
        if "X-Service-Catalog" in headers:
            try:
                catalog = json.loads(headers["X-Service-Catalog"])
            except ValueError:
                raise webob.exc.HTTPBadRequest(
                    explanation="Invalid service catalog json."
                ) from None
        ctx = RequestContext(
            user_id=headers.get("X-User-Id") or headers.get("X-User"),
            tenant_id=headers.get("X-Tenant-Id")
            or headers.get("X-Project-Id")
            or headers.get("X-Tenant"),
            roles=roles,
            is_admin=self.admin_role in roles,
            auth_token=headers.get("X-Auth-Token"),
            request_id=request_id,
            owner_is_tenant=self.owner_is_tenant,
            service_catalog=catalog,
            identity_status="Confirmed",
        )
        if not ctx.is_admin and self.is_admin_check is not None:
            ctx.is_admin = self.is_admin_check(ctx)
        return ctx

    def _request_id(self, req) -> str:
        given = req.headers.get("X-Openstack-Request-ID")
        if not given:
            return f"req-{uuid.uuid4()}"
        if len(given) > self.max_request_id_length:
            raise webob.exc.HTTPRequestHeaderFieldsTooLarge(
                explanation="Request ID (X-Openstack-Request-ID) is longer than "
                f"{self.max_request_id_length} characters."
            )
        if wsgi.UNSAFE_IN_HEADER_VALUE.search(given):
            # a folded header line, or worse: it would be echoed in the response
            raise webob.exc.HTTPBadRequest(
                explanation="Request ID (X-Openstack-Request-ID) may not contain "
                "control characters."
            )
        return given if given.startswith("req-") else f"req-{given}"


def unauthenticated_filter_factory(global_conf, **local_conf):
    conf = config.get()
    return lambda app: UnauthenticatedContext(app, owner_is_tenant=conf.owner_is_tenant)


def context_filter_factory(global_conf, **local_conf):
    return trusted_auth_filter(config.get())


def trusted_auth_filter(conf, is_admin_check=None):
    def make(app):
        return TrustedAuthContext(
            app,
            owner_is_tenant=conf.owner_is_tenant,
            admin_role=conf.admin_role,
            allow_anonymous_access=conf.allow_anonymous_access,
            max_request_id_length=conf.max_request_id_length,
            is_admin_check=is_admin_check,
        )

    return make
