"""Integers from a request beyond what their column holds are a 400 naming the field, the
same on SQLite, PostgreSQL and MySQL/MariaDB; the column's own limits still work."""

import pytest

from tests.unit.registry.conftest import Registry

BIG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


@pytest.fixture
def any_registry(database) -> Registry:
    return Registry(database)


@pytest.fixture
def catalogue(any_registry) -> dict:
    admin = any_registry.admin
    return {
        "small": admin.create(name="small", size=1, min_disk=1, min_ram=1, is_public=True),
        "edge": admin.create(
            name="edge", size=BIG_MAX, min_disk=INT_MAX, min_ram=INT_MAX, is_public=True
        ),
    }


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (f"size_min={BIG_MAX + 1}", f"'size_min' value out of range, must not exceed {BIG_MAX}."),
        (f"size_max={BIG_MAX + 1}", f"'size_max' value out of range, must not exceed {BIG_MAX}."),
        (
            f"size_min={-BIG_MAX - 2}",
            f"'size_min' value out of range, must not be below {-BIG_MAX - 1}.",
        ),
        ("min_disk=3000000000", f"'min_disk' value out of range, must not exceed {INT_MAX}."),
        (f"min_ram={INT_MAX + 1}", f"'min_ram' value out of range, must not exceed {INT_MAX}."),
        (
            f"min_ram={-INT_MAX - 2}",
            f"'min_ram' value out of range, must not be below {-INT_MAX - 1}.",
        ),
        ("min_disk=" + "9" * 40, f"'min_disk' value out of range, must not exceed {INT_MAX}."),
    ],
)
@pytest.mark.parametrize("path", ["/images", "/images/detail"])
def test_a_filter_beyond_its_column_is_a_400_naming_it(any_registry, catalogue, path, query, text):
    resp = any_registry.admin.get(f"{path}?{query}")
    assert resp.status_int == 400, resp.text
    assert text in resp.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"size_min={BIG_MAX}", {"edge"}),
        (f"size_max={BIG_MAX}", {"small", "edge"}),
        (f"size_max={-BIG_MAX - 1}", set()),
        (f"min_disk={INT_MAX}", {"edge"}),
        (f"min_ram={INT_MAX}", {"edge"}),
        (f"min_ram={-INT_MAX - 1}", set()),
    ],
)
def test_filters_at_the_ends_of_their_columns_work(any_registry, catalogue, query, expected):
    images = any_registry.admin.listing(query)
    assert {image["name"] for image in images} == expected


def test_a_location_id_beyond_its_column_is_a_400(any_registry):
    admin = any_registry.admin
    image = admin.create(location="file:///a", size=10)
    resp = admin.delete(f"/images/{image['id']}/locations/{INT_MAX + 1}")
    assert resp.status_int == 400, resp.text
    assert f"'location_id' value out of range, must not exceed {INT_MAX}." in resp.text
    resp = admin.delete(f"/images/{image['id']}/locations/{-INT_MAX - 2}")
    assert resp.status_int == 400, resp.text
    resp = admin.delete(f"/images/{image['id']}/locations/{INT_MAX}")
    assert resp.status_int == 404, resp.text
    assert admin.get(f"/images/{image['id']}").json["image"]["location"] == "file:///a"


def test_a_location_data_id_beyond_its_column_is_a_400(any_registry):
    admin = any_registry.admin
    image = admin.create(location="file:///a", size=10)
    for bad in (INT_MAX + 1, -INT_MAX - 2, 10**30):
        location_data = [{"id": bad, "url": "file:///a"}]
        resp = admin.put(f"/images/{image['id']}", {"image": {"location_data": location_data}})
        assert resp.status_int == 400, resp.text
        assert "'location_data id' value out of range" in resp.text
    location_data = [{"id": INT_MAX, "url": "file:///b"}]
    resp = admin.put(f"/images/{image['id']}", {"image": {"location_data": location_data}})
    assert resp.status_int == 404, resp.text
    assert admin.get(f"/images/{image['id']}").json["image"]["location"] == "file:///a"


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("size", BIG_MAX + 1, f"'size' value out of range, must not exceed {BIG_MAX}."),
        ("size", -BIG_MAX - 2, f"'size' value out of range, must not be below {-BIG_MAX - 1}."),
        ("virtual_size", str(BIG_MAX + 1), "'virtual_size' value out of range"),
        ("min_disk", INT_MAX + 1, f"'min_disk' value out of range, must not exceed {INT_MAX}."),
    ],
)
def test_image_integers_beyond_their_columns_are_400(any_registry, field, value, text):
    resp = any_registry.admin.post("/images", {"image": {"name": "n", field: value}})
    assert resp.status_int == 400, resp.text
    assert text in resp.text


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_whose_utc_falls_outside_years_1_to_9999_is_a_400(any_registry, when):
    admin = any_registry.admin
    resp = admin.get(f"/images?changes-since={when.replace('+', '%2B')}")
    assert resp.status_int == 400, resp.text
    assert "Unrecognized changes-since value" in resp.text
    resp = admin.post("/images", {"image": {"name": "t", "created_at": when}})
    assert resp.status_int == 400, resp.text
    assert "Invalid time format for created_at." in resp.text


def test_storage_usage_beyond_64_bits_is_counted(any_registry):
    # sizes the columns hold, whose sum times their copies does not fit in 64 bits
    admin = any_registry.admin
    sizes = [2**62 + 1, 2**62 + 3, BIG_MAX]
    for i, size in enumerate(sizes):
        locations = [{"url": f"file:///a{i}"}, {"url": f"file:///b{i}"}]
        admin.create(name=f"i{i}", size=size, owner="alice", location_data=locations)
    resp = any_registry.tenant("alice").get("/storage-usage?owner=alice")
    assert resp.status_int == 200, resp.text
    if any_registry.database.engine.dialect.name == "sqlite":
        # no integers wider than 64 bits there: the sum goes over to a float
        assert resp.json["usage"] == pytest.approx(2 * sum(sizes), rel=1e-15)
    else:
        assert resp.json["usage"] == 2 * sum(sizes)
    assert any_registry.tenant("bob").get("/storage-usage?owner=bob").json["usage"] == 0
