"""The registry's shared-secret filter."""

import pytest
import webob

from glance_lite import config, opts
from glance_lite.registry import secret

SECRET = "s3cr\u00e9t-value"


@webob.dec.wsgify
def hello(req):
    return webob.Response("hello")


def call(app, headers=None) -> webob.Response:
    req = webob.Request.blank("/images")
    for name, value in (headers or {}).items():
        req.environ["HTTP_" + name.upper().replace("-", "_")] = value
    return req.get_response(app)


def as_wsgi(text: str) -> str:
    """A header value as a WSGI server hands it over: its UTF-8 bytes, latin-1 decoded."""
    return text.encode("utf-8").decode("latin-1")


@pytest.fixture
def guarded():
    return secret.secured(hello, SECRET)


def test_the_right_secret_lets_the_request_through(guarded):
    resp = call(guarded, {secret.HEADER: as_wsgi(SECRET)})
    assert (resp.status_int, resp.text) == (200, "hello")


def test_a_missing_secret_is_a_401_saying_so(guarded):
    resp = call(guarded)
    assert resp.status_int == 401
    assert "X-Glance-Registry-Secret header is missing" in resp.text


@pytest.mark.parametrize("given", ["", "wrong", as_wsgi(SECRET) + "x", SECRET, "\u20ac"])
def test_a_wrong_secret_is_a_401_that_does_not_echo_the_secret(guarded, given):
    resp = call(guarded, {secret.HEADER: given})
    assert resp.status_int == 401
    assert "X-Glance-Registry-Secret header is wrong" in resp.text
    assert "s3cr" not in resp.text


def test_without_a_configured_secret_the_app_is_not_wrapped():
    assert secret.secured(hello, None) is hello
    assert secret.secured(hello, "") is hello


@pytest.fixture
def registry_conf(monkeypatch):
    conf = config.load("glance-registry", opts.register_registry_opts, argv=[])
    monkeypatch.setattr(config, "_current", conf)
    return conf


def test_the_paste_filter_reads_the_secret_from_the_configuration(registry_conf):
    registry_conf.set_override("registry_shared_secret", "abc")
    app = secret.filter_factory({})(hello)
    assert call(app).status_int == 401
    assert call(app, {secret.HEADER: "abc"}).status_int == 200


def test_the_paste_filter_passes_everything_when_no_secret_is_configured(registry_conf):
    assert secret.filter_factory({})(hello) is hello
