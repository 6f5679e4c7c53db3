"""The v1 image flow driven by the real `curl` binary against real glance-api/registry.

`curl -T file` sends a Content-Length (and `Expect: 100-continue` above 1 MiB), `curl -T -`
from a pipe sends a chunked body, `curl -I` is HEAD, `curl -o` saves a download.
"""

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.functional.conftest import md5

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed"),
]

RAW_BARE = ["-H", "x-image-meta-disk_format: raw", "-H", "x-image-meta-container_format: bare"]
OCTET = ["-H", "Content-Type: application/octet-stream"]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names, from the final response (after any 100)
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def meta(self) -> dict[str, str]:
        prefix = "x-image-meta-"
        return {k[len(prefix) :]: v for k, v in self.headers.items() if k.startswith(prefix)}


class Curl:
    def __init__(self, url: str, workdir: Path):
        self.url = url
        self.workdir = workdir

    def __call__(self, path: str, *args: str, stdin: bytes | None = None) -> Reply:
        """curl <args> <api url + path>; the body is saved with -o unless args say otherwise."""
        tag = uuid.uuid4().hex
        head, body = self.workdir / f"{tag}.head", self.workdir / f"{tag}.body"
        command = ["curl", "-sS", "--max-time", "30", "-D", str(head)]
        if "-o" not in args:
            command += ["-o", str(body)]
        result = subprocess.run(
            [*command, *args, self.url + path],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        status, headers = parse_head(head.read_text(encoding="latin-1"))
        return Reply(status, headers, body.read_bytes() if body.exists() else b"")


def parse_head(text: str) -> tuple[int, dict[str, str]]:
    """The status and headers of the last response in a `curl -D` dump."""
    blocks = [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    lines = blocks[-1].strip().split("\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


@pytest.fixture
def curl(default_api, tmp_path) -> Curl:
    return Curl(default_api.url, tmp_path)


def write_blob(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / f"{uuid.uuid4().hex}.raw"
    path.write_bytes(data)
    return path, data


def upload(curl: Curl, tmp_path: Path, name: str, size: int = 5_000, *headers: str):
    path, data = write_blob(tmp_path, size)
    reply = curl("/v1/images", "-X", "POST", "-T", str(path), *OCTET, *RAW_BARE, *headers,
                 "-H", f"x-image-meta-name: {name}")  # fmt: skip
    assert reply.status == 201, reply.body
    return reply.json()["image"], data


def test_curl_uploads_a_file_with_T_and_image_meta_headers(curl, default_api, tmp_path, uid):
    path, data = write_blob(tmp_path, 2_100_000)  # above 1 MiB: curl sends Expect: 100-continue
    reply = curl(
        "/v1/images",
        "-X",
        "POST",
        "-T",
        str(path),
        *OCTET,
        "-H",
        f"X-Image-Meta-Name: {uid}",
        "-H",
        "X-Image-Meta-Disk-Format: qcow2",
        "-H",
        "x-image-meta-container_format: bare",
        "-H",
        "X-Image-Meta-Min-Ram: 512",
        "-H",
        "X-Image-Meta-Property-Distro-Name: Ubuntu",
    )
    assert reply.status == 201, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    image = reply.json()["image"]
    assert (image["status"], image["size"], image["checksum"]) == ("active", len(data), md5(data))
    assert (image["name"], image["disk_format"], image["container_format"]) == (
        uid,
        "qcow2",
        "bare",
    )
    assert image["min_ram"] == 512
    assert image["properties"] == {"distro_name": "Ubuntu"}
    assert "location" not in image
    assert reply.headers["etag"] == md5(data)
    assert reply.headers["location"] == f"{default_api.url}/v1/images/{image['id']}"


def test_curl_uploads_a_chunked_body_from_a_pipe(curl, uid):
    data = os.urandom(300_000)
    reply = curl("/v1/images", "-X", "POST", "-T", "-", *OCTET, *RAW_BARE,
                 "-H", f"x-image-meta-name: {uid}", stdin=data)  # fmt: skip
    assert reply.status == 201, reply.body
    image = reply.json()["image"]
    assert (image["status"], image["size"], image["checksum"]) == ("active", len(data), md5(data))


def test_curl_upload_without_content_type_is_refused_and_kills_the_image(curl, tmp_path, uid):
    path, _ = write_blob(tmp_path, 2_000)
    reply = curl("/v1/images", "-X", "POST", "-T", str(path), *RAW_BARE,
                 "-H", f"x-image-meta-name: {uid}")  # fmt: skip
    assert reply.status == 400
    assert b"Content-Type must be application/octet-stream" in reply.body
    listed = curl(f"/v1/images/detail?name={uid}&is_public=none&changes-since=2000-01-01T00:00:00")
    assert [(i["status"], i["size"]) for i in listed.json()["images"]] == [("killed", 0)]


def test_curl_reserves_then_uploads_with_put(curl, tmp_path, uid):
    reply = curl("/v1/images", "-X", "POST", *RAW_BARE, "-H", f"x-image-meta-name: {uid}")
    assert reply.status == 201, reply.body
    image = reply.json()["image"]
    assert (image["status"], image["size"], image["checksum"]) == ("queued", 0, None)
    assert "etag" not in reply.headers

    path, data = write_blob(tmp_path, 1_500_000)
    put = curl(f"/v1/images/{image['id']}", "-T", str(path), *OCTET)
    assert put.status == 200, put.body
    uploaded = put.json()["image"]
    assert (uploaded["status"], uploaded["size"]) == ("active", len(data))
    assert uploaded["checksum"] == put.headers["etag"] == md5(data)

    again = curl(f"/v1/images/{image['id']}", "-T", str(path), *OCTET)
    assert again.status == 409
    assert b"Cannot upload to an unqueued image" in again.body


def test_curl_head_returns_the_metadata_headers(curl, tmp_path, uid):
    image, data = upload(curl, tmp_path, uid, 5_000, "-H", "x-image-meta-property-Os: linux")
    reply = curl(f"/v1/images/{image['id']}", "-I")
    assert reply.status == 200
    assert reply.headers["content-length"] == "0"  # (curl -I writes the headers as its output)
    assert reply.headers["content-type"] == "text/html; charset=UTF-8"
    assert reply.headers["etag"] == md5(data)
    meta = reply.meta()
    assert meta["id"] == image["id"]
    assert (meta["name"], meta["status"], meta["size"]) == (uid, "active", str(len(data)))
    assert (meta["disk_format"], meta["container_format"]) == ("raw", "bare")
    assert (meta["is_public"], meta["protected"], meta["deleted"]) == ("False", "False", "False")
    assert meta["checksum"] == md5(data)
    assert meta["property-os"] == "linux"
    assert not {"deleted_at", "owner", "virtual_size", "location"} & set(meta)

    missing = curl(f"/v1/images/{uuid.uuid4()}", "-I")
    assert missing.status == 404


def test_curl_head_of_a_queued_image_has_no_checksum(curl, uid):
    image = curl("/v1/images", "-X", "POST", "-H", f"x-image-meta-name: {uid}").json()["image"]
    reply = curl(f"/v1/images/{image['id']}", "-I")
    assert reply.status == 200
    assert reply.meta()["status"] == "queued"
    assert reply.meta()["size"] == "0"
    assert "checksum" not in reply.meta()
    assert "etag" not in reply.headers


def test_curl_downloads_with_o_and_the_md5_matches(curl, tmp_path, uid):
    image, data = upload(curl, tmp_path, uid, 1_234_567)
    target = tmp_path / "download"
    reply = curl(f"/v1/images/{image['id']}", "-o", str(target))
    assert reply.status == 200
    assert md5(target.read_bytes()) == md5(data) == reply.headers["etag"]
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["content-length"] == str(len(data))
    assert reply.meta()["checksum"] == md5(data)


def test_curl_lists_brief_and_detailed_with_filters(curl, tmp_path, uid):
    first, _ = upload(curl, tmp_path, f"{uid}-1", 100, "-H", f"x-image-meta-property-batch: {uid}")
    second, _ = upload(curl, tmp_path, f"{uid}-2", 200, "-H", f"x-image-meta-property-batch: {uid}",
                       "-H", "x-image-meta-is_public: true")  # fmt: skip

    brief = curl(f"/v1/images?property-batch={uid}&is_public=none&sort_key=size&sort_dir=asc")
    assert brief.status == 200
    assert [i["id"] for i in brief.json()["images"]] == [first["id"], second["id"]]
    assert set(brief.json()["images"][0]) == {
        "id",
        "name",
        "size",
        "disk_format",
        "container_format",
        "checksum",
    }
    detail = curl(f"/v1/images/detail?property-batch={uid}&size_min=150")
    assert [(i["name"], i["is_public"]) for i in detail.json()["images"]] == [(f"{uid}-2", True)]
    assert detail.json()["images"][0]["properties"] == {"batch": uid}


def test_curl_deletes_and_the_image_is_gone(curl, tmp_path, uid):
    image, _ = upload(curl, tmp_path, uid)
    url = f"/v1/images/{image['id']}"
    reply = curl(url, "-X", "DELETE")
    assert (reply.status, reply.body) == (200, b"")

    head = curl(url, "-I")
    assert (head.status, head.meta()["status"], head.meta()["deleted"]) == (200, "deleted", "True")
    assert "deleted_at" in head.meta()
    get = curl(url)
    assert get.status == 404
    assert f"Image {image['id']} is not active".encode() in get.body
    again = curl(url, "-X", "DELETE")
    assert again.status == 404
    assert f"Image {image['id']} not found.".encode() in again.body
    listed = curl(f"/v1/images?name={uid}&is_public=none")
    assert listed.json() == {"images": []}


def test_curl_protected_image_refuses_delete(curl, tmp_path, uid):
    image, _ = upload(curl, tmp_path, uid, 10, "-H", "x-image-meta-protected: True")
    url = f"/v1/images/{image['id']}"
    refused = curl(url, "-X", "DELETE")
    assert refused.status == 403
    assert b"Image is protected" in refused.body
    assert curl(url, "-I").meta()["status"] == "active"
    unprotect = curl(url, "-X", "PUT", "-H", "x-image-meta-protected: False")
    assert unprotect.status == 200
    assert curl(url, "-X", "DELETE").status == 200


def test_curl_manages_members(curl, uid):
    image = curl("/v1/images", "-X", "POST", "-H", f"x-image-meta-name: {uid}").json()["image"]
    members = f"/v1/images/{image['id']}/members"
    assert curl(f"{members}/{uid}-t1", "-X", "PUT").status == 204
    share = ["-X", "PUT", "-H", "Content-Type: application/json"]
    assert (
        curl(f"{members}/{uid}-t2", *share, "-d", '{"member": {"can_share": true}}').status == 204
    )
    assert curl(members).json() == {
        "members": [
            {"member_id": f"{uid}-t1", "can_share": False},
            {"member_id": f"{uid}-t2", "can_share": True},
        ]
    }
    assert curl(f"/v1/shared-images/{uid}-t2").json() == {
        "shared_images": [{"image_id": image["id"], "can_share": True}]
    }
    assert curl(f"{members}/{uid}-t1", "-X", "DELETE").status == 204
    gone = curl(f"{members}/{uid}-t1", "-X", "DELETE")
    assert gone.status == 404
    assert b"Membership could not be found." in gone.body
    replaced = curl(members, *share, "-d", json.dumps({"memberships": [{"member_id": "x"}]}))
    assert replaced.status == 204
    assert curl(members).json() == {"members": [{"member_id": "x", "can_share": False}]}


def test_curl_bad_disk_format_is_a_400_naming_it(curl, tmp_path, uid):
    path, _ = write_blob(tmp_path, 2_000_000)
    reply = curl("/v1/images", "-X", "POST", "-T", str(path), *OCTET,
                 "-H", "x-image-meta-disk_format: floppy", "-H", f"x-image-meta-name: {uid}",
                 "-H", "Accept:")  # fmt: skip
    assert reply.status == 400
    assert reply.headers["content-type"].startswith("text/plain")
    assert b"Invalid disk format 'floppy' for image." in reply.body
    assert curl(f"/v1/images?name={uid}&is_public=none").json() == {"images": []}


def test_curl_relayed_registry_error_embeds_the_plain_text_page(curl):
    html = curl("/v1/images?limit=abc")
    assert html.status == 400
    assert b"limit param must be an integer" in html.body
    assert b"&lt;html&gt;" not in html.body
    plain = curl("/v1/images?limit=abc", "-H", "Accept:")
    assert plain.status == 400
    assert b"limit param must be an integer" in plain.body
    assert b"<html>" not in plain.body and b"400 Bad Request   400 Bad Request" not in plain.body
