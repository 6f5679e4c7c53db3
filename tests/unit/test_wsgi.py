import io
import json

import pytest
import routes
import webob

from glance_lite import exceptions, opts, wsgi

BODY_LIMIT = 1024


class Controller:
    def show(self, req, item_id):
        if item_id == "missing":
            raise exceptions.NotFound(f"No item {item_id}")
        if item_id == "stalled":
            raise exceptions.RegistryUnavailable("The image registry is unavailable: no answer.")
        if item_id == "boom":
            raise RuntimeError("secret internals")
        return wsgi.json_response({"id": item_id})

    def create(self, req):
        return wsgi.json_response(wsgi.json_body(req, limit=BODY_LIMIT), status=201)


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


class CountingInput(io.BytesIO):
    """A request body stream that counts what is read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        piece = super().read(size)
        self.taken += len(piece)
        return piece


def post_json(body: bytes, *, declared: bool) -> tuple[webob.Response, CountingInput, list]:
    req = webob.Request.blank("/items", method="POST", content_type="application/json")
    stream = CountingInput(body)
    req.environ["wsgi.input"] = stream
    if declared:
        req.content_length = len(body)
    else:
        req.headers["Transfer-Encoding"] = "chunked"
    closed = []
    req.environ[wsgi.CLOSE_CONNECTION_HOOK] = lambda: closed.append(True)
    return req.get_response(make_router()), stream, closed


@pytest.mark.parametrize("declared", [True, False])
def test_a_json_body_within_the_limit_is_read_whole(declared):
    body = json.dumps({"a": "x" * (BODY_LIMIT - 20)}).encode()
    assert len(body) <= BODY_LIMIT
    resp, _, closed = post_json(body, declared=declared)
    assert resp.status_int == 201
    assert resp.json == json.loads(body)
    assert closed == []


def test_a_declared_json_body_over_the_limit_is_413_before_any_of_it_is_read():
    resp, stream, closed = post_json(b"[" + b"1," * BODY_LIMIT + b"1]", declared=True)
    assert resp.status_int == 413
    assert f"Request body too large: the limit is {BODY_LIMIT} bytes" in resp.text
    assert stream.taken == 0
    assert closed == [True]


def test_a_chunked_json_body_is_cut_off_once_over_the_limit():
    resp, stream, closed = post_json(b"[" + b"1," * (100 * BODY_LIMIT) + b"1]", declared=False)
    assert resp.status_int == 413
    assert stream.taken <= BODY_LIMIT + wsgi.BODY_PIECE
    assert closed == [True]


def test_the_default_limit_admits_the_largest_legal_body_however_escaped():
    # 128 properties of 65,535 bytes, each character one that JSON escapes as \u00XX
    properties = {f"{i:03}" + "n" * 252: "\x01" * 65535 for i in range(128)}
    largest = json.dumps({"image": {"name": "n" * 255, "properties": properties}})
    default = next(o.default for o in opts.json_body_opts if o.name == "max_json_body_size")
    assert len(largest) <= default


def test_an_unavailable_registry_is_503_with_retry_after():
    resp = call("GET", "/items/stalled")
    assert resp.status_int == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert "The image registry is unavailable: no answer." in resp.text


def test_other_errors_have_no_retry_after():
    assert "Retry-After" not in call("GET", "/items/missing").headers
