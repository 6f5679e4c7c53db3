"""The paste filter `cachemanage`: the node's cache seen and managed over HTTP.

    GET    /v1/cached_images             {"cached_images": [entry, ...]} by image id
    DELETE /v1/cached_images             {"num_deleted": n}
    DELETE /v1/cached_images/{image_id}  null (404: not cached here)
    GET    /v1/queued_images             {"queued_images": [id, ...]} the oldest first
    DELETE /v1/queued_images             {"num_deleted": n}
    PUT    /v1/queued_images/{image_id}  null (404: no such image; cached, being cached
                                         or queued already: nothing to do)
    DELETE /v1/queued_images/{image_id}  null (404: not queued)

Every route needs the policy `manage_image_cache` (admins only by default): 403
otherwise. Any other request goes on to the app.
"""

from __future__ import annotations

import logging

import routes
import webob
import webob.dec

from glance_lite import config, exceptions, wsgi
from glance_lite.api.app import shared_enforcer
from glance_lite.api.policy import Enforcer
from glance_lite.cache import driver_from_conf
from glance_lite.cache.base import CacheDriver, valid_id
from glance_lite.context import from_environ
from glance_lite.registry.client import RegistryClient, client_from_conf

LOG = logging.getLogger(__name__)


class CacheManageFilter:
    def __init__(self, app, driver: CacheDriver, enforcer: Enforcer, registry: RegistryClient):
        self.app = app
        self.driver = driver
        self.enforcer = enforcer
        self.registry = registry
        mapper = routes.Mapper()
        for path, method, action in (
            ("/v1/cached_images", "GET", self.cached_images),
            ("/v1/cached_images", "DELETE", self.delete_cached_images),
            ("/v1/cached_images/{image_id}", "DELETE", self.delete_cached_image),
            ("/v1/queued_images", "GET", self.queued_images),
            ("/v1/queued_images", "DELETE", self.delete_queued_images),
            ("/v1/queued_images/{image_id}", "PUT", self.queue_image),
            ("/v1/queued_images/{image_id}", "DELETE", self.delete_queued_image),
        ):
            mapper.connect(path, handler=action, conditions={"method": [method]})
        self.mapper = mapper

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        found = self.mapper.routematch(req.path_info, environ=req.environ)
        if found is None:
            return req.get_response(self.app)
        match, route = found
        args = {k: v for k, v in match.items() if k != "handler"}
        return wsgi.call_translating_errors(self._guarded(route._kargs["handler"]), req, args)

    def _guarded(self, handler):
        def call(req: webob.Request, **args):
            self.enforcer.enforce(from_environ(req.environ), "manage_image_cache", {})
            image_id = args.get("image_id")
            if image_id is not None and not valid_id(image_id):
                raise exceptions.NotFound(f"No image with identifier {image_id}.")
            return handler(req, **args)

        return call

    def cached_images(self, req):
        entries = [
            {
                "image_id": e.image_id,
                "hits": e.hits,
                "last_accessed": e.last_accessed,
                "last_modified": e.last_modified,
                "size": e.size,
            }
            for e in self.driver.entries()
        ]
        return wsgi.json_response({"cached_images": entries})

    def delete_cached_images(self, req):
        return wsgi.json_response({"num_deleted": self.driver.delete_all_cached_images()})

    def delete_cached_image(self, req, image_id: str):
        self.driver.delete_cached_image(image_id)
        return wsgi.json_response(None)

    def queued_images(self, req):
        return wsgi.json_response({"queued_images": self.driver.get_queued_images()})

    def delete_queued_images(self, req):
        return wsgi.json_response({"num_deleted": self.driver.delete_all_queued_images()})

    def queue_image(self, req, image_id: str):
        try:
            self.registry.get_image(from_environ(req.environ), image_id)
        except exceptions.NotFound:
            raise exceptions.NotFound(f"No image with identifier {image_id}.") from None
        self.driver.queue_image(image_id)
        return wsgi.json_response(None)

    def delete_queued_image(self, req, image_id: str):
        self.driver.delete_queued_image(image_id)
        return wsgi.json_response(None)


def filter_factory(global_conf, **local_conf):
    """`[filter:cachemanage]`: the node's cache, the policy and the registry, read once."""
    conf = config.get()
    driver = driver_from_conf(conf)
    enforcer = shared_enforcer(conf)
    registry = client_from_conf(conf)

    def make(app):
        return CacheManageFilter(app, driver, enforcer, registry)

    return make
