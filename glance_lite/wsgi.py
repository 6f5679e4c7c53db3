"""Plain-WSGI plumbing shared by both services: routing, JSON, and the one place where
domain errors become HTTP responses. Nothing here knows about eventlet (see server/).
"""

import json
import logging
import re

import routes
import webob
import webob.dec
import webob.exc
from paste import deploy

from glance_lite import config, exceptions

LOG = logging.getLogger(__name__)

# Methods answered with 404 on an unknown path; any other method gets 501 there.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})

# environ key of a callable the server module provides: "close the connection after this
# response instead of reading the rest of the request body" (absent under other servers).
CLOSE_CONNECTION_HOOK = "glance_lite.close_connection"

# Bytes of a JSON request body read at a time (read_body).
BODY_PIECE = 64 * 1024

# What may not appear in a response header value: control characters but tab. CR and LF
# would end the header line and start one the client never sent.
UNSAFE_IN_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

DECODE_ERROR = (
    "Error decoding your request. Either the URL or the request body contained "
    "characters that could not be decoded by Glance"
)


def safe_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`headers` with every control character of a value (CR, LF, ...; not tab) sent as a
    space, as a folded header line is read: text from a request or from stored metadata
    can never add a header line of its own."""
    if not any(UNSAFE_IN_HEADER_VALUE.search(value) for _, value in headers):
        return headers  # the usual case: one scan, no copy
    return [(name, UNSAFE_IN_HEADER_VALUE.sub(" ", value)) for name, value in headers]


def error_response(err: exceptions.GlanceLiteError) -> webob.exc.HTTPException:
    headers = None if err.retry_after is None else {"Retry-After": str(err.retry_after)}
    return webob.exc.status_map[err.status](explanation=str(err), headers=headers)


def json_response(body, status: int = 200, headers=None) -> webob.Response:
    """JSON with Python's default separators, as Glance (and its clients' tests) expect."""
    resp = webob.Response(status=status, content_type="application/json", charset=None)
    resp.body = json.dumps(body).encode("utf-8")
    if headers:
        resp.headers.update(headers)
    return resp


def json_body(req: webob.Request, *, limit: int, required: bool = True):
    """The request's JSON document; 400 when it cannot be read, 413 over `limit` bytes."""
    raw = read_body(req, limit)
    if not raw:
        if required:
            raise exceptions.Invalid("Malformed JSON in request body.")
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise exceptions.Invalid(DECODE_ERROR) from None
    except ValueError:
        raise exceptions.Invalid("Malformed JSON in request body.") from None


def read_body(req: webob.Request, limit: int) -> bytes:
    """The whole (small) request body, of at most `limit` bytes.

    A longer body is a 413: at once when its Content-Length says so, before any of it is
    read, else as soon as the bytes read pass the limit; then the connection is closed
    after the answer instead of reading the rest. So a body never costs more memory
    than the limit, whatever the client sends. (Read straight from wsgi.input, a small
    body costs 1 us here where webob's req.body, which copies it into a seekable file
    first, took 13 us: every registry create and update reads one.)
    """
    length = req.content_length
    if not length and req.headers.get("Transfer-Encoding") is None:
        return b""
    if length is not None and length > limit:
        _refuse_body(req, limit)
    stream = req.environ["wsgi.input"]
    parts = []
    total = 0
    try:
        while length is None or total < length:
            want = BODY_PIECE if length is None else min(BODY_PIECE, length - total)
            piece = stream.read(want)
            if not piece:
                break
            total += len(piece)
            if total > limit:
                _refuse_body(req, limit)
            parts.append(piece)
    except (OSError, ValueError):
        # a connection lost mid-body, or bad chunked framing (eventlet raises these)
        raise exceptions.Invalid("The request body could not be read to its end.") from None
    return b"".join(parts)


def _refuse_body(req: webob.Request, limit: int):
    hook = req.environ.get(CLOSE_CONNECTION_HOOK)
    if hook is not None:
        hook()
    raise exceptions.LimitExceeded(
        f"Request body too large: the limit is {limit} bytes (max_json_body_size)."
    )


def reject_method(allow: str | None):
    """A route target that answers 405, with an Allow header when `allow` is given."""

    def reject(req, **_):
        headers = {"Allow": allow} if allow else {}
        raise webob.exc.HTTPMethodNotAllowed(headers=headers)

    return reject


class Router:
    """Dispatches a request through a routes.Mapper to `controller.action(req, **args)`.

    Connect routes with `controller=<object>` and `action=<method name>`, or with
    `handler=<callable>` for one-off answers such as reject_method(). Errors raised
    anywhere below become responses here, once.
    """

    def __init__(self, mapper: routes.Mapper):
        self.mapper = mapper

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        try:
            path = req.path_info
            req.GET  # noqa: B018 - decode the query string now, so bad bytes give 400
        except UnicodeDecodeError:
            return webob.exc.HTTPBadRequest(explanation=DECODE_ERROR)
        found = self.mapper.routematch(path, environ=req.environ)
        if found is None:
            if req.method in KNOWN_METHODS:
                return webob.exc.HTTPNotFound()
            return webob.exc.HTTPNotImplemented(
                explanation=f"The request method {req.method} is not implemented for this server."
            )
        match, route = found
        # routes hands back str() of non-string defaults; the objects themselves stay in
        # the route's keyword arguments (Routes is pinned below 3 in setup.cfg).
        targets = route._kargs
        args = {k: v for k, v in match.items() if k not in ("controller", "action", "handler")}
        handler = targets.get("handler") or getattr(targets["controller"], targets["action"])
        return call_translating_errors(handler, req, args)


def call_translating_errors(handler, req, args):
    try:
        return handler(req, **args)
    except webob.exc.HTTPException as exc:
        return exc
    except exceptions.GlanceLiteError as err:
        return error_response(err)
    except UnicodeDecodeError:
        return webob.exc.HTTPBadRequest(explanation=DECODE_ERROR)
    except Exception:
        LOG.exception("Unexpected error handling %s %s", req.method, req.path)
        return webob.exc.HTTPInternalServerError()


def load_paste_app(conf, service: str):
    """Load the pipeline `[paste_deploy] flavor` names from the service's paste ini."""
    path = config.paste_config_path(conf, service)
    name = config.pipeline_name(conf, service)
    flavor = conf.paste_deploy.flavor or ""
    try:
        return deploy.loadapp(f"config:{path}", name=name)
    except LookupError as exc:
        raise exceptions.ConfigError(
            f"cannot load pipeline '{name}' from {path} ([paste_deploy] flavor = '{flavor}'): {exc}"
        ) from None
