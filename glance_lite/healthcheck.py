"""`/healthcheck`, answered before anything else in the pipeline (oslo.middleware's
disable_by_file backend, in small): 200 "OK", or 503 while the disable file exists."""

import os

import webob


class Healthcheck:
    def __init__(self, app, *, path: str = "/healthcheck", disable_by_file_path: str | None):
        self.app = app
        self.path = path
        self.disable_by_file_path = disable_by_file_path

    def __call__(self, environ, start_response):
        # the raw PATH_INFO: webob's decoded view fails on bytes that are not UTF-8.
        # Anything else passes through untouched (no request/response objects on the way).
        if environ.get("PATH_INFO") != self.path or environ["REQUEST_METHOD"] not in (
            "GET",
            "HEAD",
        ):
            return self.app(environ, start_response)
        if self.disable_by_file_path and os.path.exists(self.disable_by_file_path):
            resp = webob.Response("DISABLED BY FILE", status=503, content_type="text/plain")
        else:
            resp = webob.Response("OK", content_type="text/plain")
        return resp(environ, start_response)


def filter_factory(global_conf, **local_conf):
    def make(app):
        return Healthcheck(
            app,
            path=local_conf.get("path", "/healthcheck"),
            disable_by_file_path=local_conf.get("disable_by_file_path"),
        )

    return make
