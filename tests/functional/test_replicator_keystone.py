"""glance-replicator between deployments behind a real Keystone, with tokens
(`--sourcetoken`/`--targettoken`, `-t`): livecopy copies, compare finds no difference, and
a missing or wrong token is a clear error naming the server, with a non-zero exit.

The source runs the keystone flavor, the target keystone+caching (auth_token, then the
context, then the image cache); tokens come from the test Keystone for its admin user.
"""

import hashlib
from collections.abc import Iterator

import pytest
import requests

from tests.functional.keystone import Keystone, KeystoneDeployment, keystone
from tests.functional.test_replicator import assert_in_step, replicator

pytestmark = pytest.mark.functional

TIMEOUT = 30


@pytest.fixture(scope="module")
def ks() -> Keystone:
    return keystone()


@pytest.fixture(scope="module")
def token(ks) -> str:
    return ks.token(ks.admin).id


def started(ks, tmp_path_factory, name: str, flavor: str) -> KeystoneDeployment:
    workdir = tmp_path_factory.mktemp(name)
    options = {"flavor": flavor}
    if "caching" in flavor:
        options["image_cache_dir"] = str(workdir / "cache")
    return KeystoneDeployment(workdir, ks, api_options=options).start()


@pytest.fixture(scope="module")
def source(ks, token, tmp_path_factory) -> Iterator[KeystoneDeployment]:
    deployment = started(ks, tmp_path_factory, "ks-replica-source", "keystone")
    upload(deployment, token, bytes(range(256)) * 4096, name="big", is_public="true")
    upload(deployment, token, b"private bytes", name="private", **{"property-os": "linux"})
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def target(ks, tmp_path_factory) -> Iterator[KeystoneDeployment]:
    deployment = started(ks, tmp_path_factory, "ks-replica-target", "keystone+caching")
    yield deployment
    deployment.stop()


def upload(deployment: KeystoneDeployment, token: str, data: bytes, **fields) -> dict:
    headers = {
        "X-Auth-Token": token,
        "Content-Type": "application/octet-stream",
        "x-image-meta-disk-format": "raw",
        "x-image-meta-container-format": "bare",
        **{f"x-image-meta-{key}": value for key, value in fields.items()},
    }
    resp = requests.post(deployment.url + "/v1/images", headers=headers, data=data, timeout=TIMEOUT)
    assert resp.status_code == 201, resp.text
    return resp.json()["image"]


def images_of(deployment: KeystoneDeployment, token: str) -> dict[str, dict]:
    resp = requests.get(
        deployment.url + "/v1/images/detail?is_public=None",
        headers={"X-Auth-Token": token},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    return {image["id"]: image for image in resp.json()["images"]}


def at(deployment: KeystoneDeployment) -> str:
    return f"127.0.0.1:{deployment.api.port}"


def assert_same_images(source, target, token: str) -> None:
    mine, theirs = images_of(source, token), images_of(target, token)
    assert sorted(theirs) == sorted(mine)
    for image_id, image in mine.items():
        copy = theirs[image_id]
        for key in ("name", "size", "checksum", "is_public", "properties", "status"):
            assert copy[key] == image[key], key
        data = requests.get(
            f"{target.url}/v1/images/{image_id}", headers={"X-Auth-Token": token}, timeout=TIMEOUT
        ).content
        assert hashlib.md5(data).hexdigest() == image["checksum"]


def test_livecopy_with_source_and_target_tokens_then_compare(source, target, token):
    tokens = ("--sourcetoken", token, "--targettoken", token)
    done = replicator(*tokens, "livecopy", at(source), at(target))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("is being synced") == 2
    assert_same_images(source, target, token)
    assert_in_step(at(source), at(target), *tokens)


def test_one_token_for_both_servers(source, target, token, ks):
    upload(source, token, b"later bytes", name="later")
    done = replicator("-t", token, "livecopy", at(source), at(target))
    assert done.returncode == 0, done.stderr
    assert "(later) (11 bytes) is being synced" in done.stderr
    assert_same_images(source, target, token)
    assert_in_step(at(source), at(target), "-t", token)


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ((), "source"),
        (("--sourcetoken", "not-a-token"), "source"),
        (("--sourcetoken", "{token}"), "target"),
        (("--sourcetoken", "{token}", "--targettoken", "gAAAAABnot-a-token"), "target"),
        (("-t", "not-a-token"), "source"),
    ],
)
def test_a_missing_or_wrong_token_is_a_clear_error_naming_the_server(
    source, target, token, options, refused
):
    options = tuple(option.format(token=token) for option in options)
    for command in ("livecopy", "compare"):
        done = replicator(*options, command, at(source), at(target))
        assert done.returncode == 1, done.stderr
        server = at(source) if refused == "source" else at(target)
        option = "--sourcetoken" if refused == "source" else "--targettoken"
        assert f"ERROR: The {refused} glance server {server} refused the token (401" in done.stderr
        assert option in done.stderr
        assert "Traceback" not in done.stderr


def test_size_and_dump_name_the_server_that_refused_the_token(source, tmp_path):
    # size counts a server with the target's token, as Glance's tool: none given here
    size = replicator("--sourcetoken", "not-used", "size", at(source))
    assert size.returncode == 1
    assert f"ERROR: The glance server {at(source)} refused the token (401" in size.stderr
    assert "--targettoken" in size.stderr
    dump = replicator("--sourcetoken", "not-a-token", "dump", at(source), str(tmp_path))
    assert dump.returncode == 1
    assert f"ERROR: The source glance server {at(source)} refused the token (401" in dump.stderr
    assert "Traceback" not in size.stderr + dump.stderr
