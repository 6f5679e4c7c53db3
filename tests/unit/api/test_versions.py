"""The versions document, the versions app and version negotiation."""

import json

import pytest
import webob
import webob.dec
from oslo_config import cfg

from glance_lite import config
from glance_lite.api import versions

VND = "application/vnd.openstack.images-"


def v1_entries(base: str) -> list[dict]:
    link = [{"rel": "self", "href": f"{base}/v1/"}]
    return [
        {"id": "v1.1", "status": "DEPRECATED", "links": link},
        {"id": "v1.0", "status": "DEPRECATED", "links": link},
    ]


@webob.dec.wsgify
def echo_app(req):
    """Stands for the root URL map: tells which path and version reached it."""
    return webob.Response(
        json={
            "path": req.environ["PATH_INFO"],
            "script": req.environ["SCRIPT_NAME"],
            "version": req.environ.get("api.version"),
        }
    )


def negotiate(path: str, accept: str | None = None, **options) -> webob.Response:
    app = versions.VersionNegotiation(echo_app, **options)
    headers = {"Accept": accept} if accept is not None else {}
    return webob.Request.blank(path, headers=headers).get_response(app)


def passed_on(resp: webob.Response) -> dict:
    assert resp.status_int == 200, resp.body
    return resp.json


# --- versions_document ------------------------------------------------------------


def test_document_lists_the_two_deprecated_v1_versions():
    assert versions.versions_document("http://h:9292") == {"versions": v1_entries("http://h:9292")}


def test_document_without_v1_is_empty():
    assert versions.versions_document("http://h", v1_enabled=False) == {"versions": []}


def test_a_trailing_slash_on_the_base_is_not_doubled():
    doc = versions.versions_document("https://images.example.com/")
    assert doc["versions"][0]["links"][0]["href"] == "https://images.example.com/v1/"


# --- VersionsApp ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_versions_app_answers_300_with_the_document(method):
    resp = webob.Request.blank("/", method=method).get_response(versions.VersionsApp(None))
    assert resp.status_int == 300
    assert resp.content_type == "application/json"
    if method != "HEAD":
        assert json.loads(resp.body) == {"versions": v1_entries("http://localhost")}


def test_versions_body_uses_python_default_separators():
    resp = webob.Request.blank("/").get_response(versions.VersionsApp("http://x"))
    assert resp.body == json.dumps({"versions": v1_entries("http://x")}).encode()
    assert b'"id": "v1.1"' in resp.body


def test_versions_app_links_to_the_public_endpoint_when_set():
    app = versions.VersionsApp("https://images.example.com")
    resp = webob.Request.blank("/").get_response(app)
    assert resp.json == {"versions": v1_entries("https://images.example.com")}


def test_versions_app_links_to_the_request_host_otherwise():
    req = webob.Request.blank("/", headers={"Host": "glance.local:9292"})
    resp = req.get_response(versions.VersionsApp(""))
    assert resp.json == {"versions": v1_entries("http://glance.local:9292")}


# --- VersionNegotiation: Accept header, then path ----------------------------------------


@pytest.mark.parametrize("accept", [None, "*/*", "text/html", "application/json"])
def test_root_is_300_with_the_document(accept):
    resp = negotiate("/", accept)
    assert resp.status_int == 300
    assert resp.json == {"versions": v1_entries("http://localhost")}


def test_a_path_that_is_not_a_version_is_300():
    assert negotiate("/images").status_int == 300


def test_the_vnd_accept_header_picks_the_version_and_keeps_the_path():
    assert passed_on(negotiate("/images", f"{VND}v1")) == {
        "path": "/v1/images",
        "script": "",
        "version": 1,
    }


@pytest.mark.parametrize("accept", ["application/vnd.openstack.compute-v1", f"{VND}v10"])
def test_an_unknown_accept_type_or_version_is_300(accept):
    assert negotiate("/images", accept).status_int == 300


def test_a_vnd_header_with_parameters_is_not_a_known_version():
    assert negotiate("/images", f"{VND}v1;q=0.5").status_int == 300


@pytest.mark.parametrize("prefix", ["/v1", "/v1.0", "/v1.1"])
def test_v1_paths_go_on_as_v1(prefix):
    assert passed_on(negotiate(f"{prefix}/images"))["path"] == "/v1/images"


@pytest.mark.parametrize("path", ["/v1.2/images", "/v1.a/images", "/va.1/images", "/v10", "/V1"])
def test_unknown_version_paths_are_300(path):
    resp = negotiate(path)
    assert resp.status_int == 300
    assert resp.json == {"versions": v1_entries("http://localhost")}


@pytest.mark.parametrize("accept", [None, f"{VND}v1"])
@pytest.mark.parametrize("path", ["/versions", "/versions/", "/versions/anything"])
def test_versions_path_is_200_with_the_document(path, accept):
    resp = negotiate(path, accept)
    assert resp.status_int == 200
    assert resp.content_type == "application/json"
    assert resp.json == {"versions": v1_entries("http://localhost")}


def test_versions_under_v1_is_routed_into_v1():
    assert passed_on(negotiate("/v1/versions"))["path"] == "/v1/versions"


def test_v1_without_a_slash_reaches_the_url_map_as_v1_for_its_redirect():
    assert passed_on(negotiate("/v1")) == {"path": "/v1", "script": "", "version": 1}


def test_the_bare_v1_root_keeps_its_slash():
    assert passed_on(negotiate("/v1/"))["path"] == "/v1/"


def test_an_empty_path_is_300():
    app = versions.VersionNegotiation(echo_app)
    req = webob.Request.blank("/")
    req.environ["PATH_INFO"] = ""
    assert req.get_response(app).status_int == 300


def test_leading_slashes_are_skipped_when_popping_the_version():
    assert passed_on(negotiate("//v1/images"))["path"] == "/v1/images"


def test_an_undecodable_path_is_passed_on_raw_for_the_router_to_refuse():
    assert passed_on(negotiate("/v1/images/%ff"))["path"] == "/v1/images/\xff"


def test_an_undecodable_version_segment_is_300():
    assert negotiate("/v%ff/images").status_int == 300


@pytest.mark.parametrize("token", ["v2", "v2.0", "v2.6"])
def test_v2_tokens_are_unknown_versions(token):
    # glance-lite has no v2 API, whatever enable_v2_api says
    assert negotiate(f"/{token}/images").status_int == 300
    assert negotiate("/images", f"{VND}{token}").status_int == 300


def test_v1_tokens_are_refused_when_v1_is_disabled():
    resp = negotiate("/v1/images", v1_enabled=False)
    assert resp.status_int == 300
    assert resp.json == {"versions": []}


def test_the_300_document_links_to_the_public_endpoint():
    resp = negotiate("/nope", public_endpoint="https://images.example.com")
    assert resp.json == {"versions": v1_entries("https://images.example.com")}


# --- paste factories ---------------------------------------------------------------


@pytest.fixture
def loaded_conf(monkeypatch):
    conf = cfg.ConfigOpts()
    conf([], project="glance-lite-test", default_config_files=[])
    monkeypatch.setattr(config, "_current", conf)
    return conf


def test_factories_read_the_options(loaded_conf):
    loaded_conf.register_opts(
        [
            cfg.StrOpt("public_endpoint"),
            cfg.BoolOpt("enable_v1_api", default=True),
            cfg.BoolOpt("enable_v2_api", default=True),
        ]
    )
    loaded_conf.set_override("public_endpoint", "https://images.example.com")
    loaded_conf.set_override("enable_v1_api", False)
    negotiation = versions.negotiation_filter_factory({})(echo_app)
    resp = webob.Request.blank("/v1/images").get_response(negotiation)
    assert resp.status_int == 300
    # enable_v2_api=True cannot advertise a v2 this service does not have.
    assert resp.json == {"versions": []}
    assert versions.versions_app_factory({}).public_endpoint == "https://images.example.com"
