"""GET /v1/images and /v1/images/detail through glance-api: shapes, filters, paging,
sorting and the error texts.

One module-wide set of images on the shared deployment, all carrying the property
`suite=<TAG>`; every listing here filters on it, so other modules' images never show.
"""

import uuid

import pytest

from glance_lite.db import session
from tests.conftest import wipe_schema

pytestmark = pytest.mark.functional

BRIEF_KEYS = {"id", "name", "size", "disk_format", "container_format", "checksum"}


TAG = str(uuid.uuid4())
SUITE = {"property-suite": TAG}
KEEP = {"x-glance-registry-purge-props": "false"}


def tagged(**props) -> dict[str, str]:
    return {"suite": TAG, **props}


@pytest.fixture(scope="module")
def images(client):
    """Five public images (oldest first) and one private one, all owned by nobody."""
    assert client.get("/images", params=SUITE).text == '{"images": []}'
    made = [
        client.upload(b"a" * 10, name="alpha", disk_format="raw", properties=tagged(os="linux")),
        client.upload(
            b"b" * 20, name="bravo", disk_format="qcow2", min_ram=512, properties=tagged()
        ),
        client.upload(b"c" * 30, name="charlie", disk_format="iso", properties=tagged(os="bsd")),
        client.reserve(
            name="delta", disk_format="raw", container_format="bare", properties=tagged()
        ),
        client.upload(
            b"e" * 50, name="echo", disk_format="raw", protected="true", properties=tagged()
        ),
    ]
    for image in made:
        assert client.update(image["id"], is_public="true", headers=KEEP).status_code == 200
    private = client.reserve(name="private", properties=tagged())
    return {"public": [i["id"] for i in made], "private": private["id"]}


def names(client, path="/images", **params) -> list[str]:
    resp = client.get(path, params={**SUITE, **params})
    assert resp.status_code == 200, resp.text
    return [i["name"] for i in resp.json()["images"]]


def test_brief_listing_has_six_keys_newest_first(client, images):
    resp = client.get("/images", params=SUITE)
    assert resp.headers["Content-Type"].startswith("application/json")
    listed = resp.json()["images"]
    assert [i["name"] for i in listed] == ["echo", "delta", "charlie", "bravo", "alpha"]
    assert all(set(i) == BRIEF_KEYS for i in listed)
    assert listed[-1]["size"] == 10
    assert listed[-1]["checksum"] is not None


def test_detail_listing_has_the_full_image(client, images):
    listed = client.get("/images/detail", params=SUITE).json()["images"]
    assert len(listed) == 5
    assert all(len(i) == 18 and "location" not in i for i in listed)
    alpha = next(i for i in listed if i["name"] == "alpha")
    assert alpha["properties"] == {"os": "linux", "suite": TAG}
    assert alpha["is_public"] is True


def test_the_private_image_of_nobody_is_listed_only_with_is_public_none(client, images):
    assert "private" not in names(client)
    assert "private" in names(client, is_public="none")
    assert names(client, is_public="false") == ["private"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "bravo"}, ["bravo"]),
        ({"disk_format": "raw"}, ["echo", "delta", "alpha"]),
        ({"disk_format": "in:raw,iso"}, ["echo", "delta", "charlie", "alpha"]),
        ({"name": "eq:charlie"}, ["charlie"]),
        ({"status": "queued"}, ["delta"]),
        ({"container_format": "bare"}, ["echo", "delta", "charlie", "bravo", "alpha"]),
        ({"size_min": "20"}, ["echo", "charlie", "bravo"]),
        ({"size_max": "20"}, ["delta", "bravo", "alpha"]),
        ({"size_min": "20", "size_max": "30"}, ["charlie", "bravo"]),
        ({"min_ram": "512"}, ["bravo"]),
        ({"property-os": "bsd"}, ["charlie"]),
        ({"protected": "true"}, ["echo"]),
        ({"protected": "False"}, ["delta", "charlie", "bravo", "alpha"]),
        ({"deleted": "true"}, ["echo", "delta", "charlie", "bravo", "alpha"]),
        ({"unknown_filter": "x"}, ["echo", "delta", "charlie", "bravo", "alpha"]),
    ],
)
def test_filters(client, images, params, expected):
    assert names(client, **params) == expected
    assert names(client, "/images/detail", **params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sort_key": "name", "sort_dir": "asc"}, ["alpha", "bravo", "charlie", "delta", "echo"]),
        ({"sort_key": "name"}, ["echo", "delta", "charlie", "bravo", "alpha"]),
        ({"sort_key": "size", "sort_dir": "desc"}, ["echo", "charlie", "bravo", "alpha", "delta"]),
        ({"sort_dir": "asc"}, ["alpha", "bravo", "charlie", "delta", "echo"]),
        ({"sort_key": ["name", "size"], "sort_dir": "asc"}, None),
        ({"sort_key": "name", "sort_dir": ["asc", "desc"]}, None),
    ],
)
def test_sorting(client, images, params, expected):
    if expected is None:  # repeated parameters: the last one wins
        last = {k: v[-1] if isinstance(v, list) else v for k, v in params.items()}
        expected = names(client, **last)
    assert names(client, **params) == expected


def test_paging_with_limit_and_marker(client, images):
    params = {**SUITE, "limit": 2, "sort_key": "name", "sort_dir": "asc"}
    first = client.get("/images", params=params)
    page = first.json()["images"]
    assert [i["name"] for i in page] == ["alpha", "bravo"]
    rest = names(client, limit=10, marker=page[-1]["id"], sort_key="name", sort_dir="asc")
    assert rest == ["charlie", "delta", "echo"]
    assert names(client, limit=0) == []
    assert "next" not in first.json()


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"limit": "abc"}, "limit param must be an integer"),
        ({"limit": "2.5"}, "limit param must be an integer"),
        ({"limit": "-1"}, "limit param must be positive"),
        ({"marker": "notauuid"}, "Invalid marker format"),
        (
            {"marker": "00000000-0000-0000-0000-000000000000"},
            "Invalid marker. Image could not be found.",
        ),
        (
            {"sort_key": "owner"},
            "Unsupported sort_key. Acceptable values: name, status, container_format, "
            "disk_format, size, id, created_at, updated_at",
        ),
        ({"sort_dir": "up"}, "Unsupported sort_dir. Acceptable values: asc, desc"),
        ({"size_min": "abc"}, "Bad value passed to filter size_min got abc"),
        ({"size_max": "-1"}, "Bad value passed to filter size_max got -1"),
        ({"min_ram": "x"}, "Bad value passed to filter min_ram got x"),
        ({"is_public": "maybe"}, "Bad value passed to filter is_public got maybe"),
        ({"protected": "maybe"}, "Bad value passed to filter protected got maybe"),
        ({"changes-since": "not a time"}, "Unrecognized changes-since value"),
    ],
)
def test_bad_listing_parameters_are_400(client, images, params, text):
    for path in ("/images", "/images/detail"):
        resp = client.get(path, params=params)
        assert resp.status_code == 400, resp.text
        assert text in resp.text


BIG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"size_min": BIG_MAX + 1}, f"'size_min' value out of range, must not exceed {BIG_MAX}."),
        ({"size_max": 10**30}, f"'size_max' value out of range, must not exceed {BIG_MAX}."),
        ({"min_ram": INT_MAX + 1}, f"'min_ram' value out of range, must not exceed {INT_MAX}."),
        ({"min_disk": 3000000000}, f"'min_disk' value out of range, must not exceed {INT_MAX}."),
        (
            {"min_disk": -INT_MAX - 2},
            f"'min_disk' value out of range, must not be below {-INT_MAX - 1}.",
        ),
        ({"min_disk": "abc"}, "Bad value passed to filter min_disk got abc"),
    ],
)
def test_integer_filters_beyond_their_columns_are_400(client, images, params, text):
    for path in ("/images", "/images/detail"):
        resp = client.get(path, params={**SUITE, **params})
        assert resp.status_code == 400, resp.text
        assert text in resp.text


def test_integer_filters_at_the_ends_of_their_columns_list_normally(client, images):
    assert names(client, size_max=BIG_MAX) == ["echo", "delta", "charlie", "bravo", "alpha"]
    assert names(client, size_min=BIG_MAX) == []
    assert names(client, min_ram=INT_MAX) == []
    assert names(client, "/images/detail", min_disk=-INT_MAX - 1) == []


def test_integer_filters_beyond_their_columns_are_400_on_every_database(deploy, db_url):
    engine = session.create_engine(db_url)
    wipe_schema(engine)  # db_sync of the deployment makes it anew
    engine.dispose()
    api = deploy(f"ranges-{engine.dialect.name}", registry_options={"db_url": db_url})
    try:
        check_integer_ranges(api)
    finally:
        api.deployment.stop()


def check_integer_ranges(api) -> None:
    """(A function of its own: its responses are gone when the deployment stops, whose
    api would give a connection a live response holds open 2 s to bring a request.)"""
    image = api.upload(b"x" * 7, min_disk=5, min_ram=6, is_public="true")
    for name, value, high in [
        ("min_disk", 3000000000, INT_MAX),
        ("min_ram", INT_MAX + 1, INT_MAX),
        ("size_min", BIG_MAX + 1, BIG_MAX),
        ("size_max", BIG_MAX + 1, BIG_MAX),
    ]:
        resp = api.get("/images/detail", params={name: value})
        assert resp.status_code == 400, resp.text
        assert f"'{name}' value out of range, must not exceed {high}." in resp.text
    found = api.get("/images", params={"min_disk": 5, "size_max": BIG_MAX, "size_min": 7})
    assert [i["id"] for i in found.json()["images"]] == [image["id"]]
    edge = {"min_disk": INT_MAX, "min_ram": INT_MAX, "size_min": BIG_MAX}
    assert api.get("/images", params=edge).json() == {"images": []}


def test_api_limit_max_and_limit_param_default(deploy):
    # the registry pages the listing (Glance's registry reads these two options)
    options = {"api_limit_max": 3, "limit_param_default": 2}
    small = deploy("paging", registry_options=options)
    for i in range(4):
        small.reserve(name=f"i{i}", is_public="true")
    assert len(small.get("/images").json()["images"]) == 2
    assert len(small.get("/images", params={"limit": 100}).json()["images"]) == 3
    assert len(small.get("/images/detail", params={"limit": 100}).json()["images"]) == 3


def test_killed_images_are_hidden_except_from_changes_since(client, images):
    image = client.reserve(
        name="to-kill", disk_format="raw", container_format="bare", properties=tagged()
    )
    client.update(image["id"], b"x", headers={"Content-Type": "text/plain", **KEEP})
    assert client.status(image["id"]) == "killed"
    assert "to-kill" not in names(client, is_public="none")
    assert names(client, is_public="none", status="killed") == []
    since = names(client, is_public="none", **{"changes-since": "2000-01-01T00:00:00"})
    assert "to-kill" in since
    assert client.delete(f"/images/{image['id']}").status_code == 200


def test_the_tenantless_admin_lists_no_private_image_that_has_members(client, images):
    # Glance's listing gave a caller without a tenant every image that had a member.
    image = client.reserve(name="shared-private", properties=tagged())
    assert client.put(f"/images/{image['id']}/members/t1").status_code == 204
    assert "shared-private" not in names(client)
    assert "shared-private" in names(client, is_public="none")
    assert client.delete(f"/images/{image['id']}").status_code == 200
