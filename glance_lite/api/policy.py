"""Policy enforcement (oslo.policy) for glance-api, with Glance's shipped policy.json rules.

An operator's policy file, when one is found, is the whole policy as in Glance: an action
it does not name falls back to its `default` rule. Without a file the rules below apply
(they equal `etc/policy.json`). Admin-only rules also admit `is_admin:True`, so the
anonymous admin of the no-auth pipeline, which has no roles, passes them (differences.md).
"""

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy

from glance_lite import exceptions
from glance_lite.context import RequestContext

LOG = logging.getLogger(__name__)

GROUP = "oslo_policy"
DEFAULT_POLICY_FILE = "policy.json"
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


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """oslo.policy's options with Glance's default policy file name, for the generator."""
    group, options = policy_opts.list_opts()[0]
    for opt in options:
        if opt.dest == "policy_file":
            opt.default = DEFAULT_POLICY_FILE
    return [(group, options)]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the [oslo_policy] options of list_opts() on a service's ConfigOpts."""
    for group, options in list_opts():
        conf.register_opts(options, group=group)


def from_conf(conf: cfg.ConfigOpts) -> "Enforcer":
    """The enforcer the [oslo_policy] options of `conf` describe (see register_opts).

    The policy file is looked up as oslo.config finds files: next to the config files,
    in the config dirs, then ~/.glance, ~, /etc/glance, /etc. The default name may be
    absent (the built-in rules apply); a name the operator set must be found.
    """
    group = conf[GROUP]
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
    location = conf.get_location(option, group=GROUP)
    return location is not None and location.location != cfg.Locations.opt_default


def image_target(image_meta: Mapping[str, Any]) -> dict[str, Any]:
    """Core fields merged with the custom properties; a core field wins a name clash."""
    target = dict(image_meta.get("properties") or {})
    target.update((k, v) for k, v in image_meta.items() if k != "properties")
    return target


# oslo.policy's spellings of a rule that always passes
ALLOW_ALL = ("", "@")
# A check that reads the target (%(owner)s) or asks a server (http:, https:)
TARGET_OR_REMOTE = re.compile(r"%\(|\bhttps?:")
RULE_REFERENCE = re.compile(r"\brule:([^\s()]+)")
DECISIONS_KEPT = 4096  # cached (rule, caller) answers; all dropped when full


class Enforcer:
    """Checks actions against the policy for a RequestContext.

    `policy_file` is a path, or None for the built-in rules. `policy_dirs` hold more rule
    files (oslo.policy's policy.d; later files override earlier ones), read only together
    with a policy file. `options` are other [oslo_policy] values (remote_timeout, ...).
    A file that is missing or cannot be parsed raises ConfigError here. Edited files are
    read again on the next check; if they are broken by then, the rules read before stay
    in force and the problem is logged.
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
        self._oslo = policy.Enforcer(
            _own_conf(options or {}), rules={}, default_rule=default_rule, use_conf=False
        )
        self._oslo.register_defaults(list_rules())
        self._stamp = self._file_stamp()
        self._install(self._read_files())

    def check(self, context: RequestContext, action: str, target: Mapping[str, Any]) -> bool:
        """Whether the policy allows `action` on `target` for the caller."""
        self._refresh()
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

    def _file_stamp(self) -> tuple:
        return tuple((path, _mtime(path)) for path in self._files())

    def _read_files(self) -> dict[str, str]:
        """The rules of every file, later files overriding earlier ones."""
        rules: dict[str, str] = {}
        for path in self._files():
            rules.update(_read_rules(path))
        return rules

    def _install(self, file_rules: Mapping[str, str]) -> None:
        """Glance's semantics: a policy file is the whole policy, apart from two rules."""
        if self.policy_file is None:
            rules = dict(DEFAULT_RULES)
        else:
            rules = {name: DEFAULT_RULES[name] for name in ALWAYS_DEFINED}
        rules.update(file_rules)
        self._oslo.set_rules(policy.Rules.from_dict(rules), overwrite=True, use_conf=False)
        # Rules that allow anyone ("" or "@", most of the shipped policy) are answered
        # without oslo.policy, whose every check costs more than the rest of a request's
        # own work here.
        # Rules that read nothing of the target (no %(...)s) nor ask a remote server
        # (http:), directly or through the rules they name, decide by the caller alone;
        # their answers are kept per caller until the rules change.
        self._caller_only = caller_only_rules(rules)
        self._decisions: dict[tuple, bool] = {}
        self._allow_all = frozenset(
            name
            for name, rule in rules.items()
            if isinstance(rule, str) and rule.strip() in ALLOW_ALL
        )

    def _refresh(self) -> None:
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._install(self._read_files())
        except exceptions.ConfigError as err:
            LOG.error("%s; keeping the policy rules read before", err)


def caller_only_rules(rules: Mapping[str, str]) -> frozenset[str]:
    """Names of the rules whose outcome depends on the caller's credentials alone."""
    verdicts: dict[str, bool] = {}

    def caller_only(name: str, seen: frozenset[str]) -> bool:
        if name in verdicts:
            return verdicts[name]
        text = rules.get(name)
        if text is None or name in seen:  # a missing or circular rule: leave it to oslo
            return False
        verdict = not TARGET_OR_REMOTE.search(text) and all(
            caller_only(ref, seen | {name}) for ref in RULE_REFERENCE.findall(text)
        )
        verdicts[name] = verdict
        return verdict

    return frozenset(name for name in rules if caller_only(name, frozenset()))


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
    for group, opts in policy_opts.list_opts():  # oslo.policy's own, unchanged
        conf.register_opts(opts, group=group)
    conf(args=[], default_config_files=[], default_config_dirs=[])
    for name, value in options.items():
        conf.set_override(name, value, group=GROUP)
    return conf


def _dir_files(directory: str) -> list[str]:
    """The rule files of a policy.d directory, in the order oslo.policy reads them."""
    names = sorted(next(os.walk(directory), (None, None, []))[2])
    return [os.path.join(directory, n) for n in names if not n.startswith(".")]


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


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
