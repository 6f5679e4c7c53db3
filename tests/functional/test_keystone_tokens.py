"""The keystone flavors' tokens against a real Keystone: missing, invalid, expired during
an upload; Keystone unreachable; the services' own credentials wrong.

Every deployment here is a real glance-registry and glance-api in the keystone flavor
(tests/functional/keystone.py); tokens come from the test Keystone by password.
"""

import datetime
import time
from collections.abc import Iterator

import pytest
import requests

from tests.functional.conftest import md5
from tests.functional.keystone import Keystone, KeystoneDeployment, keystone

pytestmark = pytest.mark.functional

TIMEOUT = 30
UPLOAD = {
    "x-image-meta-disk-format": "raw",
    "x-image-meta-container-format": "bare",
    "Content-Type": "application/octet-stream",
}
# no Keystone listens there (a port of the discard service, never served here)
DEAD_KEYSTONE = "http://127.0.0.1:9/v3"


@pytest.fixture(scope="module")
def ks() -> Keystone:
    return keystone()


@pytest.fixture(scope="module")
def plain(ks, tmp_path_factory) -> Iterator[KeystoneDeployment]:
    """Both services in the keystone flavor, the api forwarding the caller's token."""
    deployment = KeystoneDeployment(tmp_path_factory.mktemp("ks-plain"), ks).start()
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def with_credentials(ks, tmp_path_factory) -> Iterator[KeystoneDeployment]:
    """The same, the api also holding a token of its own (admin_user, the service account)."""
    options = {
        "auth_strategy": "keystone",
        "auth_url": ks.url,
        "admin_user": ks.service.user,
        "admin_password": ks.service.password,
        "admin_tenant_name": ks.service.project,
    }
    workdir = tmp_path_factory.mktemp("ks-creds")
    deployment = KeystoneDeployment(workdir, ks, api_options=options).start()
    yield deployment
    deployment.stop()


def images(deployment: KeystoneDeployment, token: str | None, path: str = "/v1/images"):
    headers = {"X-Auth-Token": token} if token is not None else {}
    return requests.get(deployment.url + path, headers=headers, timeout=TIMEOUT)


def assert_keystone_401(resp: requests.Response, ks: Keystone) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{ks.url}"'


@pytest.mark.parametrize("token", [None, "", "not-a-token", "gAAAAABnot-a-fernet-token"])
def test_a_missing_or_invalid_token_is_401_with_keystones_www_authenticate(plain, ks, token):
    assert_keystone_401(images(plain, token), ks)
    assert_keystone_401(images(plain, token, "/v1/images/detail"), ks)


def test_a_revoked_token_is_401(plain, ks):
    token = ks.token(ks.demo)
    assert images(plain, token.id).status_code == 200
    ks.revoke(token, by=ks.token(ks.admin))
    # the api's auth_token remembers a token it checked for token_cache_time; a new
    # deployment would ask at once. Either way the registry is asked as well:
    fresh = KeystoneDeployment(plain.workdir / "fresh", ks).start()
    try:
        assert_keystone_401(images(fresh, token.id), ks)
    finally:
        fresh.stop()


def test_the_registry_checks_the_token_again(plain, ks):
    registry = plain.registry.url
    no_token = requests.get(f"{registry}/images", timeout=TIMEOUT)
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"] == f'Keystone uri="{ks.url}"'
    forged = requests.get(
        f"{registry}/images",
        headers={"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Tenant-Id": "x"},
        timeout=TIMEOUT,
    )
    assert forged.status_code == 401
    good = requests.get(
        f"{registry}/images", headers={"X-Auth-Token": ks.token(ks.demo).id}, timeout=TIMEOUT
    )
    assert good.status_code == 200


def test_identity_headers_a_caller_sends_are_not_believed(plain, ks):
    """auth_token replaces X-Roles & co with what Keystone says of the token."""
    demo = ks.token(ks.demo)
    forged = {
        "X-Auth-Token": demo.id,
        "X-Roles": "admin",
        "X-Tenant-Id": "someone-else",
        "X-Project-Id": "someone-else",
        "X-Identity-Status": "Confirmed",
    }
    resp = requests.post(
        plain.url + "/v1/images",
        headers={**forged, "x-image-meta-name": "forged", "x-image-meta-is-public": "true"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 403, resp.text  # publicize_image is admin only
    resp = requests.post(
        plain.url + "/v1/images", headers={**forged, "x-image-meta-name": "mine"}, timeout=TIMEOUT
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["image"]["owner"] == demo.project_id


def slow_body(data: bytes, until: float) -> Iterator[bytes]:
    """The first half at once, the second at time `until` (a chunked upload)."""
    half = len(data) // 2
    yield data[:half]
    time.sleep(max(0.0, until - time.time()))
    yield data[half:]


def upload_while_token_expires(deployment, ks) -> tuple[requests.Response, str]:
    """An upload whose token expires between its first and second half: 6 s to live,
    ample for the api and the registry to check it as the upload begins, even on a busy
    machine; the second half goes 1 s after its end."""
    token = ks.short_token(ks.demo, seconds=6)
    expires = datetime.datetime.fromisoformat(token.expires_at.replace("Z", "+00:00"))
    data = b"x" * (1 << 20)
    resp = requests.post(
        deployment.url + "/v1/images",
        headers={**UPLOAD, "X-Auth-Token": token.id, "x-image-meta-name": "long-upload"},
        data=slow_body(data, until=expires.timestamp() + 1.0),
        timeout=60,
    )
    assert images(deployment, token.id).status_code == 401  # it did expire
    return resp, md5(data)


def test_a_token_that_expires_during_an_upload_is_401_and_its_data_is_removed(plain, ks):
    """As Glance: the upload was let in with a valid token, but the registry refuses the
    same token when the image is to become active, so the client gets 401 and the bytes
    written are removed. The image stays `saving`, which no call with that token may
    change (Glance's too)."""
    before = set(plain.datadir.iterdir()) if plain.datadir.exists() else set()
    resp, _ = upload_while_token_expires(plain, ks)
    assert_keystone_401(resp, ks)
    assert "the token may have expired during file upload" in resp.text
    after = {p for p in plain.datadir.iterdir() if not p.name.startswith(".")}
    assert after <= before
    fresh = ks.token(ks.demo).id
    listed = images(plain, fresh, "/v1/images/detail").json()["images"]
    left = [i for i in listed if i["name"] == "long-upload" and i["status"] == "saving"]
    assert len(left) == 1
    gone = requests.delete(
        f"{plain.url}/v1/images/{left[0]['id']}", headers={"X-Auth-Token": fresh}, timeout=TIMEOUT
    )
    assert gone.status_code == 200, gone.text


def test_with_the_apis_own_credentials_a_token_expiring_during_an_upload_is_taken(
    with_credentials, ks
):
    """glance-api sends its own token as X-Service-Token beside the caller's: the
    registry's auth_token then takes the caller's token although it expired since."""
    resp, checksum = upload_while_token_expires(with_credentials, ks)
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert image["status"] == "active"
    assert image["checksum"] == checksum
    later = requests.head(
        f"{with_credentials.url}/v1/images/{image['id']}",
        headers={"X-Auth-Token": ks.token(ks.demo).id},
        timeout=TIMEOUT,
    )
    assert later.headers["x-image-meta-status"] == "active"


def seen(resp: requests.Response) -> tuple[int, str, dict[str, str]]:
    """What a test checks of an answer, kept instead of the response: a response alive
    as its server stops holds its kept-alive connection open, and a stopping server gives
    an idle connection 2 s to bring another request."""
    return resp.status_code, resp.text, dict(resp.headers)


@pytest.mark.parametrize("side", ["api", "registry"])
def test_keystone_unreachable_is_503_never_500_never_access(ks, tmp_path, side):
    """Keystone unreachable from glance-api, or from glance-registry alone (whose 503
    glance-api passes on)."""
    dead = {"www_authenticate_uri": DEAD_KEYSTONE, "auth_url": DEAD_KEYSTONE}
    deployment = KeystoneDeployment(
        tmp_path, ks, registry_authtoken=dead, api_authtoken=dead if side == "api" else None
    ).start()
    try:
        token = ks.token(ks.demo).id
        status, text, headers = seen(images(deployment, token))
        created, _, _ = seen(
            requests.post(
                deployment.url + "/v1/images",
                headers={"X-Auth-Token": token, "x-image-meta-name": "no"},
                timeout=TIMEOUT,
            )
        )
        anonymous = images(deployment, None).status_code  # no token: no need to ask
    finally:
        deployment.stop()
    assert status == 503, text
    if side == "api":
        assert "Keystone could not be reached" in text
    else:
        assert "The Keystone service is temporarily unavailable" in text
    assert "Retry-After" in headers
    assert created == 503
    assert anonymous == 401
    assert "Traceback" not in deployment.api.log()


def test_wrong_service_credentials_are_503_naming_the_options(ks, tmp_path):
    deployment = KeystoneDeployment(
        tmp_path, ks, api_authtoken={"password": "wrong-password"}
    ).start()
    try:
        status, text, _ = seen(images(deployment, ks.token(ks.demo).id))
    finally:
        deployment.stop()
    assert status == 503, text
    assert "[keystone_authtoken]" in text


def test_wrong_admin_user_credentials_are_503_naming_them(ks, tmp_path):
    options = {
        "auth_url": ks.url,
        "admin_user": ks.service.user,
        "admin_password": "wrong-password",
        "admin_tenant_name": ks.service.project,
    }
    deployment = KeystoneDeployment(tmp_path, ks, api_options=options).start()
    try:
        status, text, _ = seen(images(deployment, ks.token(ks.demo).id))
    finally:
        deployment.stop()
    assert status == 503, text
    assert f"Keystone refused the credentials of admin_user {ks.service.user}" in text
