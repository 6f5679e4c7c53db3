"""Property protections on updates, in-process: every rule combination, both formats.

An update is checked against the image as stored, unreadable properties included: a
member's rename keeps what it may not read, and a property it may create but not read
is not created again over an existing value (tests/protection_matrix.py).
"""

import pytest

from glance_lite.api import policy
from glance_lite.api.protections import PropertyProtections
from tests import protection_matrix as matrix
from tests.conftest import migrated_database
from tests.unit.api.conftest import Api


@pytest.fixture(scope="module", params=["roles", "policies"])
def api(request, tmp_path_factory, sqlite_url, _database_cache):
    """One api per rule format for the module (each test works on images of its own),
    with one Enforcer for the policy and the protections, as glance-api has."""
    rule_format = request.param
    folder = tmp_path_factory.mktemp(rule_format)
    rules = folder / "protections.conf"
    rules.write_text(matrix.rules_file(rule_format))
    policy_file = folder / "policy.json"
    policy_file.write_text(matrix.policy_json())
    enforcer = policy.Enforcer(str(policy_file))
    protections = PropertyProtections.from_file(str(rules), rule_format, enforcer)
    database = migrated_database(sqlite_url, _database_cache)
    return Api(database, protections=protections, enforcer=enforcer)


def as_admin(api, method, path, headers=None):
    return api.call(method, path, tenant="alice", roles="admin", headers=headers)


def as_member(api, method, path, headers=None):
    return api.call(method, path, tenant="alice", roles="member", headers=headers)


def stored_value(api, image_id: str, prop: str) -> str | None:
    resp = as_admin(api, "HEAD", f"/images/{image_id}")
    assert resp.status_int == 200
    return resp.headers.get(f"x-image-meta-property-{prop}")


def image_with(api, prop: str | None) -> str:
    headers = {"x-image-meta-name": "matrix"}
    if prop is not None:
        headers[f"x-image-meta-property-{prop}"] = "old"
    resp = as_admin(api, "POST", "/images", headers)
    assert resp.status_int == 201, resp.text
    return resp.json["image"]["id"]


@pytest.mark.parametrize("combination", matrix.COMBINATIONS, ids=matrix.name)
def test_member_updates_follow_every_rule_combination(api, combination):
    prop = matrix.name(combination)
    for request, (status, value) in matrix.expected(combination).items():
        image_id = image_with(api, None if request == "create" else prop)
        resp = as_member(api, "PUT", f"/images/{image_id}", matrix.request_headers(request, prop))
        assert resp.status_int == status, (request, resp.text)
        if status == 403:
            assert f"Property '{prop}' is protected" in resp.text
        else:
            shown = resp.json["image"]["properties"]
            assert (prop in shown) == (combination[1] and value is not None), request
        assert stored_value(api, image_id, prop) == value, request


@pytest.mark.parametrize("combination", matrix.COMBINATIONS, ids=matrix.name)
def test_a_member_reads_the_property_only_when_allowed(api, combination):
    prop = matrix.name(combination)
    image_id = image_with(api, prop)
    shown = as_member(api, "HEAD", f"/images/{image_id}").headers
    assert (f"x-image-meta-property-{prop}" in shown) == combination[1]
    resp = as_member(api, "POST", "/images", {f"x-image-meta-property-{prop}": "v"})
    assert resp.status_int == (201 if combination[0] else 403), resp.text


def test_the_property_quota_counts_the_properties_a_caller_cannot_read(make_api, tmp_path):
    rules = tmp_path / "protections.conf"
    rules.write_text(matrix.rules_file("roles"))
    protections = PropertyProtections.from_file(str(rules), "roles", None)
    api = make_api(protections=protections, property_quota=2)
    hidden = matrix.name((True, False, True, True))
    image_id = image_with(api, hidden)
    headers = {"x-image-meta-property-a": "1", **matrix.KEEP}
    assert as_member(api, "PUT", f"/images/{image_id}", headers).status_int == 200
    headers = {"x-image-meta-property-b": "2", **matrix.KEEP}
    resp = as_member(api, "PUT", f"/images/{image_id}", headers)
    assert resp.status_int == 413
    assert "Attempted: 3, Maximum: 2" in resp.text
