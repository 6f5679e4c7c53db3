"""Who may change what through the registry: the one read-only check of every write."""

import webob

from glance_lite import context, exceptions


def writable_context(req: webob.Request) -> context.RequestContext:
    """The caller's context; 403 `Read-only access` for a read-only one (an anonymous
    caller when the api allows anonymous reads)."""
    ctx = context.from_environ(req.environ)
    if ctx.read_only:
        raise exceptions.Forbidden("Read-only access")
    return ctx
