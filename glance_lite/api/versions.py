"""The versions document and version negotiation in front of glance-api.

VersionNegotiation runs first in the pipeline: `/versions` answers 200 with the document;
otherwise the version comes from a `application/vnd.openstack.images-<v>` Accept header
or from the first path segment, and the request goes on with its path rewritten to
`/v1/...`; an unknown version (v2 among them: there is no v2 here) answers 300 with
the document.

The path is handled in its raw WSGI form (environ["PATH_INFO"], latin-1 str), never
decoded here: a path with bytes that are not UTF-8 reaches the router, which answers 400.
"""

import webob
import webob.dec

from glance_lite import config, wsgi

VND_MIME_PREFIX = "application/vnd.openstack.images-"

# (id, status) newest first, as Glance lists them. There is no v2 here: `enable_v2_api`
# is accepted and changes nothing (docs/differences.md), as listing v2 would send
# clients (glanceclient picks v2 when listed) to 404s.
V1_VERSIONS = (("v1.1", "DEPRECATED"), ("v1.0", "DEPRECATED"))
V1_TOKENS = ("v1", "v1.0", "v1.1")


def versions_document(base_url: str, *, v1_enabled: bool = True) -> dict:
    """`{"versions": [...]}` for the enabled APIs; hrefs are `<base_url>/v1/`."""
    href = base_url.rstrip("/") + "/v1/"
    entries = [_entry(version, status, href) for version, status in V1_VERSIONS]
    return {"versions": entries if v1_enabled else []}


def _entry(version: str, status: str, href: str) -> dict:
    return {"id": version, "status": status, "links": [{"rel": "self", "href": href}]}


class VersionsApp:
    """Answers every request with the versions document: 300 Multiple Choices."""

    def __init__(self, public_endpoint: str | None, *, v1_enabled: bool = True):
        self.public_endpoint = public_endpoint or None
        self.v1_enabled = v1_enabled

    def response(self, req: webob.Request, status: int) -> webob.Response:
        base = self.public_endpoint or req.host_url
        body = versions_document(base, v1_enabled=self.v1_enabled)
        return wsgi.json_response(body, status=status)

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> webob.Response:
        return self.response(req, 300)


class VersionNegotiation:
    """Paste filter: picks the API version of each request (Accept header, then path)."""

    def __init__(self, app, *, v1_enabled: bool = True, public_endpoint: str | None = None):
        self.app = app
        self.versions = VersionsApp(public_endpoint, v1_enabled=v1_enabled)
        self.tokens = frozenset(V1_TOKENS if v1_enabled else ())

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        environ = req.environ
        if _first_segment(environ.get("PATH_INFO", "")) == "versions":
            return self.versions.response(req, 200)
        accept = str(req.accept)  # webob's tidied header, as Glance compares it
        if accept.startswith(VND_MIME_PREFIX):
            token = accept[len(VND_MIME_PREFIX) :]
        else:
            token = _pop_segment(environ)
        if token not in self.tokens:
            return self.versions.response(req, 300)
        environ["api.version"] = 1
        environ["PATH_INFO"] = "/v1" + environ.get("PATH_INFO", "")
        return self.app


def _first_segment(path: str) -> str | None:
    """webob's path_info_peek(), on the raw path."""
    if not path.startswith("/"):
        return None
    return path[1:].split("/", 1)[0]


def _pop_segment(environ: dict) -> str | None:
    """Remove the first segment of PATH_INFO and return it (not pushed onto SCRIPT_NAME)."""
    path = environ.get("PATH_INFO", "")
    if not path:
        return None
    segment, slash, rest = path.lstrip("/").partition("/")
    environ["PATH_INFO"] = slash + rest
    return segment


# --- paste factories -----------------------------------------------------------------


def _options() -> dict:
    """The options both factories read."""
    conf = config.get()
    return {"public_endpoint": conf.public_endpoint, "v1_enabled": conf.enable_v1_api}


def versions_app_factory(global_conf, **local_conf) -> VersionsApp:
    options = _options()
    return VersionsApp(options["public_endpoint"], v1_enabled=options["v1_enabled"])


def negotiation_filter_factory(global_conf, **local_conf):
    options = _options()

    def negotiation_filter(app) -> VersionNegotiation:
        return VersionNegotiation(app, **options)

    return negotiation_filter
