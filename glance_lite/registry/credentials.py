"""glance-api's own Keystone token, for its calls to the registry (`admin_user` & co).

Got from Keystone on first use with a password (keystoneauth1, which comes with the
`keystone` extra), kept, and renewed when it is about to expire (keystoneauth asks for a
new one within 30 seconds of the old one's end). Keystone unreachable or refusing the
credentials is a RegistryUnavailable naming the problem: glance-api answers 503.
"""

import logging

from glance_lite import exceptions

try:
    from keystoneauth1 import exceptions as ksa_exceptions
    from keystoneauth1 import session as ksa_session
    from keystoneauth1.identity import generic
except ImportError:  # the base install
    generic = None

LOG = logging.getLogger(__name__)
DOMAIN = "default"


class ServiceToken:
    """admin_user's token in admin_tenant_name, both in the default domain."""

    def __init__(self, auth_url: str, username: str, password: str, project: str, timeout=30):
        if generic is None:
            raise exceptions.ConfigError(
                "auth_strategy = keystone needs keystoneauth1, which is not installed: "
                "pip install 'glance-lite[keystone]'"
            )
        missing = [
            name
            for name, value in (
                ("admin_user", username),
                ("admin_password", password),
                ("admin_tenant_name", project),
            )
            if not value
        ]
        if missing:
            raise exceptions.ConfigError(
                f"auth_strategy = keystone (auth_url {auth_url}) needs {', '.join(missing)}"
            )
        self.auth_url = auth_url
        self.username = username
        auth = generic.Password(
            auth_url=auth_url,
            username=username,
            password=password,
            project_name=project,
            user_domain_id=DOMAIN,
            project_domain_id=DOMAIN,
        )
        self._session = ksa_session.Session(auth=auth, timeout=timeout)

    def get(self) -> str:
        """The token, got or renewed if it has to be."""
        try:
            return self._session.get_token()
        except ksa_exceptions.Unauthorized:
            reason = f"Keystone refused the credentials of admin_user {self.username}"
        except (ksa_exceptions.ConnectFailure, ksa_exceptions.RequestTimeout):
            reason = f"Keystone at {self.auth_url} could not be reached"
        except ksa_exceptions.ClientException as exc:
            reason = f"no token from Keystone at {self.auth_url} for {self.username}: {exc}"
        LOG.error("glance-api's own token: %s", reason)
        raise exceptions.RegistryUnavailable(
            f"The image registry cannot be called: {reason}. Try again later."
        )

    def forget(self) -> None:
        """Get a new token on the next call (the registry refused this one)."""
        self._session.invalidate()


def from_conf(conf, environ) -> ServiceToken | None:
    """The token `[DEFAULT]` admin_* describe, or None with auth_strategy noauth (Glance's
    rule: auth_url, or OS_AUTH_URL in the environment, means keystone)."""
    auth_url = environ.get("OS_AUTH_URL") or conf.auth_url
    if not auth_url and conf.auth_strategy != "keystone":
        return None
    if not auth_url:
        raise exceptions.ConfigError("auth_strategy = keystone needs auth_url")
    return ServiceToken(auth_url, conf.admin_user, conf.admin_password, conf.admin_tenant_name)
