"""Property protections on updates through the real servers: every create/read/update/
delete rule combination (tests/protection_matrix.py), in both rule formats."""

import pytest

from tests import protection_matrix as matrix

pytestmark = pytest.mark.functional

TRUSTED = {"flavor": "trusted-auth"}


def identity(roles: str) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": f"user-{roles}",
        "X-Tenant-Id": "tenant-p",
        "X-Roles": roles,
    }


ADMIN = identity("admin")
MEMBER = identity("member")


@pytest.fixture(scope="module", params=["roles", "policies"])
def api(request, deploy, tmp_path_factory):
    rule_format = request.param
    files = tmp_path_factory.mktemp(f"protections-{rule_format}")
    rules = files / "protections.conf"
    rules.write_text(matrix.rules_file(rule_format))
    policy_file = files / "policy.json"
    policy_file.write_text(matrix.policy_json())
    return deploy(
        f"protected-{rule_format}",
        registry_options=TRUSTED,
        send_identity_headers=True,
        property_protection_file=rules,
        property_protection_rule_format=rule_format,
        policy_file=policy_file,
        **TRUSTED,
    )


def image_with(api, prop: str | None) -> str:
    properties = {prop: "old"} if prop else None
    return api.reserve(name="matrix", properties=properties, headers=ADMIN)["id"]


@pytest.mark.parametrize("combination", matrix.COMBINATIONS, ids=matrix.name)
def test_member_updates_follow_every_rule_combination(api, combination):
    prop = matrix.name(combination)
    header = f"x-image-meta-property-{prop}"
    for request, (status, value) in matrix.expected(combination).items():
        image_id = image_with(api, None if request == "create" else prop)
        resp = api.put(
            f"/images/{image_id}", headers={**MEMBER, **matrix.request_headers(request, prop)}
        )
        assert resp.status_code == status, (request, resp.text)
        if status == 403:
            assert f"Property '{prop}' is protected" in resp.text
        assert api.meta(image_id, headers=ADMIN).get(header) == value, request
        shown = api.meta(image_id, headers=MEMBER)
        assert (header in shown) == (combination[1] and value is not None), request


@pytest.mark.parametrize("combination", matrix.COMBINATIONS, ids=matrix.name)
def test_a_member_creates_the_property_only_when_allowed(api, combination):
    prop = matrix.name(combination)
    resp = api.create(name="new", properties={prop: "v"}, headers=MEMBER)
    assert resp.status_code == (201 if combination[0] else 403), resp.text
