"""glance-api's paste factories: the root URL map and the v1 application.

`v1_app_factory` reads the configuration once and builds plain objects (the registry
client, the stores, the policy enforcer and property protections); `make_app` takes
those and builds the v1 router, with the stack of repository layers every request gets
(outermost first: policy, protections, quotas). Tests build the api through make_app.
"""

from collections.abc import Callable

import webob
import webob.exc

from glance_lite import config, context, exceptions, offload, store, wsgi
from glance_lite.api import bodies, layers, leases, policy, sources
from glance_lite.api.images import ImagesController
from glance_lite.api.members import MembersController
from glance_lite.api.protections import PropertyProtections
from glance_lite.api.repository import ImageRepository
from glance_lite.api.router import make_router
from glance_lite.api.settle import Settler
from glance_lite.context import RequestContext
from glance_lite.registry.client import RegistryClient, client_from_conf
from glance_lite.store.base import Stores


class URLMap:
    """Sends a request to the app mounted at the longest matching path prefix.

    A request for a prefix without its trailing slash (`/v1`) is redirected to it
    (`/v1/`), as paste's urlmap does.
    """

    def __init__(self, apps: dict[str, Callable]):
        self.apps = sorted(apps.items(), key=lambda item: len(item[0]), reverse=True)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.apps:
            prefix = prefix.rstrip("/")
            if not prefix:
                return app(environ, start_response)
            if path == prefix:
                req = webob.Request(environ)
                location = req.host_url + req.script_name + prefix + "/"
                redirect = webob.Response(status=302, body=b"")
                # not the validating `location=`: a folded Host made it raise (500); the
                # context filter sends any control character of the value as a space
                redirect.headers["Location"] = location
                return redirect(environ, start_response)
            if path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                return app(environ, start_response)
        return webob.exc.HTTPNotFound()(environ, start_response)


def root_app_factory(loader, global_conf, **local_conf):
    """`[composite:rootapp]`: `/` the versions app, `/v1` the v1 API (if enabled)."""
    enabled = config.get().enable_v1_api
    apps = {
        path: loader.get_app(name, global_conf=global_conf)
        for path, name in local_conf.items()
        if path.startswith("/") and (path.rstrip("/") != "/v1" or enabled)
    }
    return URLMap(apps)


def context_filter_factory(global_conf, **local_conf):
    """The trusted-auth context filter; is_admin also when `context_is_admin` passes."""
    conf = config.get()
    return context.trusted_auth_filter(conf, shared_enforcer(conf).check_is_admin)


# The process's Enforcer of its configuration: the context filter and the v1 app are
# built by two paste factories, and share one Enforcer (one read of the policy file, one
# cache of answers) instead of building one each.
shared_enforcer: config.PerProcess[policy.Enforcer] = config.PerProcess(
    lambda conf: policy.from_conf(conf)
)


def v1_app_factory(global_conf, **local_conf):
    """`[app:apiv1app]`: reads the configuration once and hands make_app plain values."""
    conf = config.get()
    stores = store.shared(conf, offload=offload.current())
    enforcer = shared_enforcer(conf)
    protections = None
    if conf.property_protection_file:
        path = conf.find_file(conf.property_protection_file)
        if path is None:
            raise exceptions.ConfigError(
                f"property_protection_file {conf.property_protection_file} not found"
            )
        protections = PropertyProtections.from_file(
            path, conf.property_protection_rule_format, enforcer
        )
    return make_app(
        registry=client_from_conf(conf),
        stores=stores,
        enforcer=enforcer,
        protections=protections,
        delayed_delete=conf.delayed_delete,
        property_quota=conf.image_property_quota,
        member_quota=conf.image_member_quota,
        size_cap=conf.image_size_cap,
        storage_quota=layers.parse_storage_quota(conf.user_storage_quota),
        disk_formats=tuple(conf.image_format.disk_formats),
        container_formats=tuple(conf.image_format.container_formats),
        upload_chunk_size=conf.upload_chunk_size,
        max_json_body=conf.max_json_body_size,
        lease_terms=leases.terms_from_conf(conf),
        show_direct_url=conf.show_image_direct_url,
    )


def make_app(
    *,
    registry: RegistryClient,
    stores: Stores,
    enforcer: policy.Enforcer,
    protections: PropertyProtections | None,
    delayed_delete: bool,
    property_quota: int,
    member_quota: int,
    size_cap: int,
    storage_quota: int,
    disk_formats: tuple[str, ...],
    container_formats: tuple[str, ...],
    upload_chunk_size: int,
    max_json_body: int,
    lease_terms: leases.LeaseTerms | None = None,
    show_direct_url: bool = False,
    copier: sources.Copier | None = None,
) -> wsgi.Router:
    """The v1 router (without the context filter in front of it), from plain values.
    `lease_terms`: the upload leases this node takes (None: none, as in some tests)."""

    settler = Settler()

    def make_repo(ctx: RequestContext):
        """The per-request repository: the registry and stores, wrapped in its layers."""
        repo = ImageRepository(
            ctx,
            registry,
            stores,
            delayed_delete=delayed_delete,
            settler=settler,
            lease_terms=lease_terms,
        )
        repo = layers.QuotaLayer(
            repo,
            ctx,
            property_quota=property_quota,
            member_quota=member_quota,
            size_cap=size_cap,
            storage_quota=storage_quota,
        )
        if protections is not None:
            repo = layers.ProtectionLayer(repo, protections, ctx)
        return layers.PolicyLayer(repo, enforcer, ctx)

    images = ImagesController(
        make_repo,
        disk_formats=disk_formats,
        container_formats=container_formats,
        stores=stores,
        size_cap=size_cap,
        reader=bodies.BodyReader(chunk_size=upload_chunk_size),
        copier=copier or sources.Copier(),
        show_direct_url=show_direct_url,
    )
    return make_router(images, MembersController(make_repo, max_json_body=max_json_body))
