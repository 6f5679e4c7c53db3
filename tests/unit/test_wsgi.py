import routes
import webob

from glance_lite import exceptions, wsgi


class Controller:
    def show(self, req, item_id):
        if item_id == "missing":
            raise exceptions.NotFound(f"No item {item_id}")
        if item_id == "boom":
            raise RuntimeError("secret internals")
        return wsgi.json_response({"id": item_id})

    def create(self, req):
        return wsgi.json_response(wsgi.json_body(req), status=201)


def make_router():
    mapper = routes.Mapper()
    c = Controller()
    mapper.connect("/items/{item_id}", controller=c, action="show", conditions={"method": ["GET"]})
    mapper.connect("/items", controller=c, action="create", conditions={"method": ["POST"]})
    mapper.connect("/items", handler=wsgi.reject_method("POST"))
    return wsgi.Router(mapper)


def call(method, path, **kw):
    return webob.Request.blank(path, method=method, **kw).get_response(make_router())


def test_matched_route_calls_the_controller_action():
    resp = call("GET", "/items/abc")
    assert resp.status_int == 200
    assert resp.body == b'{"id": "abc"}'
    assert resp.content_type == "application/json"


def test_domain_error_becomes_its_status_with_the_message():
    resp = call("GET", "/items/missing")
    assert resp.status_int == 404
    assert b"No item missing" in resp.body


def test_unexpected_error_is_a_500_without_internals():
    resp = call("GET", "/items/boom")
    assert resp.status_int == 500
    assert b"secret internals" not in resp.body


def test_unknown_path_is_404_for_known_methods_and_501_for_others():
    assert call("DELETE", "/nothere").status_int == 404
    assert call("PATCH", "/nothere").status_int == 404
    resp = call("FOO", "/nothere")
    assert resp.status_int == 501
    assert b"The request method FOO is not implemented" in resp.body


def test_reject_method_answers_405_with_allow():
    resp = call("PUT", "/items")
    assert resp.status_int == 405
    assert resp.headers["Allow"] == "POST"


def test_malformed_json_body_is_400():
    resp = call("POST", "/items", body=b"{nope", content_type="application/json")
    assert resp.status_int == 400
    assert b"Malformed JSON in request body." in resp.body


def test_undecodable_query_string_is_400():
    resp = call("GET", "/items/abc?name=%ff")
    assert resp.status_int == 400
    assert b"Error decoding your request" in resp.body


def test_undecodable_path_is_400():
    resp = call("GET", "/items/%ff")
    assert resp.status_int == 400
