"""Property protections, as Glance v1: who may create, read, update, delete which property.

The rules file is an INI file whose section names are regular expressions. The first
section (in file order) whose regex is found in a property name decides for it; a name no
section matches is denied. Each section names `create`, `read`, `update` and `delete`:
comma lists of roles (`roles` format) or one policy rule name (`policies` format); `@`
allows everyone, `!` nobody, and an empty value nobody. A file without any section
protects nothing, as in Glance.
"""

import configparser
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glance_lite import exceptions
from glance_lite.api.policy import Enforcer
from glance_lite.context import RequestContext

LOG = logging.getLogger(__name__)

OPERATIONS = ("create", "read", "update", "delete")
FORMATS = ("roles", "policies")
EVERYONE = "@"
NOBODY = "!"


@dataclass(frozen=True)
class Rule:
    """One section: the properties it covers and, per operation, who may do it."""

    section: str
    pattern: re.Pattern
    allowed: Mapping[str, tuple[str, ...]]


class PropertyProtections:
    """Decides per property and operation; the controllers use the helpers below."""

    def __init__(self, rules: list[Rule], rule_format: str, enforcer: Enforcer | None):
        self.rules = rules
        self.rule_format = rule_format
        self.enforcer = enforcer

    @classmethod
    def from_file(
        cls, path: str, rule_format: str, enforcer: Enforcer | None
    ) -> "PropertyProtections":
        """Read a rules file; ConfigError names whatever is wrong with it."""
        rule_format = rule_format.lower()
        if rule_format not in FORMATS:
            raise exceptions.ConfigError(
                f"Invalid value '{rule_format}' for 'property_protection_rule_format'. "
                "The permitted values are 'roles' and 'policies'"
            )
        if rule_format == "policies" and enforcer is None:
            raise ValueError("the policies format needs a policy enforcer")
        parser = _read(path)
        rules = [_rule(parser, section, rule_format, path) for section in parser.sections()]
        if not rules:
            LOG.warning("Property protection file %s has no rules: nothing is protected", path)
        return cls(rules, rule_format, enforcer)

    def check(self, property_name: str, operation: str, context: RequestContext) -> bool:
        """Whether the caller may perform `operation` on the property `property_name`."""
        if not self.rules:
            return True
        if operation not in OPERATIONS:
            return False
        rule = next((r for r in self.rules if r.pattern.search(property_name)), None)
        if rule is None:
            return False
        allowed = rule.allowed[operation]
        if not allowed or NOBODY in allowed:
            return False
        if EVERYONE in allowed:
            return True
        if self.rule_format == "policies":
            return self.enforcer.check(context, allowed[0], {})
        roles = {role.lower() for role in context.roles}
        return not roles.isdisjoint(allowed)

    def filter_readable(
        self, properties: Mapping[str, Any], context: RequestContext
    ) -> dict[str, Any]:
        """The properties the caller may read (the others are silently left out)."""
        return {k: v for k, v in properties.items() if self.check(k, "read", context)}

    def check_create(self, properties: Mapping[str, Any], context: RequestContext) -> None:
        """Forbidden when the caller may not create one of `properties`."""
        for name in properties:
            if not self.check(name, "create", context):
                raise _protected(name)

    def check_update(
        self,
        current: Mapping[str, Any],
        requested: Mapping[str, Any],
        purge: bool,
        context: RequestContext,
    ) -> dict[str, Any]:
        """Check an update of the image's properties `current` with `requested`.

        A requested property that exists needs read and, when its value changes, update
        permission; a new one needs create. With `purge`, each existing property left out
        of the request is deleted if the caller may read and delete it (may read but not
        delete: Forbidden; may not read: silently kept). Returns the properties to send
        to the registry: `requested`, plus with `purge` the unreadable ones kept.
        """
        for name, value in requested.items():
            if name in current:
                self._check_change(name, current[name], value, context)
        self.check_create({k: v for k, v in requested.items() if k not in current}, context)
        result = dict(requested)
        if purge:
            for name in [k for k in current if k not in requested]:
                if not self.check(name, "read", context):
                    result[name] = current[name]
                elif not self.check(name, "delete", context):
                    raise _protected(name)
        return result

    def _check_change(self, name: str, old: Any, new: Any, context: RequestContext) -> None:
        if not self.check(name, "read", context):
            raise _protected(name)
        if new != old and not self.check(name, "update", context):
            raise _protected(name)


def _protected(name: str) -> exceptions.Forbidden:
    return exceptions.Forbidden(f"Property '{name}' is protected")


def _read(path: str) -> configparser.ConfigParser:
    # No interpolation: a '%' in a regex or a rule name is just a character.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as err:
        raise exceptions.ConfigError(
            f"Cannot read property protection file {path}: {err}"
        ) from None
    return parser


def _rule(parser: configparser.ConfigParser, section: str, rule_format: str, path: str) -> Rule:
    try:
        pattern = re.compile(section)
    except re.error as err:
        raise exceptions.ConfigError(
            f"Property protection file {path}: section [{section}] is not a valid "
            f"regular expression: {err}"
        ) from None
    allowed = {}
    for operation in OPERATIONS:
        if not parser.has_option(section, operation):
            raise exceptions.ConfigError(
                f"Property protection file {path}: section [{section}] has no '{operation}' rule"
            )
        value = parser.get(section, operation).strip()
        allowed[operation] = _permissions(value, rule_format, f"{path}: [{section}] {operation}")
        if not allowed[operation]:
            LOG.warning("%s: [%s] %s is empty: nobody may do it", path, section, operation)
    return Rule(section, pattern, allowed)


def _permissions(value: str, rule_format: str, where: str) -> tuple[str, ...]:
    if not value:
        return ()
    if rule_format == "policies":
        if "," in value:
            raise exceptions.ConfigError(
                f"Property protection file {where}={value}: one policy rule per "
                "operation (combine rules in the policy file)"
            )
        return (value,)
    roles = tuple(role.strip().lower() for role in value.split(","))
    if EVERYONE in roles and NOBODY in roles:
        raise exceptions.ConfigError(
            f"Property protection file {where}={value}: '@' and '!' are mutually exclusive"
        )
    return roles
