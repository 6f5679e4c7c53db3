"""Small builders shared by the test suites."""

from glance_lite.context import RequestContext


def make_context(
    tenant_id: str | None = None,
    *,
    is_admin: bool = False,
    user_id: str | None = None,
    roles: list[str] | None = None,
    **kwargs,
) -> RequestContext:
    """A RequestContext for `tenant_id` (the owner of what it creates by default)."""
    if roles is None:
        roles = ["admin"] if is_admin else ["member"]
    return RequestContext(
        tenant_id=tenant_id,
        user_id=user_id or (f"user-of-{tenant_id}" if tenant_id else None),
        roles=roles,
        is_admin=is_admin,
        **kwargs,
    )


def admin_context(tenant_id: str | None = None, **kwargs) -> RequestContext:
    return make_context(tenant_id, is_admin=True, **kwargs)
