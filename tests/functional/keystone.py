"""A real Keystone for the keystone flavors' tests, and deployments behind it.

.ci/services/start-keystone.sh starts one and names the GLANCE_LITE_TEST_KEYSTONE_*
variables it exports (its test.env): the auth URL and four accounts, all in the default
domain. Unset or unreachable: the tests skip saying so, or fail under CI=true.
"""

import dataclasses
import datetime
import os
from pathlib import Path

import requests

from tests.conftest import unavailable
from tests.functional.servers import Deployment, ServerProcess, api_conf, db_sync, registry_conf

URL_ENV = "GLANCE_LITE_TEST_KEYSTONE_URL"
DOMAIN = "default"
TIMEOUT = 30


@dataclasses.dataclass(frozen=True)
class Account:
    user: str
    password: str
    project: str


@dataclasses.dataclass(frozen=True)
class Token:
    id: str
    project_id: str
    user_id: str
    expires_at: str


@dataclasses.dataclass(frozen=True)
class Keystone:
    url: str
    admin: Account
    demo: Account
    alt: Account
    service: Account

    def token(self, account: Account, **scope) -> Token:
        """A project-scoped token for `account`, by password."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": account.user,
                            "password": account.password,
                            "domain": {"id": DOMAIN},
                        }
                    },
                },
                "scope": scope or {"project": {"name": account.project, "domain": {"id": DOMAIN}}},
            }
        }
        return self._issue(body)

    def _issue(self, body: dict) -> Token:
        resp = requests.post(f"{self.url}/auth/tokens", json=body, timeout=TIMEOUT)
        assert resp.status_code == 201, resp.text
        data = resp.json()["token"]
        return Token(
            resp.headers["X-Subject-Token"],
            data.get("project", {}).get("id", ""),
            data["user"]["id"],
            data["expires_at"],
        )

    def short_token(self, account: Account, seconds: int) -> Token:
        """A token of `account` that expires `seconds` from now: Keystone ends a token
        issued with an application credential when the credential ends."""
        token = self.token(account)
        name = f"short-{os.urandom(4).hex()}"
        resp = requests.post(
            f"{self.url}/users/{token.user_id}/application_credentials",
            json={"application_credential": {"name": name, "expires_at": _later(seconds)}},
            headers={"X-Auth-Token": token.id},
            timeout=TIMEOUT,
        )
        assert resp.status_code == 201, resp.text
        cred = resp.json()["application_credential"]
        return self._issue(
            {
                "auth": {
                    "identity": {
                        "methods": ["application_credential"],
                        "application_credential": {"id": cred["id"], "secret": cred["secret"]},
                    }
                }
            }
        )

    def revoke(self, token: Token, by: Token) -> None:
        resp = requests.delete(
            f"{self.url}/auth/tokens",
            headers={"X-Auth-Token": by.id, "X-Subject-Token": token.id},
            timeout=TIMEOUT,
        )
        assert resp.status_code == 204, resp.text

    def authtoken_options(self, **override) -> dict[str, object]:
        """`[keystone_authtoken]` for a service checking tokens as the service account."""
        options: dict[str, object] = {
            "www_authenticate_uri": self.url,
            "auth_url": self.url,
            "auth_type": "password",
            "username": self.service.user,
            "password": self.service.password,
            "project_name": self.service.project,
            "user_domain_id": DOMAIN,
            "project_domain_id": DOMAIN,
            "service_token_roles_required": "true",
        }
        options.update(override)
        return options


def _later(seconds: int) -> str:
    """`seconds` from now, in the UTC ISO form Keystone takes (same machine, same clock)."""
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _account(role: str) -> Account:
    def get(part: str) -> str:
        return os.environ.get(f"GLANCE_LITE_TEST_KEYSTONE_{role}_{part}", "")

    return Account(get("USER"), get("PASSWORD"), get("PROJECT"))


def keystone() -> Keystone:
    """The test Keystone, or skip (fail under CI=true) saying why there is none."""
    url = os.environ.get(URL_ENV)
    if not url:
        unavailable(
            f"{URL_ENV} is not set; the keystone flavor tests need a Keystone "
            f"(.ci/services/start-keystone.sh)"
        )
    try:
        requests.get(url, timeout=5).raise_for_status()
    except requests.RequestException as exc:
        unavailable(f"Keystone at {URL_ENV} ({url}) is unreachable: {exc}")
    return Keystone(
        url.rstrip("/"), _account("ADMIN"), _account("DEMO"), _account("ALT"), _account("SERVICE")
    )


def add_section(conf: Path, name: str, options: dict[str, object]) -> Path:
    lines = [f"[{name}]"] + [f"{k} = {v}" for k, v in options.items() if v is not None]
    conf.write_text(conf.read_text() + "\n" + "\n".join(lines) + "\n")
    return conf


def set_flavor(conf: Path, flavor: str) -> Path:
    conf.write_text(
        conf.read_text().replace("[paste_deploy]", f"[paste_deploy]\nflavor = {flavor}")
    )
    return conf


class KeystoneDeployment(Deployment):
    """glance-registry and glance-api, both in the keystone flavor, checking tokens with
    `ks`. `api_options` go to the api's [DEFAULT] (flavor too: default keystone);
    `registry_authtoken` / `api_authtoken` override their [keystone_authtoken]."""

    def __init__(
        self,
        workdir: Path,
        ks: Keystone,
        *,
        api_options=None,
        registry_flavor="keystone",
        registry_authtoken=None,
        api_authtoken=None,
    ):
        super().__init__(workdir, api_options={"flavor": "keystone", **(api_options or {})})
        self.registry_flavor = registry_flavor
        self.registry_authtoken = ks.authtoken_options(**(registry_authtoken or {}))
        self.api_authtoken = ks.authtoken_options(**(api_authtoken or {}))

    def start(self) -> "KeystoneDeployment":
        reg_dir = self.workdir / "registry"
        api_dir = self.workdir / "api"
        reg_dir.mkdir(parents=True, exist_ok=True)
        api_dir.mkdir(parents=True, exist_ok=True)
        reg_conf = registry_conf(reg_dir)
        if self.registry_flavor:
            set_flavor(reg_conf, self.registry_flavor)
        add_section(reg_conf, "keystone_authtoken", self.registry_authtoken)
        db_sync(reg_conf)
        self.registry = ServerProcess("glance-registry", reg_conf, reg_dir).start()
        conf = api_conf(api_dir, self.registry.port, **self.api_options)
        add_section(conf, "keystone_authtoken", self.api_authtoken)
        self.api = ServerProcess("glance-api", conf, api_dir).start()
        return self
