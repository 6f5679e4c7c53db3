"""The options of glance-api's own Keystone credentials, for its calls to the registry.

`[keystone_authtoken]`, which the keystone flavors' auth_token filter reads, is
keystonemiddleware's own: it registers it, and the sample generator lists it from
keystonemiddleware's `keystonemiddleware.auth_token` namespace.
"""

from oslo_config import cfg

service_credential_opts = [
    cfg.StrOpt(
        "admin_user",
        help="User name of glance-api's own Keystone account (domain 'default'). With "
        "auth_strategy = keystone glance-api gets a token for it, keeps it and renews it "
        "before it expires. It goes to the registry as X-Service-Token next to the "
        "caller's X-Auth-Token (whatever use_user_token says), so that a registry in "
        "the keystone flavor still takes a caller's token that expired during a long "
        "upload (the account needs the 'service' role for that); it never stands for a "
        "caller who has a token. An admin caller without a token (glance-scrubber, the "
        "no-auth flavor) sends it as X-Auth-Token.",
    ),
    cfg.StrOpt("admin_password", secret=True, help="Password of admin_user."),
    cfg.StrOpt(
        "admin_tenant_name",
        help="Project of admin_user's token (domain 'default').",
    ),
    cfg.StrOpt(
        "auth_url",
        help="Keystone's identity URL for admin_user (e.g. http://keystone:5000/v3); "
        "setting it implies auth_strategy = keystone. The OS_AUTH_URL environment "
        "variable, when set, wins.",
    ),
    cfg.StrOpt(
        "auth_strategy",
        default="noauth",
        choices=("noauth", "keystone"),
        help="How glance-api authenticates its own calls to the registry: noauth (no "
        "credentials of its own) or keystone (admin_user's token).",
    ),
    cfg.StrOpt(
        "auth_region",
        help="Accepted as Glance's; the token is got from auth_url, whatever the region.",
    ),
]
