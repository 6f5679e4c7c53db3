"""Locations and copy-froms in-process (the memory store as source and destination;
the copy runs in the request's thread): policies, the copy's path through the upload
lifecycle. The real servers and nginx are in tests/functional/test_api_sources.py."""

import hashlib
import json

import pytest

from glance_lite.api import policy
from glance_lite.api.sources import Copier
from tests.helpers import admin_context

FORMATS = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}


def at_once(name, fn, abandon):
    fn()


@pytest.fixture
def api(make_api):
    return make_api(copier=Copier(start=at_once))


def policy_api(make_api, tmp_path, **rules):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(dict(policy.DEFAULT_RULES, **rules)))
    return make_api(policy_file=str(path), copier=Copier(start=at_once))


def source(api, data: bytes = b"source bytes") -> str:
    image_id = api.upload(data).json["image"]["id"]
    return f"memory://{image_id}"


def create(api, header: str, uri: str, **headers):
    return api.call("POST", "/images", headers={header: uri, **FORMATS, **headers})


def count(api) -> int:
    return len(api.call("GET", "/images/detail?is_public=none").json["images"])


def test_a_location_makes_an_active_image_of_the_stores_size(api):
    resp = create(api, "x-image-meta-location", source(api, b"12345"))
    assert resp.status_int == 201
    image = resp.json["image"]
    assert (image["status"], image["size"], image["checksum"]) == ("active", 5, None)
    assert "direct_url" not in image
    assert api.call("GET", f"/images/{image['id']}").body == b"12345"


def test_a_copy_stores_the_sources_bytes_as_a_new_image(api):
    data = b"copied " * 1000
    resp = create(api, "x-glance-api-copy-from", source(api, data))
    assert resp.status_int == 201
    image_id = resp.json["image"]["id"]
    meta = api.call("HEAD", f"/images/{image_id}").headers
    assert meta["x-image-meta-status"] == "active"
    assert meta["x-image-meta-checksum"] == hashlib.md5(data).hexdigest()
    assert api.store._images[image_id] == data


def test_a_copy_whose_source_is_gone_kills_the_image(api):
    uri = source(api)
    api.store.delete(uri)
    # the size is declared: no lookup before the record, the copy finds nothing
    resp = create(api, "x-glance-api-copy-from", uri, **{"x-image-meta-size": "12"})
    assert resp.status_int == 201
    image_id = resp.json["image"]["id"]
    assert api.call("HEAD", f"/images/{image_id}").headers["x-image-meta-status"] == "killed"
    assert image_id not in api.store._images


@pytest.mark.parametrize(
    "rule, header",
    [("set_image_location", "x-image-meta-location"), ("copy_from", "x-glance-api-copy-from")],
)
def test_a_denied_source_policy_is_403_before_anything_is_created(make_api, tmp_path, rule, header):
    api = policy_api(make_api, tmp_path, **{rule: "!"})
    uri = source(api)
    before = count(api)
    assert create(api, header, uri).status_int == 403
    assert count(api) == before


def test_a_copy_needs_the_upload_image_rule_too(make_api, tmp_path):
    api = policy_api(make_api, tmp_path, upload_image="!")
    assert create(api, "x-glance-api-copy-from", "memory://x").status_int == 403


def test_locations_are_shown_redacted_when_configured(make_api):
    api = make_api(show_direct_url=True)
    uri = source(api)
    image = create(api, "x-image-meta-location", uri).json["image"]
    assert image["direct_url"] == uri
    assert api.call("HEAD", f"/images/{image['id']}").headers["x-image-meta-direct_url"] == uri


@pytest.mark.parametrize("header", ["x-image-meta-location", "x-glance-api-copy-from"])
def test_a_source_its_store_will_not_open_to_clients_is_a_400_before_anything(
    api, monkeypatch, header
):
    uri = source(api)
    before = count(api)
    monkeypatch.setattr(api.store, "open_to_clients", lambda location: False)
    resp = create(api, header, uri)
    assert resp.status_int == 400
    assert f"External source '{uri}' is not on an endpoint of this deployment's memory" in (
        resp.text
    )
    assert count(api) == before


def test_an_abandoned_copy_never_kills_an_image_another_upload_holds(make_api):
    """The copy's kill when glance-api stops is conditional on the copy's own lease: once
    its lease was swept and another upload took the image, that upload goes on."""
    abandoned = []
    api = make_api(copier=Copier(start=lambda name, fn, abandon: abandoned.append(abandon)))
    image_id = create(api, "x-glance-api-copy-from", source(api)).json["image"]["id"]
    other = "other-node#0123456789abcdef"
    api.registry.update_image(
        admin_context(), image_id, {"status": "saving"}, from_state="queued", lease=(other, 60)
    )
    abandoned[0]()  # this api stops with the copy not done
    assert api.registry.get_image(admin_context(), image_id)["status"] == "saving"
