"""Every combination of the create/read/update/delete rules of property protections.

One property per combination, named `p_c1r0u1d0` (1: a `member` may do it, 0: only an
admin may), in a rules file of either format. `expected()` says what Glance v1 answers
a member who works on that property; the unit and functional tests drive the same
requests through the in-process api and the real servers and compare.
"""

import itertools
import json

OPERATIONS = ("create", "read", "update", "delete")
COMBINATIONS = list(itertools.product((False, True), repeat=4))
# The policy rules the `policies` format names, for the file policy_json() writes.
MEMBER_RULE = "prop_member_or_admin"
ADMIN_RULE = "prop_admin_only"
KEEP = {"x-glance-registry-purge-props": "false"}


def name(combination) -> str:
    return "p_" + "".join(
        f"{op[0]}{int(allowed)}" for op, allowed in zip(OPERATIONS, combination, strict=True)
    )


def rules_file(rule_format: str) -> str:
    """A rules file with one section per combination, then one allowing everything else."""
    sections = []
    for combination in COMBINATIONS:
        lines = [f"[^{name(combination)}$]"]
        for op, allowed in zip(OPERATIONS, combination, strict=True):
            if rule_format == "roles":
                lines.append(f"{op} = admin,member" if allowed else f"{op} = admin")
            else:
                lines.append(f"{op} = {MEMBER_RULE if allowed else ADMIN_RULE}")
        sections.append("\n".join(lines))
    sections.append("[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @")
    return "\n\n".join(sections) + "\n"


def policy_json() -> str:
    return json.dumps(
        {
            "default": "",
            "context_is_admin": "role:admin",
            MEMBER_RULE: "role:admin or role:member",
            ADMIN_RULE: "role:admin",
        }
    )


def expected(combination) -> dict[str, tuple[int, str | None]]:
    """Per request a member makes on an image holding the property with value "old":
    (status, the property's value afterwards as an admin reads it; None: gone).

    - rename: a PUT with only a new name (the property set is replaced)
    - rename_keep: the same with x-glance-registry-purge-props: false
    - same: a PUT sending the property with its current value
    - change: a PUT (purge-props false) sending a new value
    - create: a PUT (purge-props false) adding the property to an image without it
      (the value afterwards is that image's)
    """
    create, read, update, delete = combination
    if not read:  # unreadable: kept through a rename, never touched by name
        rename = (200, "old")
    elif delete:
        rename = (200, None)
    else:
        rename = (403, "old")
    return {
        "rename": rename,
        "rename_keep": (200, "old"),
        "same": (200, "old") if read else (403, "old"),
        "change": (200, "new") if read and update else (403, "old"),
        "create": (200, "new") if create else (403, None),
    }


def request_headers(request: str, prop: str) -> dict[str, str]:
    """The headers of the PUT a member sends for `request` (see expected())."""
    header = f"x-image-meta-property-{prop}"
    return {
        "rename": {"x-image-meta-name": "renamed"},
        "rename_keep": {"x-image-meta-name": "renamed", **KEEP},
        "same": {header: "old"},
        "change": {header: "new", **KEEP},
        "create": {header: "new", **KEEP},
    }[request]
