"""Policy enforcement (oslo.policy) for glance-api, with Glance's shipped policy.json rules.

An operator's policy file, when one is found, is the whole policy as in Glance: an action
it does not name falls back to its `default` rule. Without a file the rules below apply
(they equal `etc/policy.json`). Admin-only rules also admit `is_admin:True`, so the
anonymous admin of the no-auth pipeline, which has no roles, passes them (differences.md).
"""

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from oslo_config import cfg
from oslo_policy import _checks, policy
from oslo_policy import opts as oslo_policy_opts

from glance_lite import exceptions, opts
from glance_lite.context import RequestContext

LOG = logging.getLogger(__name__)

ADMIN_ONLY = "role:admin or is_admin:True"
DENIED = "Access was denied to this resource."

# Glance's shipped policy.json, limited to the actions v1 knows of; the admin-only rules
# also admit is_admin (the no-auth admin has no roles). etc/policy.json is the same.
DEFAULT_RULES = {
    "context_is_admin": "role:admin",
    "default": ADMIN_ONLY,
    "add_image": "",
    "delete_image": "",
    "get_image": "",
    "get_images": "",
    "modify_image": "",
    "publicize_image": ADMIN_ONLY,
    "copy_from": "",
    "download_image": "",
    "upload_image": "",
    "delete_image_location": "",
    "get_image_location": "",
    "set_image_location": "",
    "add_member": "",
    "delete_member": "",
    "get_member": "",
    "get_members": "",
    "modify_member": "",
    "manage_image_cache": ADMIN_ONLY,
}

# With an operator's file these two still have a value when the file leaves them out.
ALWAYS_DEFINED = ("context_is_admin", "default")

# [oslo_policy] options this module resolves itself instead of passing them on.
RESOLVED_OPTS = ("policy_file", "policy_dirs", "policy_default_rule")


def from_conf(conf: cfg.ConfigOpts) -> "Enforcer":
    """The enforcer the [oslo_policy] options of `conf` describe (opts.py registers them).

    The policy file is looked up as oslo.config finds files: next to the config files,
    in the config dirs, then ~/.glance, ~, /etc/glance, /etc. The default name may be
    absent (the built-in rules apply); a name the operator set must be found.
    """
    group = conf[opts.POLICY_GROUP]
    name = group.policy_file
    path = conf.find_file(name) if name else None
    if name and path is None and _set_by_operator(conf, "policy_file"):
        raise exceptions.ConfigError(f"Policy file {name} not found")
    found = [conf.find_file(d) for d in group.policy_dirs]
    dirs = [d for d in found if d and os.path.isdir(d)]
    others = {opt: group[opt] for opt in group if opt not in RESOLVED_OPTS}
    return Enforcer(
        path,
        default_rule=group.policy_default_rule,
        policy_dirs=dirs,
        options=others,
    )


def _set_by_operator(conf: cfg.ConfigOpts, option: str) -> bool:
    location = conf.get_location(option, group=opts.POLICY_GROUP)
    return location is not None and location.location != cfg.Locations.opt_default


def image_target(image_meta: Mapping[str, Any]) -> dict[str, Any]:
    """Core fields merged with the custom properties; a core field wins a name clash."""
    target = dict(image_meta.get("properties") or {})
    target.update((k, v) for k, v in image_meta.items() if k != "properties")
    return target


DECISIONS_KEPT = 4096  # cached (rule, caller) answers; all dropped when full
# Checks whose answer depends on nothing but the caller's credentials, as long as their
# right-hand side has no `%` (which would interpolate the target into it). Any other
# kind of check (http:, https:, a plugin's) is never answered from the cache.
CALLER_CHECKS = (_checks.RoleCheck, _checks.GenericCheck)


class Enforcer:
    """Checks actions against the policy for a RequestContext.

    `policy_file` is a path, or None for the built-in rules. `policy_dirs` hold more rule
    files (oslo.policy's policy.d; later files override earlier ones), read only together
    with a policy file. `options` are other [oslo_policy] values (remote_timeout, ...).
    A file that is missing or cannot be parsed raises ConfigError here.

    oslo.policy loads the files, and reloads them when their modification time changes
    (its Enforcer.load_rules compares it on every check: one stat of the file and of each
    policy.d entry). If a file is broken by then, the rules read before stay in force and
    the problem is logged; if the policy file is removed, only `context_is_admin` and
    `default` remain, so every action falls back to the default rule.
    """

    def __init__(
        self,
        policy_file: str | None,
        *,
        default_rule: str = "default",
        policy_dirs: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
    ):
        self.policy_file = policy_file
        self.policy_dirs = [os.path.abspath(d) for d in policy_dirs] if policy_file else []
        for path in self._files():  # oslo.policy would only log a missing file
            _read_rules(path)
        conf = _own_conf({**(options or {}), "policy_dirs": self.policy_dirs})
        self._oslo = policy.Enforcer(
            conf,
            policy_file=policy_file,
            default_rule=default_rule,
            use_conf=policy_file is not None,
        )
        if policy_file is None:
            self._oslo.set_rules(policy.Rules.from_dict(DEFAULT_RULES), use_conf=False)
        else:
            # Glance's semantics: a policy file is the whole policy, apart from two rules.
            self._oslo.register_defaults(
                [policy.RuleDefault(name, DEFAULT_RULES[name]) for name in ALWAYS_DEFINED]
            )
        self._rules_seen: object = None
        self._load()

    def check(self, context: RequestContext, action: str, target: Mapping[str, Any]) -> bool:
        """Whether the policy allows `action` on `target` for the caller."""
        # Loaded here, where a file that broke is caught and logged; enforce() below
        # loads again, which then finds nothing new (a second getmtime).
        self._load()
        if action in self._allow_all:
            return True
        if action not in self._caller_only:
            return bool(self._oslo.enforce(action, dict(target), credentials(context)))
        key = (action, *caller_key(context))
        allowed = self._decisions.get(key)
        if allowed is None:
            if len(self._decisions) >= DECISIONS_KEPT:
                self._decisions.clear()
            allowed = bool(self._oslo.enforce(action, dict(target), credentials(context)))
            self._decisions[key] = allowed
        return allowed

    def enforce(self, context: RequestContext, action: str, target: Mapping[str, Any]) -> None:
        """Raise Forbidden unless the policy allows `action` on `target`."""
        if not self.check(context, action, target):
            LOG.debug("Policy denies '%s' to the caller", action)
            raise exceptions.Forbidden(DENIED)

    def check_is_admin(self, context: RequestContext) -> bool:
        """The `context_is_admin` rule: whether the caller counts as an admin."""
        return self.check(context, "context_is_admin", {})

    def _files(self) -> list[str]:
        if self.policy_file is None:
            return []
        return [self.policy_file, *(f for d in self.policy_dirs for f in _dir_files(d))]

    def _load(self) -> None:
        """oslo.policy's (re)load of the files, then the shortcuts for the rules in force."""
        try:
            self._oslo.load_rules()
        except Exception as err:  # oslo.policy's parsing raises ValueError, TypeError, ...
            # oslo.policy has recorded the broken file's time and keeps the rules it had.
            LOG.error("Cannot load the policy files: %s; keeping the policy rules read before", err)
        rules = self._oslo.rules
        if rules is self._rules_seen:
            return
        # oslo.policy replaced its rules: work the shortcuts out again.
        # Rules that allow anyone ("" or "@", most of the shipped policy) are answered
        # without oslo.policy, whose every check costs more than the rest of a request's
        # own work here. Rules that read nothing of the target nor ask a remote server,
        # directly or through the rules they name, decide by the caller alone; their
        # answers are kept per caller until the rules change.
        self._allow_all = frozenset(
            name for name, check in rules.items() if isinstance(check, _checks.TrueCheck)
        )
        self._caller_only = caller_only_rules(rules)
        self._decisions: dict[tuple, bool] = {}
        self._rules_seen = rules


def caller_only_rules(rules: Mapping[str, _checks.BaseCheck]) -> frozenset[str]:
    """Names of the parsed rules whose outcome depends on the caller's credentials alone."""
    verdicts: dict[str, bool] = {}

    def caller_only(check: _checks.BaseCheck, seen: frozenset[str]) -> bool:
        kind = type(check)
        if kind in (_checks.TrueCheck, _checks.FalseCheck):
            return True
        if kind in (_checks.AndCheck, _checks.OrCheck):
            return all(caller_only(sub, seen) for sub in check.rules)
        if kind is _checks.NotCheck:
            return caller_only(check.rule, seen)
        if kind is _checks.RuleCheck:
            return named(check.match, seen)
        return kind in CALLER_CHECKS and "%" not in check.match

    def named(name: str, seen: frozenset[str]) -> bool:
        if name in verdicts:
            return verdicts[name]
        if name not in rules or name in seen:  # missing or circular: leave it to oslo
            return False
        verdicts[name] = verdict = caller_only(rules[name], seen | {name})
        return verdict

    return frozenset(name for name in rules if named(name, frozenset()))


def caller_key(context: RequestContext) -> tuple:
    """Everything of the caller that credentials() shows a rule."""
    return (
        context.user_id,
        context.tenant_id,
        tuple(context.roles),
        context.is_admin,
        context.read_only,
    )


def list_rules() -> list[policy.RuleDefault]:
    """The built-in rules as oslo.policy RuleDefaults (for oslopolicy-sample-generator)."""
    return [policy.RuleDefault(name, rule) for name, rule in DEFAULT_RULES.items()]


def credentials(context: RequestContext) -> dict[str, Any]:
    """What a rule's left-hand side may refer to (role:, is_admin:, project_id:, ...)."""
    return {
        "user_id": context.user_id,
        "user": context.user_id,
        "project_id": context.tenant_id,
        "tenant_id": context.tenant_id,
        "tenant": context.tenant_id,
        "roles": list(context.roles),
        "is_admin": context.is_admin,
        "read_only": context.read_only,
    }


def _own_conf(options: Mapping[str, Any]) -> cfg.ConfigOpts:
    """A private ConfigOpts for oslo.policy, so nothing reads or changes a global one."""
    conf = cfg.ConfigOpts()
    for group, listed in oslo_policy_opts.list_opts():  # oslo.policy's own, unchanged
        conf.register_opts(listed, group=group)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    for name, value in options.items():
        conf.set_override(name, value, group=opts.POLICY_GROUP)
    return conf


def _dir_files(directory: str) -> list[str]:
    """The rule files of a policy.d directory, in the order oslo.policy reads them."""
    names = sorted(next(os.walk(directory), (None, None, []))[2])
    return [os.path.join(directory, n) for n in names if not n.startswith(".")]


def _read_rules(path: str) -> dict[str, str]:
    """A policy file's rules (JSON or YAML): a mapping of rule name to rule string."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError) as err:
        raise exceptions.ConfigError(f"Cannot read policy file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise exceptions.ConfigError(f"Cannot parse policy file {path}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise exceptions.ConfigError(
            f"Policy file {path} must map rule names to rules, not {type(data).__name__}"
        )
    for name, rule in data.items():
        if not isinstance(name, str) or not isinstance(rule, str):
            raise exceptions.ConfigError(
                f"Policy file {path}: rule {name!r} must be a string, not {rule!r}"
            )
    return data
