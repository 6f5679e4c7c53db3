"""The registry's shared-secret check (paste filter `registrysecret`).

With `[DEFAULT] registry_shared_secret` set, every request must carry the header
`X-Glance-Registry-Secret` with exactly that value, else 401. Unset: no check at all.
Not in Glance, which trusts anyone who can reach the registry (docs/differences.md).
"""

import hmac

import webob
import webob.exc

from glance_lite import config
from glance_lite.registry import headers

HEADER = headers.SECRET


class SharedSecret:
    def __init__(self, app, *, secret: str):
        self.app = app
        self.secret = secret.encode("utf-8")

    def __call__(self, environ, start_response):
        given = webob.Request(environ).headers.get(HEADER)
        if given is None:
            return self._refuse(environ, start_response, f"The {HEADER} header is missing.")
        if not self._matches(given):
            return self._refuse(environ, start_response, f"The {HEADER} header is wrong.")
        return self.app(environ, start_response)

    def _matches(self, given: str) -> bool:
        # WSGI header values are latin-1 decoded str: compare the bytes as sent.
        try:
            raw = given.encode("latin-1")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(raw, self.secret)

    @staticmethod
    def _refuse(environ, start_response, explanation: str):
        return webob.exc.HTTPUnauthorized(explanation=explanation)(environ, start_response)


def secured(app, secret: str | None):
    """`app` behind the secret check, or `app` itself when no secret is configured."""
    return SharedSecret(app, secret=secret) if secret else app


def filter_factory(global_conf, **local_conf):
    secret = config.get().registry_shared_secret
    return lambda app: secured(app, secret)
