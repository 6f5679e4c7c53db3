"""The swift store's accounts, locations and configuration, without a Swift (the driver
itself runs against a real one in tests/functional/stores)."""

import logging

import pytest
import swiftclient.client
from oslo_config import cfg

from glance_lite import exceptions
from glance_lite.api.repository import ImageRepository
from glance_lite.store import swift, swift_account
from glance_lite.store.base import BadStoreUri, Stores
from glance_lite.store.swift_account import Account, SwiftLocation

TEMPAUTH = Account("http://swift.example.com:8080/auth/v1.0", "acct:user", "s3cr:t@/x", "1")
REFS = {"ref1": TEMPAUTH}
IMAGE_ID = "71c675ab-d94f-49cd-a114-e12490b328d9"
REFUSED = "http://127.0.0.1:9/auth/v1.0"  # the discard port: nothing listens


def parse(location: str) -> SwiftLocation:
    return swift_account.parse(location, REFS, TEMPAUTH)


def test_a_location_is_written_as_glance_writes_it_and_read_back():
    location = SwiftLocation(TEMPAUTH, "glance", IMAGE_ID)
    uri = location.uri()
    assert uri == (
        "swift+http://acct%3Auser:s3cr%3At%40%2Fx@swift.example.com:8080/auth/v1.0/"
        f"glance/{IMAGE_ID}"
    )
    assert parse(uri) == location


def test_a_location_of_glance_with_its_quoting_is_read():
    # Glance quotes user and key with '/' left as it is, and unquotes them on reading
    loc = parse(f"swift+https://acct%3Auser:key@swift.example.com/v2.0/glance/{IMAGE_ID}")
    assert loc.account.auth_address == "https://swift.example.com/v2.0"
    assert (loc.account.user, loc.account.key) == ("acct:user", "key")
    assert (loc.container, loc.obj) == ("glance", IMAGE_ID)
    assert loc.account.auth_version == "1"  # the version of the store's own account


def test_an_old_unquoted_location_with_plain_swift_scheme_means_https():
    loc = parse("swift://acct:user:pass@auth.example.com/auth/v1.0/c/o")
    assert loc.account.auth_address == "https://auth.example.com/auth/v1.0"
    assert (loc.account.user, loc.account.key) == ("acct:user", "pass")


def test_a_config_location_names_its_reference_and_holds_no_credentials():
    loc = parse(f"swift+config://ref1/glance/{IMAGE_ID}")
    assert loc.account is TEMPAUTH
    assert loc.uri() == f"swift+config://ref1/glance/{IMAGE_ID}"
    assert loc.redacted() == loc.uri()


@pytest.mark.parametrize(
    "location, why",
    [
        ("swift+config://nosuch/glance/x", "Credentials not found for account reference"),
        ("swift+http://host/auth/glance/x", "missing user:password"),
        ("swift+http://nokey@host/auth/glance/x", "Badly formed credentials"),
        ("swift://u:k@http://host/auth/glance/x", "one scheme"),
        ("swift+http://u:k@host/glance", "ends with /<container>/<object>"),
        ("http://u:k@host/c/o", "not a swift location"),
    ],
)
def test_a_malformed_location_is_a_bad_uri_that_shows_no_key(location, why):
    with pytest.raises(BadStoreUri) as caught:
        parse(location)
    assert caught.value.status == 400
    assert why in str(caught.value)
    assert ":k@" not in str(caught.value)


def test_redaction_hides_user_and_key():
    uri = SwiftLocation(TEMPAUTH, "glance", IMAGE_ID).uri()
    shown = swift_account.redact(uri)
    assert shown == f"swift+http://***:***@swift.example.com:8080/auth/v1.0/glance/{IMAGE_ID}"
    assert swift.SwiftStore(REFS, "ref1").redact(uri) == shown


def test_references_are_read_from_a_glance_swift_conf(tmp_path):
    path = tmp_path / "glance-swift.conf"
    path.write_text(
        "[ref1]\nauth_address = http://ks:5000/v3\nuser = proj:glance\nkey = pw\n"
        "auth_version = 3\n\n"
        "[old]\nauth_address = http://swift:8080/auth/v1.0\nuser = a:u\nkey = k\n"
    )
    refs = swift_account.references_from_file(str(path), auth_version="1")
    assert refs["ref1"] == Account("http://ks:5000/v3", "proj:glance", "pw", "3")
    assert refs["ref1"].user_domain_id == refs["ref1"].project_domain_id == "default"
    assert refs["old"].auth_version == "1"  # swift_store_auth_version when absent


def test_a_reference_without_its_key_is_a_config_error(tmp_path):
    path = tmp_path / "glance-swift.conf"
    path.write_text("[ref1]\nauth_address = http://ks:5000/v3\nuser = p:u\n")
    with pytest.raises(exceptions.ConfigError, match=r"section \[ref1\] lacks key"):
        swift_account.references_from_file(str(path), auth_version="3")


@pytest.mark.parametrize(
    "fields, why",
    [
        ({"auth_version": "4"}, "must be 1, 2 or 3"),
        ({"auth_version": "3", "user": "nouser"}, "must be 'project:user'"),
        ({"auth_address": "swift.example.com/auth"}, "must be an http or https URL"),
    ],
)
def test_an_impossible_account_is_a_config_error(fields, why):
    values = {"auth_address": "http://h/auth/v1.0", "user": "a:u", "key": "k", **fields}
    with pytest.raises(exceptions.ConfigError, match=why):
        Account(**values)


def test_keystone_v3_accounts_authenticate_with_their_project_and_domains():
    account = Account("http://ks:5000/v3", "proj:glance", "pw", "3", user_domain_id="d1")
    session = swift.keystone_session(account, {"cacert": None, "insecure": False, "timeout": 5})
    auth = session.auth
    assert auth.auth_url == "http://ks:5000/v3"
    assert (auth.project_name, auth.project_domain_id) == ("proj", "default")
    method = auth.auth_methods[0]
    assert (method.username, method.password, method.user_domain_id) == ("glance", "pw", "d1")


def test_keystone_v2_accounts_authenticate_with_their_tenant():
    account = Account("http://ks:5000/v2.0", "proj:glance", "pw", "2")
    session = swift.keystone_session(account, {"cacert": None, "insecure": True, "timeout": 5})
    assert (session.auth.tenant_name, session.auth.username) == ("proj", "glance")
    assert session.verify is False


def conf_with(**options) -> cfg.ConfigOpts:
    """A config with [glance_store] options set (the s3 tests use it too)."""
    conf = cfg.ConfigOpts()
    conf([], project="glance-lite-test")
    swift.opts.register_store_opts(conf)
    swift.opts.register_swift_store_opts(conf)
    swift.opts.register_s3_store_opts(conf)
    for name, value in options.items():
        conf.set_override(name, value, group="glance_store")
    return conf


def test_the_store_needs_an_account():
    with pytest.raises(exceptions.ConfigError, match="needs an account"):
        swift.from_conf(conf_with())


@pytest.fixture
def no_backoff(monkeypatch):
    """swiftclient retries a refused connection after 0.1 s; here at once."""
    monkeypatch.setattr(swiftclient.client, "sleep", lambda seconds: None)


def test_an_unreachable_swift_is_a_start_up_warning_not_a_failure(caplog, no_backoff):
    conf = conf_with(
        swift_store_auth_address=REFUSED,
        swift_store_user="a:u",
        swift_store_key="topsecret",
        swift_store_auth_version="1",
    )
    with caplog.at_level(logging.WARNING, logger="glance_lite.store.swift"):
        store = swift.from_conf(conf)
    assert isinstance(store, swift.SwiftStore)
    assert f"Swift at {REFUSED} is unreachable" in caplog.text
    assert "topsecret" not in caplog.text


def test_a_config_file_makes_locations_by_reference(tmp_path):
    path = tmp_path / "glance-swift.conf"
    path.write_text(f"[store2]\nauth_address = {REFUSED}\nuser = a:u\nkey = k\n")
    conf = conf_with(swift_store_config_file=str(path), default_swift_reference="store2")
    store = swift.from_conf(conf)
    assert store.account.auth_address == REFUSED
    assert store.redact("swift+config://store2/c/o") == "swift+config://store2/c/o"
    with pytest.raises(exceptions.ConfigError, match="'ref1'"):
        swift.from_conf(conf_with(swift_store_config_file=str(path)))


def test_a_missing_client_library_names_the_extra(monkeypatch):
    monkeypatch.setattr(swift, "swiftclient", None)
    with pytest.raises(exceptions.ConfigError, match=r"glance-lite\[swift\]"):
        swift.from_conf(conf_with())


def test_data_the_api_cannot_remove_is_logged_without_the_key(caplog, no_backoff):
    gone = Account(REFUSED, "a:u", "topsecret", "1")
    stores = Stores({"swift": swift.SwiftStore({"ref1": gone}, "ref1")}, "swift")
    repo = ImageRepository(None, None, stores)
    location = SwiftLocation(gone, "glance", IMAGE_ID).uri()
    with caplog.at_level(logging.ERROR, logger="glance_lite.api.repository"):
        repo._discard(stores.default, location)
    assert f"could not remove data at {swift_account.redact(location)}" in caplog.text
    assert "topsecret" not in caplog.text


@pytest.mark.parametrize(
    "location, open_",
    [
        ("swift+http://acct%3Auser:k@swift.example.com:8080/auth/v1.0/glance/x", True),
        ("swift+http://other:key@swift.example.com:8080/auth/v1.0/c/x", True),  # same Swift
        ("swift+http://a:b@169.254.169.254/latest/meta-data/c/x", False),
        ("swift+https://acct%3Auser:k@swift.example.com:8080/auth/v1.0/glance/x", False),
        ("swift+http://a:b@swift.example.com:8081/auth/v1.0/c/x", False),
        ("swift+http://no-credentials/c/x", False),
    ],
)
def test_clients_may_name_only_locations_on_a_configured_account(location, open_):
    assert swift.SwiftStore(REFS, "ref1").open_to_clients(location) is open_


class _SwiftWithoutEtag:
    """A Swift whose object PUT answers with no usable ETag (a proxy in the way that
    drops or rewrites it): what a real Swift never does, so faked here."""

    def __init__(self, etag):
        self.etag = etag
        self.objects: dict[str, bytes] = {}

    def head_container(self, container):
        return {}

    def head_object(self, container, name):
        if name not in self.objects:
            raise swiftclient.ClientException("not found", http_status=404)
        return {"content-length": str(len(self.objects[name]))}

    def put_object(self, container, name, contents, **kwargs):
        self.objects[name] = b"".join(contents)
        return self.etag

    def delete_object(self, container, name, **kwargs):
        del self.objects[name]


@pytest.mark.parametrize("etag", [None, "", "not-an-md5", '"' + "z" * 32 + '"'])
def test_a_single_object_stored_without_an_md5_etag_is_removed_and_refused(monkeypatch, etag):
    fake = _SwiftWithoutEtag(etag)
    monkeypatch.setattr(swift._Connections, "_new", lambda self: fake)
    store = swift.SwiftStore(REFS, "ref1")
    with pytest.raises(swift.BackendUnavailable, match="without an md5 ETag"):
        store.add(IMAGE_ID, [b"abc", b"def"], 6)
    assert fake.objects == {}


def test_a_single_object_takes_the_etag_swift_answers_as_its_checksum(monkeypatch):
    fake = _SwiftWithoutEtag('"' + "A" * 32 + '"')  # quoted, upper case: as some proxies
    monkeypatch.setattr(swift._Connections, "_new", lambda self: fake)
    result = swift.SwiftStore(REFS, "ref1").add(IMAGE_ID, [b"abc", b"def"], 6)
    assert (result.size, result.checksum) == (6, "a" * 32)
    assert fake.objects == {IMAGE_ID: b"abcdef"}
