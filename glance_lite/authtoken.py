"""The `authtoken` filter of the keystone flavors: keystonemiddleware's auth_token.

It checks the caller's X-Auth-Token with Keystone and hands what it confirmed (user,
project, roles, the service catalog) to the context filter behind it as X-Identity-Status,
X-User-Id, X-Project-Id, X-Roles and X-Service-Catalog, after removing any such header the
caller sent. Its options are read from `[keystone_authtoken]` of the service's own
configuration files; the paste ini's options for the filter win over them.

Two departures from the plain filter, both so that a Keystone that cannot be asked never
looks like a caller who may not come in:

- Keystone unreachable, or refusing the service's own `[keystone_authtoken]`
  credentials, is a 503 naming the problem. With `delay_auth_decision` (the api's
  pipelines) the plain filter would pass the request on as unauthenticated: a 401.
- The filter is built at start-up from a checked configuration: an `auth_type` that no
  installed plugin provides, or no `auth_url` for it, stops the service with a message
  instead of failing every request later.

keystonemiddleware comes with the `keystone` extra (`pip install 'glance-lite[keystone]'`);
without it a keystone flavor stops the service at start-up saying so.
"""

import logging

import webob.exc

from glance_lite import config, exceptions

try:
    from keystoneauth1 import exceptions as ksa_exceptions
    from keystonemiddleware import auth_token
    from keystonemiddleware.auth_token import _exceptions as ksm_exceptions
except ImportError:  # the base install: the keystone flavors say what is missing
    auth_token = None

LOG = logging.getLogger(__name__)

GROUP = "keystone_authtoken"
MISSING = (
    "the keystone flavors need keystonemiddleware, which is not installed: "
    "pip install 'glance-lite[keystone]'"
)


if auth_token is not None:
    # What keystonemiddleware turns into "Keystone unavailable" when it may not answer.
    UNREACHABLE = (
        ksa_exceptions.ConnectFailure,
        ksa_exceptions.DiscoveryFailure,
        ksa_exceptions.RequestTimeout,
    )

    class AuthToken(auth_token.AuthProtocol):
        """auth_token, with Keystone's unavailability a 503 rather than an anonymous caller."""

        def fetch_token(self, token, **kwargs):
            try:
                return super().fetch_token(token, **kwargs)
            except ksm_exceptions.InvalidToken as exc:
                cause = exc.__context__
                if isinstance(cause, UNREACHABLE):
                    raise unavailable("Keystone could not be reached to check the token") from None
                if isinstance(cause, ksm_exceptions.ServiceError):
                    raise unavailable(
                        f"Keystone did not check the token ({cause}); see the service's "
                        f"[{GROUP}] options"
                    ) from None
                raise


def unavailable(reason: str) -> webob.exc.HTTPServiceUnavailable:
    LOG.error("authentication unavailable: %s", reason)
    return webob.exc.HTTPServiceUnavailable(
        explanation=f"Authentication is unavailable: {reason}. Try again later.",
        headers=[("Retry-After", "5")],
    )


def filter_factory(global_conf, **local_conf):
    """`[filter:authtoken]`: auth_token configured from the service's `[keystone_authtoken]`."""
    if auth_token is None:
        raise exceptions.ConfigError(MISSING)
    conf = config.get()
    settings = {**global_conf, **local_conf, "oslo_config_config": conf}
    return lambda app: build(app, conf, dict(settings))


def build(app, conf, settings: dict) -> "AuthToken":
    """The filter, or a ConfigError on a `[keystone_authtoken]` that cannot work: no
    credentials plugin (no token could ever be checked), an unknown one, or one without
    what it needs."""
    try:
        filt = AuthToken(app, settings)
    except ksa_exceptions.NoMatchingPlugin as exc:
        raise exceptions.ConfigError(
            f"[{GROUP}] auth_type = {exc.name}: no such keystoneauth plugin is installed"
        ) from None
    except ksa_exceptions.MissingRequiredOptions as exc:
        names = ", ".join(opt.dest for opt in exc.options)
        raise exceptions.ConfigError(
            f"[{GROUP}] {names} is not set, which auth_type = "
            f"{getattr(conf, GROUP).auth_type} needs"
        ) from None
    if not getattr(conf, GROUP).auth_type:
        raise exceptions.ConfigError(
            f"[{GROUP}] auth_type is not set: the service needs credentials of its own "
            f"(e.g. auth_type = password, auth_url, username, password, project_name) "
            f"to have Keystone check its callers' tokens"
        )
    return filt
