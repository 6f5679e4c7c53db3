"""`/healthcheck`, answered before anything else in the pipeline (oslo.middleware's
disable_by_file backend, in small): 200 "OK", or 503 while the disable file exists."""

import os

import webob
import webob.dec


class Healthcheck:
    def __init__(self, app, *, path: str = "/healthcheck", disable_by_file_path: str | None):
        self.app = app
        self.path = path
        self.disable_by_file_path = disable_by_file_path

    @webob.dec.wsgify
    def __call__(self, req: webob.Request):
        # the raw PATH_INFO: webob's decoded view fails on bytes that are not UTF-8
        if req.environ.get("PATH_INFO") != self.path or req.method not in ("GET", "HEAD"):
            return req.get_response(self.app)
        if self.disable_by_file_path and os.path.exists(self.disable_by_file_path):
            return webob.Response("DISABLED BY FILE", status=503, content_type="text/plain")
        return webob.Response("OK", content_type="text/plain")


def filter_factory(global_conf, **local_conf):
    def make(app):
        return Healthcheck(
            app,
            path=local_conf.get("path", "/healthcheck"),
            disable_by_file_path=local_conf.get("disable_by_file_path"),
        )

    return make
