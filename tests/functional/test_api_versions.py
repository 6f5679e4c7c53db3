"""glance-api's front: version negotiation, the versions document, v1 routing and
request ids."""

import json
import re
import uuid

import pytest
import requests

pytestmark = pytest.mark.functional

VND = "application/vnd.openstack.images-"
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def versions_body(base: str) -> dict:
    link = [{"rel": "self", "href": f"{base}/v1/"}]
    return {
        "versions": [
            {"id": "v1.1", "status": "DEPRECATED", "links": link},
            {"id": "v1.0", "status": "DEPRECATED", "links": link},
        ]
    }


def fetch(client, path: str, accept: str | None = None, method: str = "GET"):
    headers = {"Accept": accept} if accept else {}
    return requests.request(
        method, f"{client.url}{path}", headers=headers, timeout=10, allow_redirects=False
    )


@pytest.mark.parametrize(
    ("path", "accept", "status"),
    [
        ("/", None, 300),
        ("/", "application/json", 300),
        ("/images", None, 300),
        ("/images", f"{VND}v1", 200),
        ("/images", f"{VND}v1.0", 200),
        ("/images", f"{VND}v1.1", 200),
        ("/images", "application/vnd.openstack.compute-v1", 300),
        ("/images", f"{VND}v10", 300),
        ("/images", f"{VND}v1.2", 300),
        ("/v1/images", None, 200),
        ("/v1.0/images", None, 200),
        ("/v1.1/images", None, 200),
        ("/v1.2/images", None, 300),
        ("/v1.a/images", None, 300),
        ("/va.1/images", None, 300),
        ("/v10", None, 300),
        ("/v2/images", None, 300),
        ("/versions", None, 200),
        ("/versions", f"{VND}v1", 200),
        ("/versions/anything", None, 200),
        ("/versions/", None, 200),
        ("/v1/versions", None, 404),
        ("/v1/images/detail", None, 200),
    ],
)
def test_version_negotiation_table(client, path, accept, status):
    resp = fetch(client, path, accept)
    assert resp.status_code == status, resp.text
    if status in (200, 300) and "images" not in resp.json():
        assert resp.json() == versions_body(client.url)
        assert resp.headers["Content-Type"].startswith("application/json")


NOTHING = "?property-no-such-property=none"  # an empty listing on a shared deployment


def test_vnd_accept_header_keeps_the_path_and_lists_images(client):
    resp = fetch(client, f"/images{NOTHING}", f"{VND}v1")
    assert resp.text == '{"images": []}'


def test_versions_document_is_the_same_for_300_and_200(client):
    multiple = fetch(client, "/")
    direct = fetch(client, "/versions")
    assert multiple.status_code == 300
    assert direct.status_code == 200
    assert multiple.text == direct.text
    assert direct.json() == versions_body(client.url)
    # Python's default separators, as Glance serialises
    assert '{"versions": [{"id": "v1.1", "status": "DEPRECATED", "links": [' in direct.text


def test_v1_without_a_slash_redirects_to_v1_slash_with_an_empty_body(client):
    resp = fetch(client, "/v1")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"{client.url}/v1/"
    assert resp.content == b""


def test_v1_root_is_the_image_index(client):
    client.reserve(name="indexed", is_public="true")
    for method in ("GET", "POST", "PUT"):
        resp = fetch(client, f"/v1/{NOTHING}", method=method)
        assert resp.status_code == 200, (method, resp.text)
        assert resp.text == '{"images": []}'
        assert fetch(client, "/v1/", method=method).json() == fetch(client, "/v1/images").json()


def test_public_endpoint_is_the_base_of_every_link(deploy):
    client = deploy("endpoint", public_endpoint="https://images.example.com:8443/")
    resp = fetch(client, "/versions")
    assert resp.json() == versions_body("https://images.example.com:8443")
    assert fetch(client, "/").json() == resp.json()


def test_disabled_v1_leaves_only_the_versions_document(deploy):
    client = deploy("nov1", enable_v1_api=False)
    assert fetch(client, "/versions").json() == {"versions": []}
    assert fetch(client, "/v1/images").status_code == 300


# --- routing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "allow"),
    [
        ("/images", "PUT", "GET, POST"),
        ("/images", "DELETE", "GET, POST"),
        ("/images", "PATCH", "GET, POST"),
        ("/images", "FOO", "GET, POST"),
        ("/images", "HEAD", "GET, POST"),
        ("/images/detail", "PUT", "GET, HEAD"),
        ("/images/detail", "POST", "GET, HEAD"),
        ("/images/detail", "DELETE", "GET, HEAD"),
        ("/images/{id}", "POST", "GET, HEAD, PUT, DELETE"),
        ("/images/{id}", "PATCH", "GET, HEAD, PUT, DELETE"),
        ("/images/{id}/members", "POST", "GET, PUT"),
        ("/images/{id}/members", "DELETE", "GET, PUT"),
        ("/images/{id}/members", "HEAD", "GET, PUT"),
        ("/images/{id}/members/tenant1", "POST", "GET, PUT, DELETE"),
        ("/images/{id}/members/tenant1", "HEAD", "GET, PUT, DELETE"),
    ],
)
def test_matched_path_with_another_method_is_405_with_allow(client, path, method, allow):
    path = path.replace("{id}", str(uuid.uuid4()))
    resp = client.request(method, path)
    assert resp.status_code == 405, resp.text
    assert resp.headers["Allow"] == allow


def test_head_of_detail_is_405_allow_get(client):
    head = client.head("/images/detail")
    assert head.status_code == 405
    assert head.headers["Allow"] == "GET"
    assert head.content == b""


def test_get_of_one_member_is_405_without_allow(client):
    resp = client.get(f"/images/{uuid.uuid4()}/members/tenant1")
    assert resp.status_code == 405
    assert "Allow" not in resp.headers


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
def test_unmatched_path_with_a_usual_method_is_404(client, method):
    assert client.request(method, "/nothere").status_code == 404


def test_unmatched_path_with_an_unknown_method_is_501(client):
    resp = client.request("FOO", "/nothere")
    assert resp.status_code == 501
    assert "The request method FOO is not implemented for this server." in resp.text


@pytest.mark.parametrize(
    "path", ["/images.json", "/images.xxx", "/images/detail.json", "/images/{id}/members.xxx"]
)
def test_format_extensions_are_not_routes(client, path):
    image = client.reserve(name="ext")
    resp = client.get(path.replace("{id}", image["id"]))
    assert resp.status_code == 404


def test_images_new_is_an_image_id(client):
    assert client.get("/images/new").status_code == 404
    assert client.head("/images/new").status_code == 404


def test_shared_images_without_a_member_is_404(client):
    assert client.get("/shared-images").status_code == 404
    assert client.get("/shared-images/").status_code == 404


def test_undecodable_query_is_400_error_decoding(client):
    resp = client.get("/images?name=%ff")
    assert resp.status_code == 400
    assert (
        "Error decoding your request. Either the URL or the request body contained "
        "characters that could not be decoded by Glance" in resp.text
    )


# --- request ids and error bodies -----------------------------------------------------


def test_every_v1_response_has_a_fresh_request_id(client):
    ids = []
    for path in ("/images", "/images/detail", f"/images/{uuid.uuid4()}", "/nothere"):
        resp = client.get(path, headers={"X-Openstack-Request-ID": "req-client-chosen"})
        assert REQUEST_ID.match(resp.headers["x-openstack-request-id"]), resp.headers
        ids.append(resp.headers["x-openstack-request-id"])
    assert len(set(ids)) == len(ids)


def test_an_over_long_request_id_is_ignored_without_auth(client):
    resp = client.get("/images", headers={"X-Openstack-Request-ID": "x" * 200})
    assert resp.status_code == 200
    assert REQUEST_ID.match(resp.headers["x-openstack-request-id"])


def test_error_page_is_plain_text_by_default(client):
    image_id = str(uuid.uuid4())
    resp = client.get(f"/images/{image_id}", headers={"Accept": None})  # requests: */*
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert resp.text.startswith("404 Not Found")
    assert f"Image with identifier {image_id} not found" in resp.text


def test_error_page_is_html_or_json_by_accept(client):
    image_id = str(uuid.uuid4())
    for accept in ("text/html", "*/*"):
        html = client.get(f"/images/{image_id}", headers={"Accept": accept})
        assert html.headers["Content-Type"].startswith("text/html")
        assert "<title>404 Not Found</title>" in html.text
        assert f"Image with identifier {image_id} not found" in html.text
    as_json = client.get(f"/images/{image_id}", headers={"Accept": "application/json"})
    assert as_json.headers["Content-Type"].startswith("application/json")
    body = json.loads(as_json.text)
    assert body["code"] == "404 Not Found"
    assert body["title"] == "Not Found"
    assert f"Image with identifier {image_id} not found" in body["message"]


def test_healthcheck_answers_outside_the_versions(client):
    resp = requests.get(f"{client.url}/healthcheck", timeout=10)
    assert resp.status_code == 200
