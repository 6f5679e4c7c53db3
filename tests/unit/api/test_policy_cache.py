"""The per-caller cache of policy.Enforcer against plain oslo.policy.

Enforcer answers rules that allow anyone without oslo.policy, and keeps the answers of
rules that read only the caller. Here every rule of a policy file is asked of one
Enforcer (twice, so that the second round answers from what it kept) and once of a
fresh oslo.policy Enforcer on the same file, for every caller and target below: the answers
must be the same.
"""

import itertools
import json
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_policy import _checks
from oslo_policy import opts as oslo_policy_opts
from oslo_policy import policy as oslo_policy

from glance_lite.api import policy
from glance_lite.context import RequestContext

SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "etc" / "policy.json"

# Rules whose answer depends on the target, or on something else than the caller:
# the cache must never hold their answers.
NOT_CACHEABLE = {
    "default": "",
    "owner": "project_id:%(owner)s",
    "whole_target": "role:%s",
    "literal_on_target": "'foo':%(x_test_key)s",
    "via_rule": "rule:owner or role:admin",
    "negated": "not project_id:%(owner)s",
    "and_target": "role:member and tenant:%(owner)s",
    "public": "is_public:%(is_public)s",
    "plugin": "target_kind:owner",
    "dangling": "rule:nowhere",  # (a rule naming itself makes oslo.policy recurse away)
}

# Rules that read only the caller, in the spellings oslo.policy accepts.
CACHEABLE = {
    "default": "role:admin or is_admin:True",
    "context_is_admin": "role:admin",
    "admin_any_case": "role:Admin",
    "member": "role:member",
    "not_admin": "not role:admin",
    "is_admin": "is_admin:True",
    "via_rule": "rule:context_is_admin or role:member",
    "tenant": "tenant:t1",
    "project": "project_id:t2 and role:member",
    "user": "user_id:u1 or user:u2",
    "writable": "read_only:False",
    "literal": "'x':x",
    "anyone": "@",
    "nobody": "!",
    "blank": "  ",
}

IDENTITIES = [("u1", "t1"), ("u2", "t2"), (None, None)]  # owner, another tenant, anonymous
ROLE_SETS = [[], ["member"], ["admin"], ["Admin"], ["admin", "member"], ["reader"]]
CALLERS = [
    RequestContext(user_id=user, tenant_id=tenant, roles=roles, is_admin=admin, read_only=ro)
    for (user, tenant), roles, admin, ro in itertools.product(
        IDENTITIES, ROLE_SETS, (False, True), (False, True)
    )
]
TARGETS = [
    {},
    {"owner": "t1", "is_public": True},
    {"owner": "t2", "is_public": False, "x_test_key": "foo"},
    policy.image_target({"id": "i1", "owner": "t1", "properties": {"x_test_key": "bar"}}),
]


class TargetKindCheck(_checks.Check):
    """A check kind of a plugin: true when the target's `match` field is the caller's tenant."""

    def __call__(self, target, creds, enforcer, current_rule=None):
        return target.get(self.match) == creds.get("tenant")


@pytest.fixture(autouse=True)
def target_kind_check(monkeypatch):
    monkeypatch.setitem(_checks.registered_checks, "target_kind", TargetKindCheck)


def plain_oslo(path: str) -> oslo_policy.Enforcer:
    conf = cfg.ConfigOpts()
    for group, opts in oslo_policy_opts.list_opts():
        conf.register_opts(opts, group=group)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    conf.set_override("policy_dirs", [], group="oslo_policy")
    return oslo_policy.Enforcer(conf, policy_file=path)


def actions_of(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [*json.load(f), "an_action_the_file_does_not_name"]


def assert_same_answers(path: str) -> policy.Enforcer:
    ours, theirs = policy.Enforcer(path), plain_oslo(path)
    cases = [
        (
            action,
            caller,
            target,
            bool(theirs.enforce(action, dict(target), policy.credentials(caller))),
        )
        for action, caller, target in itertools.product(actions_of(path), CALLERS, TARGETS)
    ]
    for _round in range(2):
        for action, caller, target, expected in cases:
            assert ours.check(caller, action, target) is expected, (action, caller, target)
    return ours


def write(tmp_path: Path, rules: dict) -> str:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    return str(path)


def test_every_rule_of_the_shipped_policy_answers_as_oslo_policy():
    enforcer = assert_same_answers(str(SHIPPED_POLICY))
    assert "context_is_admin" in enforcer._caller_only  # the cache was used


def test_rules_that_read_the_target_or_a_plugin_are_never_cached(tmp_path):
    enforcer = assert_same_answers(write(tmp_path, NOT_CACHEABLE))
    assert enforcer._caller_only == {"default", "context_is_admin"}  # the latter built in
    assert enforcer._allow_all == {"default"}


def test_rules_that_read_only_the_caller_are_cached_and_answer_as_oslo_policy(tmp_path):
    enforcer = assert_same_answers(write(tmp_path, CACHEABLE))
    assert enforcer._caller_only == set(CACHEABLE)
    assert enforcer._allow_all == {"anyone"}
