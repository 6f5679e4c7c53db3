"""Inputs that made 500s, through the real servers: timestamps past the last datetime,
and listing queries longer once re-encoded than the registry's URL limit."""

import socket

import pytest
import requests

from tests.functional.conftest import read_response

pytestmark = pytest.mark.functional

PAST_THE_END = "9999-12-31T23:59:59-23:59"  # in UTC: the year 10000
BEFORE_THE_START = "0001-01-01T00:00:00+01:00"


@pytest.mark.parametrize("value", [PAST_THE_END, BEFORE_THE_START])
def test_changes_since_out_of_range_is_a_400_naming_it(client, value):
    for path in ("/images", "/images/detail"):
        resp = client.get(path, params={"changes-since": value})
        assert resp.status_code == 400, resp.text
        assert "Unrecognized changes-since value" in resp.text
    registry = client.deployment.registry.url
    resp = requests.get(f"{registry}/images", params={"changes-since": value}, timeout=10)
    assert resp.status_code == 400, resp.text
    assert "Unrecognized changes-since value" in resp.text


def test_a_created_at_out_of_range_is_a_400_naming_it(client):
    resp = client.create(name="far", created_at=PAST_THE_END)
    assert resp.status_code == 400, resp.text
    assert "Invalid time format for created_at." in resp.text
    registry = client.deployment.registry.url
    body = {"image": {"status": "queued", "created_at": PAST_THE_END}}
    resp = requests.post(f"{registry}/images", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    assert "Invalid time format for created_at." in resp.text


# --- long listing queries ----------------------------------------------------------------


def raw_get(port: int, target: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_response(sock)


@pytest.mark.parametrize("path", ["/images", "/images/detail"])
def test_a_long_filter_is_forwarded_as_the_client_encoded_it(client, uid, path):
    # 7,000 '!' fit the request line; re-encoded as %21 they made 21,000 bytes: the
    # registry answered 414 and glance-api 500.
    value = f"{uid}{'!' * 7000}"
    image = client.reserve(name=uid, is_public="true", properties={"long": value})
    head, body = raw_get(client.port, f"/v1{path}?property-long={value}&limit=5".encode())
    assert head.startswith(b"HTTP/1.1 200 "), head + body[:300]
    assert image["id"].encode() in body


def test_filters_still_arrive_whole_and_decoded(client, uid):
    name = f"{uid} a+b&c=d/%?#"
    image = client.reserve(name=name, is_public="true")
    resp = client.get("/images/detail", params={"name": name})
    assert resp.status_code == 200, resp.text
    assert [i["id"] for i in resp.json()["images"]] == [image["id"]]
    # the last of a repeated parameter wins, unknown ones are not forwarded
    target = f"/v1/images?name=nope&name={uid}+a%2Bb%26c%3Dd%2F%25%3F%23&deleted=1"
    head, body = raw_get(client.port, target.encode())
    assert head.startswith(b"HTTP/1.1 200 "), head + body
    assert image["id"].encode() in body


def test_a_query_that_cannot_be_forwarded_is_a_414_naming_the_problem(client):
    # raw UTF-8 bytes in the request line: each one must be escaped (3 bytes) to go on
    head, body = raw_get(client.port, b"/v1/images?name=" + "é".encode() * 2000)
    assert head.startswith(b"HTTP/1.1 414 "), head + body[:300]
    assert b"too long for the image registry" in body
