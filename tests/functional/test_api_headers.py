"""Image metadata in headers: HEAD responses and the parsing of `x-image-meta-*`
request headers, including python-glanceclient's underscore
spellings that eventlet drops and glance-lite's server recovers."""

import http.client
import re
import uuid

import pytest
import requests

pytestmark = pytest.mark.functional

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
ALWAYS = {
    "x-image-meta-id",
    "x-image-meta-status",
    "x-image-meta-size",
    "x-image-meta-min_disk",
    "x-image-meta-min_ram",
    "x-image-meta-is_public",
    "x-image-meta-protected",
    "x-image-meta-deleted",
    "x-image-meta-created_at",
    "x-image-meta-updated_at",
}


def meta_of(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-image-meta-")}


def utf8(header_value: str) -> str:
    """A header value as requests hands it back (latin-1 text) read as the UTF-8 sent."""
    return header_value.encode("latin-1").decode("utf-8")


def raw_post(client, headers: list[tuple[str, str | bytes]], path="/v1/images"):
    """POST with repeated or odd headers http.client sends exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    conn.putrequest("POST", path, skip_accept_encoding=True)
    for name, value in [*headers, ("Content-Length", "0")]:
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, body


# --- HEAD ---------------------------------------------------------------------------


def test_head_of_a_reserved_image_omits_null_fields(client):
    image = client.reserve(name="queued-one")
    resp = client.head(f"/images/{image['id']}")
    assert resp.status_code == 200
    meta = meta_of(resp.headers)
    assert set(meta) == ALWAYS | {"x-image-meta-name"}
    assert meta["x-image-meta-id"] == image["id"]
    assert meta["x-image-meta-status"] == "queued"
    assert meta["x-image-meta-size"] == "0"
    assert meta["x-image-meta-is_public"] == "False"
    assert meta["x-image-meta-protected"] == "False"
    assert meta["x-image-meta-deleted"] == "False"
    assert TIMESTAMP.match(meta["x-image-meta-created_at"])
    assert TIMESTAMP.match(meta["x-image-meta-updated_at"])
    assert "ETag" not in resp.headers
    assert resp.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert resp.headers["Content-Length"] == "0"
    assert resp.content == b""


def test_head_of_an_active_image_has_checksum_etag_and_properties(client):
    image = client.upload(
        b"some data",
        name="active-one",
        is_public="true",
        protected="yes",
        min_ram="512",
        properties={"Distro-Name": "Ubuntu", "ARCH": "x86_64"},
    )
    meta = client.meta(image["id"])
    assert meta["x-image-meta-checksum"] == image["checksum"]
    assert meta["etag"] == image["checksum"]
    assert meta["x-image-meta-disk_format"] == "raw"
    assert meta["x-image-meta-container_format"] == "bare"
    assert meta["x-image-meta-is_public"] == "True"
    assert meta["x-image-meta-protected"] == "True"
    assert meta["x-image-meta-min_ram"] == "512"
    assert meta["x-image-meta-size"] == "9"
    assert meta["x-image-meta-property-distro_name"] == "Ubuntu"
    assert meta["x-image-meta-property-arch"] == "x86_64"
    assert image["properties"] == {"distro_name": "Ubuntu", "arch": "x86_64"}
    for absent in ("owner", "deleted_at", "virtual_size", "location", "location_data"):
        assert f"x-image-meta-{absent}" not in meta


def test_header_names_arrive_capitalised_per_word(client):
    image = client.upload(b"x", properties={"distro_name": "d"})
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    conn.request("HEAD", f"/v1/images/{image['id']}")
    names = [name for name, _ in conn.getresponse().getheaders()]
    conn.close()
    for name in ("X-Image-Meta-Disk_format", "X-Image-Meta-Is_public", "Etag"):
        assert name in names, names
    assert "X-Image-Meta-Property-Distro_name" in names


def test_an_empty_property_value_is_null_in_json_and_has_no_header(client):
    image = client.reserve(properties={"empty": "", "full": "yes"})
    assert image["properties"] == {"empty": None, "full": "yes"}
    meta = client.meta(image["id"])
    assert "x-image-meta-property-empty" not in meta
    assert meta["x-image-meta-property-full"] == "yes"


def test_head_of_a_missing_image_is_404(client):
    image_id = str(uuid.uuid4())
    resp = client.head(f"/images/{image_id}")
    assert resp.status_code == 404
    get = client.get(f"/images/{image_id}")
    assert f"Image with identifier {image_id} not found" in get.text


def test_stored_control_characters_cannot_inject_headers(client):
    image = client.reserve(name="plain")
    registry = client.deployment.registry.url
    resp = requests.put(
        f"{registry}/images/{image['id']}",
        json={
            "image": {
                "name": "evil\r\nX-Injected: 1",
                "properties": {"p": "a\nX-Also: 2", "has space": "v", "MixedCase": "m"},
            }
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    head = client.head(f"/images/{image['id']}")
    assert head.status_code == 200
    assert "X-Injected" not in head.headers
    assert "X-Also" not in head.headers
    assert head.headers["x-image-meta-name"] == "evil  X-Injected: 1"
    assert head.headers["x-image-meta-property-p"] == "a X-Also: 2"
    names = [name.lower() for name in head.headers]
    assert "x-image-meta-property-mixedcase" in names
    assert not [n for n in names if "has" in n]
    detail = client.get(
        "/images/detail", params={"name": "evil\r\nX-Injected: 1", "is_public": "none"}
    ).json()
    assert detail["images"][0]["properties"]["has space"] == "v"


# --- parsing ------------------------------------------------------------------------


def test_header_names_are_case_insensitive_and_dashes_become_underscores(client):
    resp = client.create(
        headers={
            "X-IMAGE-META-NAME": "loud",
            "X-Image-Meta-Disk-Format": "qcow2",
            "x-image-meta-CONTAINER-FORMAT": "ovf",
            "X-Image-Meta-Min-Ram": "64",
            "X-Image-Meta-Property-Kernel-ID": "k1",
        }
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert (image["name"], image["disk_format"], image["container_format"]) == (
        "loud",
        "qcow2",
        "ovf",
    )
    assert image["min_ram"] == 64
    assert image["properties"] == {"kernel_id": "k1"}


def test_glanceclient_underscore_spellings_are_recovered(client):
    resp = client.create(
        headers={
            "x-image-meta-name": "underscored",
            "x-image-meta-disk_format": "vmdk",
            "x-image-meta-container_format": "ova",
            "x-image-meta-min_disk": "3",
            "x-image-meta-is_public": "True",
            "x-image-meta-property-distro_name": "fedora",
        }
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert image["disk_format"] == "vmdk"
    assert image["container_format"] == "ova"
    assert image["min_disk"] == 3
    assert image["is_public"] is True
    assert image["properties"] == {"distro_name": "fedora"}


def test_underscore_purge_props_header_is_recovered(client):
    image = client.reserve(properties={"keep": "1"})
    resp = client.update(
        image["id"], properties={"new": "2"}, headers={"x-glance-registry-purge_props": "false"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["properties"] == {"keep": "1", "new": "2"}


@pytest.mark.parametrize(
    ("dashed", "underscored"),
    [
        ("x-image-meta-disk-format", "x-image-meta-disk_format"),
        ("x-image-meta-property-distro-name", "x-image-meta-property-distro_name"),
    ],
)
def test_both_spellings_with_different_values_are_400(client, dashed, underscored):
    image_id = str(uuid.uuid4())
    for order in ((dashed, "raw", underscored, "qcow2"), (underscored, "qcow2", dashed, "raw")):
        status, body = raw_post(
            client,
            [
                ("x-image-meta-id", image_id),
                ("x-image-meta-container-format", "bare"),
                (order[0], order[1]),
                (order[2], order[3]),
            ],
        )
        assert status == 400, body
        assert underscored.split("-")[-1].replace("_", "-") in body
    assert client.head(f"/images/{image_id}").status_code == 404


def test_both_spellings_with_the_same_value_are_accepted(client):
    status, body = raw_post(
        client,
        [
            ("x-image-meta-disk-format", "iso"),
            ("x-image-meta-disk_format", "iso"),
            ("x-image-meta-property-distro-name", "arch"),
            ("x-image-meta-property-distro_name", "arch"),
        ],
    )
    assert status == 201, body
    assert '"disk_format": "iso"' in body
    assert '"properties": {"distro_name": "arch"}' in body


def test_a_repeated_header_is_comma_joined(client):
    status, body = raw_post(
        client, [("X-Image-Meta-Disk-Format", "raw"), ("X-Image-Meta-Disk-Format", "qcow2")]
    )
    assert status == 400
    assert "Invalid disk format 'raw,qcow2' for image." in body


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({"x-image-meta-bogus": "1"}, "Bad header: x-image-meta-bogus"),
        ({"X-Image-Meta-Bogus-Field": "1"}, "Bad header: x-image-meta-bogus-field"),
        (
            {"x-image-meta-min-ram": "abc"},
            "Invalid value 'abc' for parameter 'min_ram': Cannot convert image min_ram 'abc' "
            "to an integer.",
        ),
        (
            {"x-image-meta-min-ram": "-1"},
            "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value.",
        ),
        (
            {"x-image-meta-min-disk": "1.5"},
            "Invalid value '1.5' for parameter 'min_disk': Cannot convert image min_disk",
        ),
        ({"x-image-meta-size": "ten"}, "Cannot convert image size 'ten' to an integer."),
        ({"x-image-meta-size": ""}, "Cannot convert image size '' to an integer."),
        ({"x-image-meta-virtual-size": "-5"}, "Cannot be a negative value."),
        (
            {"x-image-meta-min-ram": "2147483648"},
            "'min_ram' value out of range, must not exceed 2147483647.",
        ),
        (
            {"x-image-meta-min-disk": "2147483648"},
            "'min_disk' value out of range, must not exceed 2147483647.",
        ),
        ({"x-image-meta-disk-format": "floppy"}, "Invalid disk format 'floppy' for image."),
        ({"x-image-meta-disk-format": ""}, "Invalid disk format 'None' for image."),
        (
            {"x-image-meta-container-format": "zip"},
            "Invalid container format 'zip' for image.",
        ),
        (
            {"x-image-meta-disk-format": "aki", "x-image-meta-container-format": "bare"},
            "Invalid mix of disk and container formats.",
        ),
        (
            {"x-image-meta-disk-format": "raw", "x-image-meta-container-format": "ami"},
            "Invalid mix of disk and container formats.",
        ),
        ({"x-image-meta-name": "n" * 256}, "Image name too long: 256"),
        (
            {"x-image-meta-checksum": "c" * 33},
            f"Invalid checksum '{'c' * 33}': can't exceed 32 characters",
        ),
        ({"x-image-meta-created-at": "yesterday"}, "Invalid time format for created_at."),
        ({"x-image-meta-updated-at": "1899-12-31T00:00:00"}, "Invalid time format for updated_at."),
        ({"x-image-meta-deleted-at": "2016-13-45T00:00:00"}, "Invalid time format for deleted_at."),
    ],
)
def test_bad_metadata_headers_are_400_with_glance_texts(client, headers, text):
    image_id = str(uuid.uuid4())
    resp = client.create(headers={"x-image-meta-id": image_id, **headers})
    assert resp.status_code == 400, resp.text
    assert text in resp.text
    assert client.head(f"/images/{image_id}").status_code == 404
    # the same rules on update
    image = client.reserve()
    put = client.update(image["id"], headers=headers)
    assert put.status_code == 400, put.text
    assert text in put.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("1", True), ("t", True), ("TRUE", True), ("On", True), ("y", True), ("yes", True)],
        *[("0", False), ("false", False), ("maybe", False), ("", False), ("no", False)],
    ],
)
def test_booleans_use_the_permissive_parser(client, value, expected):
    image = client.reserve(is_public=value, protected=value)
    assert image["is_public"] is expected
    assert image["protected"] is expected
    if expected:
        client.update(image["id"], protected="false")


def test_boundary_values_are_accepted(client):
    image = client.reserve(
        name="n" * 255, min_ram=2147483647, min_disk=0, checksum="c" * 32, virtual_size="None"
    )
    assert len(image["name"]) == 255
    assert image["min_ram"] == 2147483647
    assert image["virtual_size"] is None
    assert image["checksum"] == "c" * 32
    empty_virtual = client.reserve(virtual_size="")
    assert empty_virtual["virtual_size"] is None


def test_amazon_formats_fill_in_the_other_side(client):
    kernel = client.reserve(disk_format="aki")
    assert kernel["container_format"] == "aki"
    ramdisk = client.reserve(container_format="ari")
    assert ramdisk["disk_format"] == "ari"


def test_timestamps_on_create_are_honoured_and_normalised(client):
    image = client.reserve(created_at="2016-05-10T21:35:15", deleted_at="")
    assert image["created_at"] == "2016-05-10T21:35:15.000000"
    offset = client.reserve(created_at="2016-05-10T23:35:15+02:00")
    assert offset["created_at"] == "2016-05-10T21:35:15.000000"
    meta = client.meta(offset["id"])
    assert meta["x-image-meta-created_at"] == "2016-05-10T21:35:15.000000"


def test_timestamps_on_update_are_ignored(client):
    image = client.reserve()
    resp = client.update(image["id"], created_at="2001-01-01T00:00:00")
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["created_at"] == image["created_at"]


def test_unicode_name_and_property_values_round_trip(client):
    name = "café ☃ 東京"
    value = "ünïcødé ☂ 雪"
    resp = client.create(
        headers={
            "x-image-meta-name": name.encode(),
            "x-image-meta-property-motto": value.encode(),
        }
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert image["name"] == name
    assert image["properties"] == {"motto": value}
    meta = client.meta(image["id"])
    assert utf8(meta["x-image-meta-name"]) == name
    assert utf8(meta["x-image-meta-property-motto"]) == value
    listed = client.get("/images", params={"name": name, "is_public": "none"}).json()["images"]
    assert [i["id"] for i in listed] == [image["id"]]


def test_name_length_counts_characters_not_bytes(client):
    name = "é" * 255  # 510 bytes
    resp = client.create(headers={"x-image-meta-name": name.encode()})
    assert resp.status_code == 201, resp.text
    assert resp.json()["image"]["name"] == name
    too_long = client.create(headers={"x-image-meta-name": ("é" * 256).encode()})
    assert too_long.status_code == 400
    assert "Image name too long: 256" in too_long.text


def test_header_bytes_that_are_not_utf8_are_400(client):
    resp = client.create(headers={"x-image-meta-name": b"caf\xe9"})
    assert resp.status_code == 400
    assert "x-image-meta-name is not valid UTF-8" in resp.text
    prop = client.create(headers={"x-image-meta-property-p": b"\xff\xfe"})
    assert prop.status_code == 400
    assert "not valid UTF-8" in prop.text


def test_other_headers_with_odd_bytes_are_none_of_our_business(client):
    resp = client.create(headers={"X-Something-Else": b"\xff", "x-image-meta-name": "ok"})
    assert resp.status_code == 201, resp.text
