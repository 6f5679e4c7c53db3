import webob

from glance_lite.healthcheck import Healthcheck


def inner(environ, start_response):
    start_response("418 I'm a teapot", [])
    return [b"inner"]


def test_healthcheck_answers_ok_without_reaching_the_app(tmp_path):
    app = Healthcheck(inner, disable_by_file_path=str(tmp_path / "off"))
    resp = webob.Request.blank("/healthcheck").get_response(app)
    assert (resp.status_int, resp.text) == (200, "OK")


def test_healthcheck_is_503_while_the_disable_file_exists(tmp_path):
    (tmp_path / "off").write_text("")
    app = Healthcheck(inner, disable_by_file_path=str(tmp_path / "off"))
    resp = webob.Request.blank("/healthcheck").get_response(app)
    assert (resp.status_int, resp.text) == (503, "DISABLED BY FILE")


def test_other_paths_pass_through():
    app = Healthcheck(inner, disable_by_file_path=None)
    assert webob.Request.blank("/images").get_response(app).status_int == 418


def test_a_path_that_is_not_utf8_passes_through():
    app = Healthcheck(inner, disable_by_file_path=None)
    req = webob.Request.blank("/")
    req.environ["PATH_INFO"] = "/v1/images/\xff"
    assert req.get_response(app).status_int == 418
