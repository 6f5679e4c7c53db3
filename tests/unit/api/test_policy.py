import json
import os
import time
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_policy import opts as oslo_policy_opts
from oslo_policy import policy as oslo_policy

from glance_lite import exceptions, opts
from glance_lite.api import policy
from glance_lite.context import RequestContext

SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "etc" / "policy.json"

NOAUTH_ADMIN = RequestContext(is_admin=True)
TENANT = RequestContext(user_id="u1", tenant_id="t1", roles=["member"])
ADMIN = RequestContext(user_id="u2", tenant_id="t2", roles=["admin"], is_admin=True)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def write_json(tmp_path: Path, rules: dict, name: str = "policy.json") -> str:
    return write(tmp_path, name, json.dumps(rules))


def touch_later(path: str) -> None:
    """Give a rewritten file a later mtime, as oslo.policy reloads only newer files."""
    later = time.time() + 10
    os.utime(path, (later, later))


@pytest.fixture
def defaults():
    return policy.Enforcer(None)


# Defaults (no file) and the shipped policy.json


@pytest.mark.parametrize(
    "action",
    sorted(a for a, rule in policy.DEFAULT_RULES.items() if rule == ""),
)
def test_default_empty_rules_allow_a_plain_tenant(defaults, action):
    assert defaults.check(TENANT, action, {})


@pytest.mark.parametrize("action", ["publicize_image", "manage_image_cache", "undefined_action"])
def test_default_admin_only_rules_deny_a_tenant_without_the_admin_role(defaults, action):
    assert not defaults.check(TENANT, action, {})


@pytest.mark.parametrize("action", ["publicize_image", "manage_image_cache", "undefined_action"])
def test_default_admin_only_rules_admit_the_admin_role(defaults, action):
    assert defaults.check(ADMIN, action, {})


@pytest.mark.parametrize("action", ["publicize_image", "manage_image_cache"])
def test_default_admin_only_rules_admit_the_roleless_noauth_admin(defaults, action):
    assert defaults.check(NOAUTH_ADMIN, action, {})


def test_enforce_raises_forbidden_with_glances_text(defaults):
    with pytest.raises(exceptions.Forbidden) as err:
        defaults.enforce(TENANT, "publicize_image", {})
    assert err.value.status == 403
    assert str(err.value) == "Access was denied to this resource."


def test_enforce_returns_none_when_allowed(defaults):
    assert defaults.enforce(TENANT, "get_image", {}) is None


def test_check_is_admin_follows_context_is_admin(defaults):
    assert defaults.check_is_admin(ADMIN)
    assert not defaults.check_is_admin(TENANT)
    # context_is_admin stays "role:admin": it is what derives is_admin from roles.
    assert not defaults.check_is_admin(NOAUTH_ADMIN)


def test_shipped_policy_json_equals_the_built_in_defaults():
    assert json.loads(SHIPPED_POLICY.read_text()) == policy.DEFAULT_RULES


def test_shipped_policy_json_gives_the_is_admin_fix_both_ways():
    enforcer = policy.Enforcer(str(SHIPPED_POLICY))
    assert enforcer.check(NOAUTH_ADMIN, "publicize_image", {})
    assert not enforcer.check(TENANT, "publicize_image", {})
    assert enforcer.check(TENANT, "add_image", {})


# Operator files


def test_json_file_overrides_rules(tmp_path):
    path = write_json(tmp_path, {"default": "", "get_image": "!", "publicize_image": ""})
    enforcer = policy.Enforcer(path)
    assert not enforcer.check(ADMIN, "get_image", {})
    assert not enforcer.check(NOAUTH_ADMIN, "get_image", {})
    assert enforcer.check(TENANT, "publicize_image", {})


def test_operator_file_with_glances_stock_rule_denies_the_noauth_admin(tmp_path):
    path = write_json(tmp_path, {"default": "role:admin", "publicize_image": "role:admin"})
    assert not policy.Enforcer(path).check(NOAUTH_ADMIN, "publicize_image", {})


def test_yaml_file_overrides_rules(tmp_path):
    path = write(tmp_path, "policy.yaml", '"get_images": "role:reader"\n"default": ""\n')
    enforcer = policy.Enforcer(path)
    assert not enforcer.check(TENANT, "get_images", {})
    assert enforcer.check(RequestContext(roles=["reader"]), "get_images", {})


def test_action_missing_from_the_file_falls_back_to_its_default_rule(tmp_path):
    enforcer = policy.Enforcer(write_json(tmp_path, {"default": "role:member"}))
    assert enforcer.check(TENANT, "publicize_image", {})
    assert not enforcer.check(RequestContext(roles=["reader"]), "get_image", {})


def test_file_without_default_keeps_the_admin_only_default(tmp_path):
    enforcer = policy.Enforcer(write_json(tmp_path, {"get_image": ""}))
    assert enforcer.check(TENANT, "get_image", {})
    assert not enforcer.check(TENANT, "delete_image", {})
    assert enforcer.check(NOAUTH_ADMIN, "delete_image", {})
    assert enforcer.check_is_admin(ADMIN)


def test_empty_file_leaves_every_action_to_the_default(tmp_path):
    enforcer = policy.Enforcer(write(tmp_path, "policy.json", ""))
    assert not enforcer.check(TENANT, "get_image", {})
    assert enforcer.check(ADMIN, "get_image", {})


def test_bang_rule_denies_everybody(tmp_path):
    enforcer = policy.Enforcer(write_json(tmp_path, {"download_image": "!"}))
    for context in (NOAUTH_ADMIN, ADMIN, TENANT):
        assert not enforcer.check(context, "download_image", {})


def test_default_rule_name_is_configurable(tmp_path):
    path = write_json(tmp_path, {"default": "!", "fallback": ""})
    enforcer = policy.Enforcer(path, default_rule="fallback")
    assert enforcer.check(TENANT, "get_image", {})


def test_file_changes_are_picked_up_while_running(tmp_path):
    path = write_json(tmp_path, {"default": "", "get_image": ""})
    enforcer = policy.Enforcer(path)
    assert enforcer.check(TENANT, "get_image", {})
    write_json(tmp_path, {"default": "", "get_image": "!"})
    touch_later(path)
    assert not enforcer.check(TENANT, "get_image", {})


def test_file_that_breaks_while_running_keeps_the_rules_read_before(tmp_path, caplog):
    path = write_json(tmp_path, {"default": "", "get_image": "!"})
    enforcer = policy.Enforcer(path)
    write(tmp_path, "policy.json", "[not, a, mapping]")
    touch_later(path)
    for _ in range(2):
        assert not enforcer.check(TENANT, "get_image", {})
        assert enforcer.check(TENANT, "get_images", {})
    assert "keeping the policy rules read before" in caplog.text
    write_json(tmp_path, {"default": "", "get_image": ""})
    touch_later(path)
    assert enforcer.check(TENANT, "get_image", {})


def test_file_that_breaks_is_logged_when_the_next_check_asks_oslo_policy(tmp_path, caplog):
    path = write_json(tmp_path, {"default": "", "modify_image": "project_id:%(owner)s"})
    enforcer = policy.Enforcer(path)
    write(tmp_path, "policy.json", '{"modify_image": ')
    touch_later(path)
    for _ in range(2):
        assert enforcer.check(TENANT, "modify_image", {"owner": "t1"})
        assert not enforcer.check(TENANT, "modify_image", {"owner": "t2"})
    assert "keeping the policy rules read before" in caplog.text


def test_file_removed_while_running_leaves_every_action_to_the_built_in_default(tmp_path):
    # oslo.policy's reload: a policy file gone is an empty file, and only the two rules
    # that are always defined remain (context_is_admin and an admin-only default).
    path = write_json(tmp_path, {"default": "", "get_image": "!", "get_images": ""})
    enforcer = policy.Enforcer(path)
    os.unlink(path)
    for action in ("get_image", "get_images"):
        assert not enforcer.check(TENANT, action, {})
        assert enforcer.check(ADMIN, action, {})
    write_json(tmp_path, {"default": "", "get_image": "!", "get_images": ""})
    touch_later(path)
    assert enforcer.check(TENANT, "get_images", {})


def test_policy_d_files_added_while_running_are_picked_up(tmp_path):
    policy_d = tmp_path / "policy.d"
    policy_d.mkdir()
    enforcer = policy.Enforcer(write_json(tmp_path, {"default": ""}), policy_dirs=[str(policy_d)])
    assert enforcer.check(TENANT, "get_image", {})
    write(policy_d, "lock.json", '{"get_image": "!"}')
    assert not enforcer.check(TENANT, "get_image", {})


# Rules that refer to the target or to the caller


def test_download_rule_can_refer_to_a_custom_property(tmp_path):
    path = write_json(tmp_path, {"default": "", "download_image": "not 'foo':%(x_test_key)s"})
    enforcer = policy.Enforcer(path)
    foo = policy.image_target({"id": "i1", "properties": {"x_test_key": "foo"}})
    bar = policy.image_target({"id": "i1", "properties": {"x_test_key": "bar"}})
    assert not enforcer.check(TENANT, "download_image", foo)
    assert enforcer.check(TENANT, "download_image", bar)
    assert enforcer.check(TENANT, "download_image", {})


def test_image_target_merges_properties_with_core_fields_winning():
    meta = {"id": "i1", "owner": "t1", "properties": {"owner": "evil", "distro": "x"}}
    assert policy.image_target(meta) == {"id": "i1", "owner": "t1", "distro": "x"}


def test_rule_can_compare_the_callers_project_with_the_target(tmp_path):
    path = write_json(tmp_path, {"default": "", "modify_image": "project_id:%(owner)s"})
    enforcer = policy.Enforcer(path)
    assert enforcer.check(TENANT, "modify_image", {"owner": "t1"})
    assert not enforcer.check(TENANT, "modify_image", {"owner": "t2"})


def test_credentials_carry_user_tenant_roles_and_admin_flag():
    creds = policy.credentials(TENANT)
    assert creds["user_id"] == "u1"
    assert creds["project_id"] == creds["tenant"] == creds["tenant_id"] == "t1"
    assert creds["roles"] == ["member"]
    assert creds["is_admin"] is False


# Files that stop the service


def test_missing_file_is_a_config_error_naming_it(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(exceptions.ConfigError, match=r"nope\.json"):
        policy.Enforcer(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"get_image": ', "Cannot parse"),
        ("get_image: [unclosed", "Cannot parse"),
        ('["get_image"]', "must map rule names to rules"),
        ('"just a string"', "must map rule names to rules"),
        ('{"get_image": 1}', "rule 'get_image' must be a string"),
        ('{"get_image": null}', "rule 'get_image' must be a string"),
    ],
)
def test_unparseable_file_is_a_config_error_naming_it(tmp_path, text, problem):
    path = write(tmp_path, "broken.json", text)
    with pytest.raises(exceptions.ConfigError, match=problem) as err:
        policy.Enforcer(path)
    assert "broken.json" in str(err.value)


def test_directory_instead_of_file_is_a_config_error(tmp_path):
    with pytest.raises(exceptions.ConfigError, match="Cannot read policy file"):
        policy.Enforcer(str(tmp_path))


def test_file_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "policy.json"
    path.write_bytes(b'{"get_image": "\xff"}')
    with pytest.raises(exceptions.ConfigError, match="Cannot read policy file"):
        policy.Enforcer(str(path))


def test_broken_file_in_policy_dirs_is_a_config_error(tmp_path):
    policy_d = tmp_path / "policy.d"
    policy_d.mkdir()
    write(policy_d, "extra.yaml", "- a list")
    with pytest.raises(exceptions.ConfigError, match=r"extra\.yaml"):
        policy.Enforcer(write_json(tmp_path, {}), policy_dirs=[str(policy_d)])


# Options and lookup through the service's ConfigOpts


def service_conf(tmp_path: Path, conf_text: str = "") -> cfg.ConfigOpts:
    conf_file = write(tmp_path, "glance-api.conf", conf_text)
    conf = cfg.ConfigOpts()
    opts.register_policy_opts(conf)
    conf(
        args=["--config-file", conf_file],
        project="glance",
        default_config_files=[],
        default_config_dirs=[],
    )
    return conf


def test_list_opts_default_policy_file_is_policy_json():
    [(group, options)] = opts.list_policy_opts()
    assert group == "oslo_policy"
    by_name = {opt.dest: opt for opt in options}
    assert by_name["policy_file"].default == "policy.json"
    assert {"policy_default_rule", "policy_dirs"} <= by_name.keys()


def test_list_opts_leaves_oslo_policys_own_default_alone():
    opts.list_policy_opts()
    [(_, options)] = oslo_policy_opts.list_opts()
    assert {opt.dest: opt.default for opt in options}["policy_file"] == "policy.yaml"


def test_registered_policy_file_option_defaults_to_policy_json(tmp_path):
    assert service_conf(tmp_path).oslo_policy.policy_file == "policy.json"


def test_policy_json_next_to_the_config_file_is_used(tmp_path):
    write_json(tmp_path, {"default": "", "get_image": "!"})
    enforcer = policy.from_conf(service_conf(tmp_path))
    assert enforcer.policy_file == str(tmp_path / "policy.json")
    assert not enforcer.check(ADMIN, "get_image", {})


def test_absent_default_policy_file_means_the_built_in_rules(tmp_path):
    conf = service_conf(tmp_path)
    if conf.find_file("policy.json"):
        pytest.skip(f"a system policy.json exists: {conf.find_file('policy.json')}")
    enforcer = policy.from_conf(conf)
    assert enforcer.policy_file is None
    assert enforcer.check(NOAUTH_ADMIN, "publicize_image", {})
    assert not enforcer.check(TENANT, "publicize_image", {})


def test_policy_file_named_by_the_operator_must_exist(tmp_path):
    conf = service_conf(tmp_path, "[oslo_policy]\npolicy_file = mine.json\n")
    with pytest.raises(exceptions.ConfigError, match=r"mine\.json"):
        policy.from_conf(conf)


def test_policy_file_named_by_the_operator_is_found_next_to_the_config(tmp_path):
    write_json(tmp_path, {"default": "!"}, name="mine.yaml")
    conf = service_conf(tmp_path, "[oslo_policy]\npolicy_file = mine.yaml\n")
    assert not policy.from_conf(conf).check(NOAUTH_ADMIN, "get_image", {})


def test_policy_default_rule_option_is_honoured(tmp_path):
    write_json(tmp_path, {"default": "!", "fallback": ""})
    conf = service_conf(tmp_path, "[oslo_policy]\npolicy_default_rule = fallback\n")
    assert policy.from_conf(conf).check(TENANT, "get_image", {})


def test_policy_d_next_to_the_config_adds_rules_in_file_name_order(tmp_path):
    write_json(tmp_path, {"default": "", "get_image": ""})
    (tmp_path / "policy.d").mkdir()
    write(tmp_path / "policy.d", "10-lock.yaml", '"get_image": "!"\n"get_images": "!"\n')
    write(tmp_path / "policy.d", "20-open.yaml", '"get_images": ""\n')
    write(tmp_path / "policy.d", ".hidden.yaml", '"add_image": "!"\n')
    enforcer = policy.from_conf(service_conf(tmp_path))
    assert not enforcer.check(TENANT, "get_image", {})
    assert enforcer.check(TENANT, "get_images", {})
    assert enforcer.check(TENANT, "add_image", {})


def test_policy_d_is_ignored_without_a_policy_file(tmp_path):
    (tmp_path / "policy.d").mkdir()
    write(tmp_path / "policy.d", "lock.yaml", '"get_image": "!"\n')
    enforcer = policy.Enforcer(None, policy_dirs=[str(tmp_path / "policy.d")])
    assert enforcer.check(TENANT, "get_image", {})


def test_list_rules_are_the_built_in_defaults():
    assert {r.name: r.check_str for r in policy.list_rules()} == policy.DEFAULT_RULES


@pytest.mark.parametrize("rule", ["", "@"])
def test_a_rule_that_allows_anyone_is_answered_without_oslo_policy(tmp_path, rule, monkeypatch):
    enforcer = policy.Enforcer(write_json(tmp_path, {"get_image": rule, "delete_image": "!"}))

    def refuse(*args, **kwargs):
        raise AssertionError("oslo.policy consulted")

    monkeypatch.setattr(enforcer._oslo, "enforce", refuse)
    assert enforcer.check(TENANT, "get_image", {}) is True
    with pytest.raises(AssertionError):
        enforcer.check(TENANT, "delete_image", {})


def test_a_blank_rule_denies_everybody_as_oslo_policy_reads_it(tmp_path):
    enforcer = policy.Enforcer(write_json(tmp_path, {"get_image": "  "}))
    assert not enforcer.check(TENANT, "get_image", {})
    assert not enforcer.check(ADMIN, "get_image", {})


def test_a_rule_edited_from_allow_all_to_admin_only_is_enforced_again(tmp_path):
    path = write_json(tmp_path, {"get_image": ""})
    enforcer = policy.Enforcer(path)
    assert enforcer.check(TENANT, "get_image", {})
    write_json(tmp_path, {"get_image": "role:admin"})
    touch_later(path)
    assert not enforcer.check(TENANT, "get_image", {})
    assert enforcer.check(ADMIN, "get_image", {})


def test_rules_that_read_only_the_caller_are_told_apart():
    rules = {
        "admin": "role:admin",
        "owner": "owner:%(owner)s",
        "either": "rule:admin or rule:owner",
        "via_admin": "rule:admin or is_admin:True",
        "remote": "http://policy.example/check",
        "dangling": "rule:nowhere",
        "loop": "rule:loop",
        "whole_target": "role:%s",
        "negated": "not role:admin and not project_id:%(owner)s",
        "anyone": "",
        "nobody": "!",
        "literal": "'foo':bar",
    }
    parsed = oslo_policy.Rules.from_dict(rules)
    assert policy.caller_only_rules(parsed) == {"admin", "via_admin", "anyone", "nobody", "literal"}


def test_answers_kept_per_caller_still_tell_callers_apart(tmp_path):
    enforcer = policy.Enforcer(write_json(tmp_path, {"publicize_image": "role:admin"}))
    for _ in range(2):  # the second round answers from what the first one kept
        assert enforcer.check(ADMIN, "publicize_image", {})
        assert not enforcer.check(TENANT, "publicize_image", {})
        assert not enforcer.check(NOAUTH_ADMIN, "publicize_image", {})


def test_a_rule_on_the_target_is_decided_for_each_target(tmp_path):
    enforcer = policy.Enforcer(write_json(tmp_path, {"modify_image": "project_id:%(owner)s"}))
    assert enforcer.check(TENANT, "modify_image", {"owner": "t1"})
    assert not enforcer.check(TENANT, "modify_image", {"owner": "someone-else"})
    assert enforcer.check(TENANT, "modify_image", {"owner": "t1"})
