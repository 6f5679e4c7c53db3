"""A requests transport that calls a WSGI app in-process: the real client, no socket."""

import io

import requests
import requests.adapters
import webob
from urllib3.response import HTTPResponse


class WSGIAdapter(requests.adapters.BaseAdapter):
    def __init__(self, app):
        super().__init__()
        self.app = app

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            body = b"".join(body)
        wreq = webob.Request.blank(request.path_url, method=request.method, body=body)
        wreq.headers.update(request.headers)
        wresp = wreq.get_response(self.app)
        raw = HTTPResponse(
            body=io.BytesIO(wresp.body),
            headers=list(wresp.headerlist),
            status=wresp.status_int,
            reason=wresp.status.split(" ", 1)[1],
            preload_content=False,
        )
        return self.build_response(request, raw)

    def build_response(self, request, raw):
        resp = requests.Response()
        resp.status_code = raw.status
        resp.headers = requests.structures.CaseInsensitiveDict(raw.headers)
        resp.raw = raw
        resp.reason = raw.reason
        resp.url = request.url
        resp.request = request
        resp.encoding = requests.utils.get_encoding_from_headers(resp.headers)
        return resp

    def close(self):
        pass


class AnswerLosingAdapter(WSGIAdapter):
    """Serves every request, but for those `loses(request)` picks, the answer is lost: a
    read timeout, as from a registry that applied the request and then stopped."""

    def __init__(self, app, loses):
        super().__init__(app)
        self.loses = loses

    def send(self, request, *args, **kw):
        resp = super().send(request, *args, **kw)
        if self.loses(request):
            raise requests.ReadTimeout("read timed out (answer lost)", request=request)
        return resp


def session_for(
    app, base_url: str = "http://registry.test", adapter: WSGIAdapter | None = None
) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # as the real client's session
    session.mount(base_url, adapter or WSGIAdapter(app))
    return session
