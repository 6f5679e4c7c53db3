import json
import re
from pathlib import Path

import pytest

from glance_lite import exceptions
from glance_lite.api import policy
from glance_lite.api.protections import PropertyProtections
from glance_lite.context import RequestContext

ETC = Path(__file__).resolve().parents[3] / "etc"

ADMIN = RequestContext(tenant_id="t0", roles=["admin"], is_admin=True)
MEMBER = RequestContext(tenant_id="t1", roles=["member"])
READER = RequestContext(tenant_id="t2", roles=["reader"])
NOBODY_SPECIAL = RequestContext(tenant_id="t3", roles=[])

ROLES_FILE = """\
[^x_owner_only$]
create = admin
read = admin,Member
update = admin
delete = admin

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[^x_none_permitted.*]
create = !
read = !
update = !
delete = !

[^x_none_read$]
create = member
read = !
update = member
delete = member

[^x_none_update$]
create = member
read = member
update = !
delete = member

[^x_none_delete$]
create = member
read = member
update = member
delete = !

[^x_empty_create$]
create =
read = @
update = @
delete = @

[x_case]
create = ADMIN
read = admin
update = admin
delete = admin
"""


def write(tmp_path: Path, text: str, name: str = "protections.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def roles_rules(tmp_path: Path, text: str = ROLES_FILE) -> PropertyProtections:
    return PropertyProtections.from_file(write(tmp_path, text), "roles", None)


@pytest.fixture
def rules(tmp_path):
    return roles_rules(tmp_path)


# The roles format, operation by operation


@pytest.mark.parametrize("operation", ["create", "read", "update", "delete"])
def test_at_allows_everybody(rules, operation):
    for context in (ADMIN, MEMBER, NOBODY_SPECIAL):
        assert rules.check("x_all_permitted_foo", operation, context)


@pytest.mark.parametrize("operation", ["create", "read", "update", "delete"])
def test_bang_allows_nobody(rules, operation):
    for context in (ADMIN, MEMBER, NOBODY_SPECIAL):
        assert not rules.check("x_none_permitted_foo", operation, context)


def test_empty_value_allows_nobody(rules):
    assert not rules.check("x_empty_create", "create", ADMIN)
    assert rules.check("x_empty_create", "read", MEMBER)


def test_role_lists_allow_any_listed_role(rules):
    assert rules.check("x_owner_only", "read", ADMIN)
    assert rules.check("x_owner_only", "read", MEMBER)
    assert not rules.check("x_owner_only", "read", READER)


@pytest.mark.parametrize("operation", ["create", "update", "delete"])
def test_role_lists_deny_roles_not_listed(rules, operation):
    assert rules.check("x_owner_only", operation, ADMIN)
    assert not rules.check("x_owner_only", operation, MEMBER)


def test_roles_compare_case_insensitively(rules):
    assert rules.check("x_case", "create", ADMIN)
    assert rules.check("x_owner_only", "read", RequestContext(roles=["MEMBER"]))


def test_operations_are_independent(rules):
    assert not rules.check("x_none_read", "read", MEMBER)
    assert rules.check("x_none_read", "update", MEMBER)
    assert not rules.check("x_none_update", "update", MEMBER)
    assert rules.check("x_none_update", "delete", MEMBER)
    assert not rules.check("x_none_delete", "delete", MEMBER)
    assert rules.check("x_none_delete", "create", MEMBER)


def test_property_matched_by_no_section_is_denied(rules):
    for operation in ("create", "read", "update", "delete"):
        assert not rules.check("unmatched", operation, ADMIN)


def test_unknown_operation_is_denied(rules):
    assert not rules.check("x_all_permitted", "frobnicate", ADMIN)


def test_regex_is_searched_not_anchored(rules):
    assert rules.check("prefix_x_case_suffix", "read", ADMIN)
    assert not rules.check("prefix_x_case_suffix", "read", MEMBER)


def test_first_matching_section_decides(tmp_path):
    text = (
        "[^x_foo$]\ncreate = @\nread = @\nupdate = @\ndelete = @\n"
        "[^x_.*]\ncreate = !\nread = !\nupdate = !\ndelete = !\n"
    )
    rules = roles_rules(tmp_path, text)
    assert rules.check("x_foo", "read", MEMBER)
    assert not rules.check("x_foobar", "read", MEMBER)


def test_later_specific_section_is_shadowed_by_an_earlier_general_one(tmp_path):
    text = (
        "[^x_.*]\ncreate = !\nread = !\nupdate = !\ndelete = !\n"
        "[^x_foo$]\ncreate = @\nread = @\nupdate = @\ndelete = @\n"
    )
    assert not roles_rules(tmp_path, text).check("x_foo", "read", MEMBER)


def test_file_without_sections_protects_nothing(tmp_path):
    rules = roles_rules(tmp_path, "# nothing here\n")
    assert rules.check("anything", "delete", NOBODY_SPECIAL)


def test_default_section_supplies_missing_operations(tmp_path):
    text = "[DEFAULT]\ndelete = !\n[^x_a$]\ncreate = @\nread = @\nupdate = @\n"
    rules = roles_rules(tmp_path, text)
    assert rules.check("x_a", "create", MEMBER)
    assert not rules.check("x_a", "delete", ADMIN)


def test_percent_is_a_plain_character(tmp_path):
    rules = roles_rules(tmp_path, "[^x_100%$]\ncreate = @\nread = 100%\nupdate = @\ndelete = @\n")
    assert rules.check("x_100%", "read", RequestContext(roles=["100%"]))
    assert not rules.check("x_100%", "read", MEMBER)


@pytest.mark.parametrize("fmt", ["roles", "ROLES", "Roles"])
def test_rule_format_is_case_insensitive(tmp_path, fmt):
    rules = PropertyProtections.from_file(write(tmp_path, ROLES_FILE), fmt, None)
    assert rules.check("x_all_permitted", "read", MEMBER)


# The policies format


@pytest.fixture
def enforcer(tmp_path):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(
        json.dumps(
            {
                "default": "role:admin",
                "creators": "role:admin or role:creator",
                "readers": "role:reader or role:creator or role:admin",
            }
        )
    )
    return policy.Enforcer(str(policy_file))


POLICIES_FILE = """\
[^x_policy$]
create = creators
read = readers
update = creators
delete = undefined_rule

[^x_literal$]
create = @
read = @
update = !
delete =
"""


def policies_rules(tmp_path, enforcer, text=POLICIES_FILE):
    path = write(tmp_path, text, "protections-policies.conf")
    return PropertyProtections.from_file(path, "policies", enforcer)


def test_policies_format_evaluates_the_named_rule(tmp_path, enforcer):
    rules = policies_rules(tmp_path, enforcer)
    creator = RequestContext(roles=["creator"])
    assert rules.check("x_policy", "create", creator)
    assert not rules.check("x_policy", "create", READER)
    assert rules.check("x_policy", "read", READER)
    assert not rules.check("x_policy", "read", MEMBER)


def test_policies_format_undefined_rule_falls_back_to_the_policy_default(tmp_path, enforcer):
    rules = policies_rules(tmp_path, enforcer)
    assert rules.check("x_policy", "delete", ADMIN)
    assert not rules.check("x_policy", "delete", RequestContext(roles=["creator"]))


def test_policies_format_honours_at_bang_and_empty(tmp_path, enforcer):
    rules = policies_rules(tmp_path, enforcer)
    assert rules.check("x_literal", "create", NOBODY_SPECIAL)
    assert not rules.check("x_literal", "update", ADMIN)
    assert not rules.check("x_literal", "delete", ADMIN)
    assert not rules.check("x_unmatched", "read", ADMIN)


def test_policies_format_with_the_built_in_policy(tmp_path):
    rules = policies_rules(tmp_path, policy.Enforcer(None))
    # No such rules: the built-in default (admin only, is_admin admitted) decides.
    assert rules.check("x_policy", "read", RequestContext(is_admin=True))
    assert not rules.check("x_policy", "read", MEMBER)


# Files that stop the service


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[^x_(unclosed$]\ncreate = @\nread = @\nupdate = @\ndelete = @\n", "regular expression"),
        ("[^x_a$]\ncreate = @\nread = @\nupdate = @\n", "has no 'delete' rule"),
        ("[^x_a$]\nread = @\nupdate = @\ndelete = @\n", "has no 'create' rule"),
        ("[^x_a$]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n", "mutually exclusive"),
        ("[^x_a$]\ncreate = admin, !, @\nread = @\nupdate = @\ndelete = @\n", "mutually"),
        ("create = @\n", "no section headers"),
        ("[^x_a$]\ncreate = @\n[^x_a$]\ncreate = @\n", "already exists"),
        ("[^x_a$]\ncreate = @\ncreate = !\n", "already exists"),
        ("[^x_a$]\nthis is not an option line\n", "Cannot read"),
    ],
)
def test_invalid_roles_file_is_a_config_error(tmp_path, text, problem):
    path = write(tmp_path, text, "bad.conf")
    with pytest.raises(exceptions.ConfigError, match=problem) as err:
        PropertyProtections.from_file(path, "roles", None)
    assert "bad.conf" in str(err.value)


def test_several_policies_for_one_operation_is_a_config_error(tmp_path, enforcer):
    text = "[^x_a$]\ncreate = creators,readers\nread = @\nupdate = @\ndelete = @\n"
    with pytest.raises(exceptions.ConfigError, match="one policy rule per operation"):
        policies_rules(tmp_path, enforcer, text)


def test_unknown_rule_format_is_a_config_error(tmp_path):
    with pytest.raises(exceptions.ConfigError, match=r"'acl'.*'roles' and 'policies'"):
        PropertyProtections.from_file(write(tmp_path, ROLES_FILE), "acl", None)


def test_missing_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(exceptions.ConfigError, match=r"nope\.conf"):
        PropertyProtections.from_file(str(tmp_path / "nope.conf"), "roles", None)


def test_directory_is_a_config_error(tmp_path):
    with pytest.raises(exceptions.ConfigError, match="Cannot read property protection file"):
        PropertyProtections.from_file(str(tmp_path), "roles", None)


def test_undecodable_file_is_a_config_error(tmp_path):
    path = tmp_path / "protections.conf"
    path.write_bytes(b"[^x_\xff$]\ncreate = @\n")
    with pytest.raises(exceptions.ConfigError, match="Cannot read property protection file"):
        PropertyProtections.from_file(str(path), "roles", None)


@pytest.mark.parametrize(
    ("sample", "fmt"),
    [
        ("property-protections-roles.conf.sample", "roles"),
        ("property-protections-policies.conf.sample", "policies"),
    ],
)
def test_shipped_samples_load_and_their_examples_are_valid(tmp_path, sample, fmt):
    text = (ETC / sample).read_text()
    PropertyProtections.from_file(str(ETC / sample), fmt, policy.Enforcer(None))
    example = re.compile(r"^# (\[.*\]|(create|read|update|delete) =.*)$")
    examples = "\n".join(line[2:] for line in text.splitlines() if example.match(line))
    rules = PropertyProtections.from_file(write(tmp_path, examples), fmt, policy.Enforcer(None))
    assert len(rules.rules) >= 3


# Helpers the controllers use


def test_filter_readable_drops_unreadable_properties(rules):
    props = {"x_owner_only": "1", "x_none_read": "2", "x_all_permitted": "3", "unmatched": "4"}
    assert rules.filter_readable(props, MEMBER) == {"x_owner_only": "1", "x_all_permitted": "3"}
    assert rules.filter_readable(props, READER) == {"x_all_permitted": "3"}


def test_check_create_allows_permitted_properties(rules):
    rules.check_create({"x_all_permitted": "1", "x_none_read": "2"}, MEMBER)


def test_check_create_names_the_protected_property(rules):
    with pytest.raises(exceptions.Forbidden) as err:
        rules.check_create({"x_all_permitted": "1", "x_owner_only": "2"}, MEMBER)
    assert str(err.value) == "Property 'x_owner_only' is protected"
    assert err.value.status == 403


def test_update_with_the_same_value_needs_only_read(rules):
    current = {"x_none_update": "v", "x_owner_only": "o"}
    requested = {"x_none_update": "v", "x_owner_only": "o"}
    assert rules.check_update(current, requested, False, MEMBER) == requested


def test_update_changing_a_value_needs_update_permission(rules):
    with pytest.raises(exceptions.Forbidden, match="Property 'x_none_update' is protected"):
        rules.check_update({"x_none_update": "v"}, {"x_none_update": "w"}, False, MEMBER)


def test_update_of_an_unreadable_property_is_forbidden_even_unchanged(rules):
    with pytest.raises(exceptions.Forbidden, match="Property 'x_none_read' is protected"):
        rules.check_update({"x_none_read": "v"}, {"x_none_read": "v"}, False, MEMBER)


def test_update_adding_a_property_needs_create_permission(rules):
    assert rules.check_update({}, {"x_none_read": "n"}, False, MEMBER) == {"x_none_read": "n"}
    with pytest.raises(exceptions.Forbidden, match="Property 'x_owner_only' is protected"):
        rules.check_update({}, {"x_owner_only": "n"}, False, MEMBER)


def test_update_without_purge_leaves_missing_properties_to_the_registry(rules):
    current = {"x_none_delete": "a", "x_none_read": "b", "x_all_permitted": "c"}
    assert rules.check_update(current, {}, False, MEMBER) == {}


def test_purge_deletes_readable_deletable_properties(rules):
    current = {"x_all_permitted": "a", "x_owner_only": "b"}
    assert rules.check_update(current, {}, True, ADMIN) == {}


def test_purge_silently_keeps_unreadable_properties(rules):
    current = {"x_none_read": "secret", "x_all_permitted": "a", "unmatched": "u"}
    result = rules.check_update(current, {"x_all_permitted": "b"}, True, MEMBER)
    assert result == {"x_all_permitted": "b", "x_none_read": "secret", "unmatched": "u"}


def test_purge_of_a_readable_undeletable_property_is_forbidden(rules):
    with pytest.raises(exceptions.Forbidden, match="Property 'x_none_delete' is protected"):
        rules.check_update({"x_none_delete": "a"}, {}, True, MEMBER)


def test_purge_checks_run_after_update_and_create_checks(rules):
    current = {"x_none_update": "v", "x_none_delete": "a"}
    with pytest.raises(exceptions.Forbidden, match="x_none_update"):
        rules.check_update(current, {"x_none_update": "w"}, True, MEMBER)


def test_empty_rules_allow_every_update(tmp_path):
    rules = roles_rules(tmp_path, "")
    current = {"a": "1", "b": "2"}
    assert rules.check_update(current, {"a": "3", "c": "4"}, True, NOBODY_SPECIAL) == {
        "a": "3",
        "c": "4",
    }


def test_policies_format_without_an_enforcer_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="enforcer"):
        PropertyProtections.from_file(write(tmp_path, POLICIES_FILE), "policies", None)
