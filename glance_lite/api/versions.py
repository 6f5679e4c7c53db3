"""The versions document and version negotiation in front of glance-api (api-v1.md §1.1-1.2).

VersionNegotiation runs first in the pipeline: `/versions` answers 200 with the document;
otherwise the version comes from a `application/vnd.openstack.images-<v>` Accept header
or from the first path segment, and the request goes on with its path rewritten to
`/v<major>/...`; an unknown version answers 300 with the document.

The path is handled in its raw WSGI form (environ["PATH_INFO"], latin-1 str), never
decoded here: a path with bytes that are not UTF-8 reaches the router, which answers 400.
"""

import webob
import webob.dec

from glance_lite import config, wsgi

VND_MIME_PREFIX = "application/vnd.openstack.images-"

# Whether this glance-api serves /v2 at all (see _options).
V2_AVAILABLE = False

# (id, status) newest first, as Glance lists them; v1 entries link to /v1/, v2 to /v2/.
V2_VERSIONS = (
    ("v2.6", "CURRENT"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
)
V1_VERSIONS = (("v1.1", "DEPRECATED"), ("v1.0", "DEPRECATED"))

V1_TOKENS = ("v1", "v1.0", "v1.1")
V2_TOKENS = ("v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6")


def versions_document(base_url: str, *, v1_enabled: bool = True, v2_enabled: bool = False) -> dict:
    """`{"versions": [...]}` for the enabled APIs; hrefs are `<base_url>/vN/`."""
    base = base_url.rstrip("/")
    entries = []
    if v2_enabled:
        entries += [_entry(version, status, f"{base}/v2/") for version, status in V2_VERSIONS]
    if v1_enabled:
        entries += [_entry(version, status, f"{base}/v1/") for version, status in V1_VERSIONS]
    return {"versions": entries}


def _entry(version: str, status: str, href: str) -> dict:
    return {"id": version, "status": status, "links": [{"rel": "self", "href": href}]}


def allowed_versions(*, v1_enabled: bool, v2_enabled: bool) -> dict[str, int]:
    """Version token -> major version, for the enabled APIs."""
    allowed = {}
    if v1_enabled:
        allowed.update(dict.fromkeys(V1_TOKENS, 1))
    if v2_enabled:
        allowed.update(dict.fromkeys(V2_TOKENS, 2))
    return allowed


class VersionsApp:
    """Answers every request with the versions document: 300 Multiple Choices."""

    def __init__(
        self, public_endpoint: str | None, *, v1_enabled: bool = True, v2_enabled: bool = False
    ):
        self.public_endpoint = public_endpoint or None
        self.v1_enabled = v1_enabled
        self.v2_enabled = v2_enabled

    def response(self, req: webob.Request, status: int) -> webob.Response:
        base = self.public_endpoint or req.host_url
        body = versions_document(base, v1_enabled=self.v1_enabled, v2_enabled=self.v2_enabled)
        return wsgi.json_response(body, status=status)

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> webob.Response:
        return self.response(req, 300)


class VersionNegotiation:
    """Paste filter: picks the API version of each request (api-v1.md §1.1)."""

    def __init__(
        self,
        app,
        *,
        v1_enabled: bool = True,
        v2_enabled: bool = False,
        public_endpoint: str | None = None,
    ):
        self.app = app
        self.versions = VersionsApp(public_endpoint, v1_enabled=v1_enabled, v2_enabled=v2_enabled)
        self.allowed = allowed_versions(v1_enabled=v1_enabled, v2_enabled=v2_enabled)

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
        major = self.allowed.get(token)
        if major is None:
            return self.versions.response(req, 300)
        environ["api.version"] = major
        environ["PATH_INFO"] = f"/v{major}" + environ.get("PATH_INFO", "")
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
    """The options both factories read, with Glance's defaults until config.py has them.

    `enable_v2_api` is read but cannot enable anything: glance-lite has no v2 API, and
    advertising one would send clients (glanceclient picks v2 when listed) to 404s.
    """
    conf = config.get()
    return {
        "public_endpoint": getattr(conf, "public_endpoint", None),
        "v1_enabled": bool(getattr(conf, "enable_v1_api", True)),
        "v2_enabled": bool(getattr(conf, "enable_v2_api", True)) and V2_AVAILABLE,
    }


def versions_app_factory(global_conf, **local_conf) -> VersionsApp:
    options = _options()
    return VersionsApp(
        options["public_endpoint"],
        v1_enabled=options["v1_enabled"],
        v2_enabled=options["v2_enabled"],
    )


def negotiation_filter_factory(global_conf, **local_conf):
    options = _options()

    def negotiation_filter(app) -> VersionNegotiation:
        return VersionNegotiation(app, **options)

    return negotiation_filter
