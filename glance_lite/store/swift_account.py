"""Swift accounts and locations as Glance's swift store (single tenant) names them.

An account is an authentication URL, a user and a key, with the version of the
authentication service: 1 for tempauth (`account:user`), 2 or 3 for keystone
(`project:user`). Accounts come from a glance-swift.conf, one section per reference,
or from the older `swift_store_auth_*` options, which make one account under the
name `default_swift_reference`.

Locations are Glance's, so that each reads the other's:
  swift+http://<user>:<key>@<auth address without scheme>/<container>/<object>
  swift+https://... (and plain swift://, which means https)
  swift+config://<reference>/<container>/<object>   (with a config file: no credentials)
User and key are percent-quoted in a location (Glance unquotes them when it reads one).
"""

import configparser
import dataclasses
import urllib.parse

from glance_lite import exceptions
from glance_lite.store.base import BadStoreUri

SCHEMES = ("swift", "swift+http", "swift+https", "swift+config")
AUTH_VERSIONS = ("1", "2", "3")
# What a glance-swift.conf section gives when it names no domain (Glance's defaults)
DOMAIN_DEFAULTS = {"user_domain_id": "default", "project_domain_id": "default"}


@dataclasses.dataclass(frozen=True)
class Account:
    auth_address: str  # with its scheme: http://host:port/auth/v1.0
    user: str
    key: str = dataclasses.field(repr=False)
    auth_version: str = "2"
    user_domain_id: str | None = "default"
    user_domain_name: str | None = None
    project_domain_id: str | None = "default"
    project_domain_name: str | None = None

    def __post_init__(self):
        if self.auth_version not in AUTH_VERSIONS:
            raise exceptions.ConfigError(
                f"Swift auth_version must be 1, 2 or 3, not {self.auth_version!r}"
            )
        if not self.auth_address.startswith(("http://", "https://")):
            raise exceptions.ConfigError(
                f"Swift auth address must be an http or https URL: {self.auth_address!r}"
            )
        if self.auth_version != "1" and ":" not in self.user:
            raise exceptions.ConfigError(
                f"Swift user {self.user!r} must be 'project:user' for keystone "
                f"(auth_version {self.auth_version})"
            )

    @property
    def shown(self) -> str:
        """The account as it may be logged: its address and user, never its key."""
        return f"{self.auth_address} as {self.user}"


@dataclasses.dataclass(frozen=True)
class SwiftLocation:
    account: Account
    container: str
    obj: str
    reference: str | None = None  # the swift+config reference it was named by

    def uri(self) -> str:
        if self.reference is not None:
            return f"swift+config://{self.reference}/{self.container}/{self.obj}"
        return self._uri(quote(self.account.user), quote(self.account.key))

    def redacted(self) -> str:
        """The location without its credentials, as it may be shown or logged."""
        if self.reference is not None:
            return self.uri()
        return self._uri("***", "***")

    def _uri(self, user: str, key: str) -> str:
        scheme, _, address = self.account.auth_address.partition("://")
        return f"swift+{scheme}://{user}:{key}@{address.strip('/')}/{self.container}/{self.obj}"


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def parse(location: str, references: dict[str, Account], default: Account | None) -> SwiftLocation:
    """The account, container and object a swift location names.

    A credentialed location authenticates with the version (and domains) of `default`,
    the account new images are written with, as Glance does."""
    scheme, sep, rest = location.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise BadStoreUri(f"not a swift location: {redact(location)}")
    if "://" in rest:
        raise BadStoreUri(
            "a swift location holds one scheme: swift+http://user:key@host/path/container/"
            "object, not swift://user:key@http://host/..."
        )
    netloc, _, path = rest.partition("/")
    parts = path.strip("/").split("/")
    if len(parts) < 2 or not all(parts[-2:]):
        raise BadStoreUri(f"a swift location ends with /<container>/<object>: {redact(location)}")
    *auth_path, container, obj = parts
    if scheme == "swift+config":
        if auth_path or "@" in netloc:
            raise BadStoreUri(
                f"a swift+config location is swift+config://<reference>/"
                f"<container>/<object>: {location}"
            )
        account = references.get(netloc)
        if account is None:
            raise BadStoreUri(
                f"Badly formed Swift URI. Credentials not found for account reference '{netloc}'"
            )
        return SwiftLocation(account, container, obj, reference=netloc)
    creds, at, host = netloc.rpartition("@")
    if not at:
        raise BadStoreUri("Location is missing user:password information.")
    raw_user, colon, raw_key = creds.rpartition(":")
    if not colon or not raw_user or not host:
        raise BadStoreUri("Badly formed credentials in Swift URI.")
    http = "http" if scheme == "swift+http" else "https"
    address = "/".join([host, *auth_path])
    base = default or Account(f"{http}://{address}", "x:x", "", auth_version="1")
    try:
        account = dataclasses.replace(
            base,
            auth_address=f"{http}://{address}",
            user=urllib.parse.unquote(raw_user),
            key=urllib.parse.unquote(raw_key),
        )
    except exceptions.ConfigError as err:
        raise BadStoreUri(str(err)) from None
    return SwiftLocation(account, container, obj)


def redact(location: str) -> str:
    """`location` with the user and key of a credentialed swift location hidden."""
    scheme, sep, rest = location.partition("://")
    netloc, slash, path = rest.partition("/")
    if sep and "@" in netloc:
        return f"{scheme}://***:***@{netloc.rpartition('@')[2]}{slash}{path}"
    return location


def references_from_file(path: str, auth_version: str) -> dict[str, Account]:
    """The accounts of a glance-swift.conf; ConfigError if it cannot be read or a section
    lacks what an account needs."""
    parser = configparser.ConfigParser(defaults=DOMAIN_DEFAULTS, interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, configparser.Error) as err:
        raise exceptions.ConfigError(f"swift_store_config_file {path}: {err}") from err
    accounts = {}
    for name in parser.sections():
        section = parser[name]
        missing = [key for key in ("auth_address", "user", "key") if not section.get(key)]
        if missing:
            raise exceptions.ConfigError(
                f"swift_store_config_file {path}: section [{name}] lacks {', '.join(missing)}"
            )
        accounts[name] = Account(
            auth_address=section["auth_address"],
            user=section["user"],
            key=section["key"],
            auth_version=section.get("auth_version") or auth_version,
            user_domain_id=section.get("user_domain_id"),
            user_domain_name=section.get("user_domain_name"),
            project_domain_id=section.get("project_domain_id"),
            project_domain_name=section.get("project_domain_name"),
        )
    return accounts
