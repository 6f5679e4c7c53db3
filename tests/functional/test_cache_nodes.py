"""Two api nodes, each with its own cache, over one registry and one file store; and
the cache never widening who may download an image."""

import concurrent.futures
import json
import os

import pytest
import requests

from tests.functional.conftest import ApiClient
from tests.functional.servers import ROOT, Deployment, ServerProcess, api_conf, wait_for
from tests.functional.test_cache import fetch_cached, published


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    work = tmp_path_factory.mktemp("nodes")
    first = Deployment(
        work / "a",
        api_options={"flavor": "cachemanagement", "image_cache_dir": work / "cache-a"},
    ).start()
    b_dir = work / "b"
    b_dir.mkdir()
    conf = api_conf(
        b_dir,
        first.registry.port,
        flavor="cachemanagement",
        image_cache_dir=work / "cache-b",
        store_datadir=first.datadir,
        workers=2,
    )
    second = ServerProcess("glance-api", conf, b_dir).start()
    a = ApiClient(first)
    b = ApiClient(first)
    b.url, b.v1, b.port = second.url, f"{second.url}/v1", second.port
    second.sessions.append(b.session)
    a.cache_dir, b.cache_dir, b.process = work / "cache-a", work / "cache-b", second
    yield a, b
    second.stop()
    first.stop()


def test_both_nodes_serve_and_cache_independently_and_a_delete_reaches_both(nodes):
    a, b = nodes
    data = os.urandom(2 * 1024 * 1024 + 5)
    image = a.upload(data)
    for node in (a, b):
        resp = fetch_cached(node, image["id"])
        assert resp.status_code == 200 and resp.content == data
        assert (node.cache_dir / image["id"]).read_bytes() == data
    assert b.get(f"/images/{image['id']}").content == data  # a hit on b

    def hits():
        listed = b.get("/cached_images").json()["cached_images"]
        return {e["image_id"]: e["hits"] for e in listed}[image["id"]]

    wait_for(lambda: hits() == 1)  # counted off the request's path
    assert a.delete(f"/images/{image['id']}").status_code == 200
    assert not (a.cache_dir / image["id"]).exists()
    # b still holds a copy, but asks the registry first: the image is gone for it too
    assert b.get(f"/images/{image['id']}").status_code == 404
    assert not (b.cache_dir / image["id"]).exists()  # and the 404 dropped the copy


def test_concurrent_downloads_of_an_uncached_image_fill_once_and_all_get_it_whole(nodes):
    a, b = nodes
    data = os.urandom(24 * 1024 * 1024)
    image = a.upload(data)
    url = f"{b.v1}/images/{image['id']}"

    def fetch(_):
        resp = requests.get(url, timeout=60)
        return resp.status_code, resp.content == data

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(8)))
    assert results == [(200, True)] * 8
    wait_for(lambda: published(b, image["id"]))
    assert (b.cache_dir / image["id"]).read_bytes() == data
    assert b.process.log().count(f"Image {image['id']} cached") == 1
    assert os.listdir(b.cache_dir / "incomplete") == []


@pytest.fixture(scope="module")
def trusted(deploy, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("tcache")
    policy = tmp_path_factory.mktemp("policy") / "policy.json"
    rules = json.loads((ROOT / "etc" / "policy.json").read_text())
    rules["download_image"] = "not role:nodownload"
    policy.write_text(json.dumps(rules))
    api = deploy(
        "trustedcache",
        registry_options={"flavor": "trusted-auth"},
        send_identity_headers=True,
        flavor="trusted-auth+cachemanagement",
        image_cache_dir=cache_dir,
        policy_file=policy,
    )
    api.cache_dir = cache_dir
    return api


def who(tenant: str, *roles: str) -> dict:
    return {"X-Identity-Status": "Confirmed", "X-Tenant-Id": tenant, "X-Roles": ",".join(roles)}


def test_a_cached_private_image_stays_private_and_download_policy_applies_to_hits(trusted):
    data = os.urandom(50_000)
    resp = trusted.create(
        data, headers=who("alice"), disk_format="raw", container_format="bare", name="p"
    )
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["image"]["id"]
    assert fetch_cached(trusted, image_id, headers=who("alice")).content == data
    assert trusted.get(f"/images/{image_id}", headers=who("bob")).status_code == 404
    denied = trusted.get(f"/images/{image_id}", headers=who("alice", "nodownload"))
    assert denied.status_code == 403
    assert trusted.get("/cached_images", headers=who("alice")).status_code == 403
    assert trusted.get("/cached_images", headers=who("alice", "admin")).status_code == 200
