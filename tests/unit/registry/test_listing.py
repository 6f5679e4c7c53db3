"""GET /images and /images/detail: filters, visibility, sorting and paging."""

import pytest

from glance_lite import image_meta as im

UNKNOWN = "0b7e2a2c-6c5f-4e2b-9a0a-1f1f1f1f1f1f"


def created(caller, day: int, **image) -> str:
    """An image created at a known time (2020-01-<day>), so the order is fixed."""
    return caller.create(created_at=f"2020-01-{day:02d}T00:00:00.000000", **image)["id"]


def public(caller, **image) -> str:
    """A public image: the ownerless default admin lists only those (and shared ones)."""
    return caller.create(is_public=True, **image)["id"]


def error(resp, status: int = 400) -> str:
    assert resp.status_int == status, resp.text
    return resp.text


# --- shapes ----------------------------------------------------------------------


def test_index_entries_have_exactly_the_six_brief_keys(admin):
    image_id = public(admin, name="a", size=5, disk_format="raw", container_format="bare")
    assert admin.listing() == [
        {
            "id": image_id,
            "name": "a",
            "size": 5,
            "disk_format": "raw",
            "container_format": "bare",
            "checksum": None,
        }
    ]


def test_detail_entries_are_full_image_dicts_with_locations(admin):
    public(admin, name="a", properties={"k": "v"}, location="file:///a")
    (image,) = admin.listing(detail=True)
    assert set(image) == {*im.CORE_FIELDS, "properties", "location", "location_data"}
    assert image["properties"] == {"k": "v"}
    assert image["location"] == "file:///a"


# --- default filters -------------------------------------------------------------


def test_deleted_and_killed_images_are_left_out_by_default(admin):
    live = public(admin, name="live")
    public(admin, name="killed", status="killed")
    gone = public(admin, name="gone")
    admin.delete(f"/images/{gone}")
    assert admin.ids() == [live]


def test_changes_since_includes_deleted_and_killed_images(admin):
    live = public(admin, name="live")
    killed = public(admin, name="killed", status="killed")
    gone = public(admin, name="gone")
    admin.delete(f"/images/{gone}")
    listed = admin.ids("changes-since=2000-01-01T00:00:00")
    assert set(listed) == {live, killed, gone}


def test_changes_since_compares_with_the_update_time(admin):
    public(admin, name="old")
    assert admin.ids("changes-since=2999-01-01T00:00:00Z") == []


def test_an_unparseable_changes_since_is_a_400(admin):
    resp = admin.get("/images?changes-since=yesterday")
    assert "Unrecognized changes-since value" in error(resp)


def test_an_admin_can_ask_for_only_deleted_images(admin):
    live = public(admin, name="live")
    gone = public(admin, name="gone")
    admin.delete(f"/images/{gone}")
    assert admin.ids("deleted=true") == [gone]
    assert admin.ids("deleted=false") == [live]


def test_a_non_admin_asking_for_deleted_images_gets_the_ordinary_listing(registry):
    alice = registry.tenant("alice")
    live = alice.create(name="live")["id"]
    gone = alice.create(name="gone")["id"]
    alice.delete(f"/images/{gone}")
    assert alice.ids("deleted=true") == [live]


# --- column filters --------------------------------------------------------------


@pytest.fixture
def catalogue(admin):
    """Four images with different attributes, keyed by name."""
    images = {
        "alpha": dict(disk_format="raw", container_format="bare", size=10, min_ram=1),
        "beta": dict(disk_format="iso", container_format="bare", size=20, min_disk=2),
        "gamma": dict(disk_format="qcow2", container_format="ovf", size=30, protected=True),
        "foo:bar": dict(disk_format="raw", container_format="ovf", size=40, status="queued"),
    }
    return {
        name: created(admin, day, name=name, is_public=True, **attrs)
        for day, (name, attrs) in enumerate(images.items(), start=1)
    }


def names(admin, query: str) -> set[str]:
    return {image["name"] for image in admin.listing(query)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=alpha", {"alpha"}),
        ("name=eq:beta", {"beta"}),
        ("name=in:alpha,gamma", {"alpha", "gamma"}),
        ("name=foo:bar", {"foo:bar"}),
        ("status=queued", {"foo:bar"}),
        ("disk_format=in:raw,iso", {"alpha", "beta", "foo:bar"}),
        ("container_format=ovf", {"gamma", "foo:bar"}),
        ("size_min=20", {"beta", "gamma", "foo:bar"}),
        ("size_max=20", {"alpha", "beta"}),
        ("size_min=15&size_max=35", {"beta", "gamma"}),
        ("min_ram=1", {"alpha"}),
        ("min_disk=2", {"beta"}),
        ("protected=true", {"gamma"}),
        ("protected=1", {"gamma"}),
        ("protected=False", {"alpha", "beta", "foo:bar"}),
        ("name=nothing", set()),
        ("name=alpha&name=beta", {"beta"}),
    ],
)
def test_column_filters_select_the_matching_images(admin, catalogue, query, expected):
    assert names(admin, query) == expected


def test_an_unknown_operator_prefix_is_matched_literally_instead_of_failing(admin, catalogue):
    assert names(admin, "name=zap:alpha") == set()


@pytest.mark.parametrize("name", ["size_min", "size_max", "min_ram", "min_disk"])
def test_a_non_numeric_range_value_is_a_400_naming_the_filter(admin, name):
    resp = admin.get(f"/images?{name}=abc")
    assert f"Bad value passed to filter {name} got abc" in error(resp)


def test_a_badly_quoted_in_list_is_a_400(admin):
    resp = admin.get('/images?name=in:"a')
    assert "The quote is not closed." in error(resp)


def test_protected_must_be_true_or_false(admin):
    resp = admin.get("/images?protected=yes")
    assert "protected must be True, or False" in error(resp)


def test_property_filters_require_every_named_property_value(admin):
    both = public(admin, name="both", properties={"os": "linux", "arch": "x86"})
    public(admin, name="one", properties={"os": "linux", "arch": "arm"})
    public(admin, name="none")
    assert set(admin.ids("property-os=linux")) == {both, admin.ids("name=one")[0]}
    assert admin.ids("property-os=linux&property-arch=x86") == [both]
    assert admin.ids("property-os=windows") == []


def test_unknown_query_parameters_are_ignored(admin):
    image_id = public(admin, name="a")
    assert admin.ids("bogus=1&id=nope") == [image_id]


# --- admin is_public -------------------------------------------------------------


@pytest.fixture
def tenants(registry):
    """alice: private + public; bob: two private, one shared with alice; carol: none."""
    alice, bob = registry.tenant("alice"), registry.tenant("bob")
    ids = {
        "alice-private": created(alice, 1, name="alice-private"),
        "alice-public": created(registry.tenant_admin("alice"), 2, is_public=True),
        "bob-private": created(bob, 3, name="bob-private"),
        "bob-shared": created(bob, 4, name="bob-shared"),
    }
    resp = bob.put(f"/images/{ids['bob-shared']}/members/alice")
    assert resp.status_int == 204
    return ids


def visible(caller, ids: dict, query: str = "") -> set[str]:
    by_id = {v: k for k, v in ids.items()}
    return {by_id[i] for i in caller.ids(query)}


def test_a_tenant_sees_public_owned_and_shared_images(registry, tenants):
    assert visible(registry.tenant("alice"), tenants) == {
        "alice-private",
        "alice-public",
        "bob-shared",
    }
    assert visible(registry.tenant("bob"), tenants) == {
        "alice-public",
        "bob-private",
        "bob-shared",
    }
    assert visible(registry.tenant("carol"), tenants) == {"alice-public"}


def test_an_admin_listing_by_default_acts_as_a_regular_user(registry, tenants):
    admin = registry.tenant_admin("alice")
    expected = {"alice-private", "alice-public", "bob-shared"}
    assert visible(admin, tenants) == expected
    assert visible(admin, tenants, "is_public=true") == expected
    assert visible(registry.tenant_admin("dave"), tenants) == {"alice-public"}


def test_an_admin_with_is_public_none_sees_everything(registry, tenants):
    assert visible(registry.tenant_admin("dave"), tenants, "is_public=None") == set(tenants)


def test_an_admin_with_is_public_false_sees_every_non_public_image(registry, tenants):
    assert visible(registry.tenant_admin("dave"), tenants, "is_public=false") == {
        "alice-private",
        "bob-private",
        "bob-shared",
    }


def test_an_admin_with_a_bad_is_public_gets_a_400(registry):
    resp = registry.tenant_admin("dave").get("/images?is_public=maybe")
    assert "is_public must be None, True, or False" in error(resp)


def test_a_non_admin_is_public_is_ignored_even_when_invalid(registry, tenants):
    carol = registry.tenant("carol")
    assert visible(carol, tenants, "is_public=false") == {"alice-public"}
    assert visible(carol, tenants, "is_public=maybe") == {"alice-public"}


def test_the_ownerless_default_admin_lists_public_images_as_a_user(registry, tenants):
    # Glance's listing also gave it every image that had a member.
    assert visible(registry.admin, tenants) == {"alice-public"}
    assert visible(registry.admin, tenants, "is_public=none") == set(tenants)


def test_an_anonymous_caller_sees_public_images_only(registry, tenants):
    assert visible(registry.anonymous, tenants) == {"alice-public"}


# --- sorting ---------------------------------------------------------------------


@pytest.fixture
def dated(admin):
    """Three images created on days 1, 2, 3, with names and sizes in other orders."""
    return [
        created(admin, 1, name="b", size=300, is_public=True),
        created(admin, 2, name="c", size=100, is_public=True),
        created(admin, 3, name="a", size=200, is_public=True),
    ]


def test_the_default_order_is_newest_first(admin, dated):
    assert admin.ids() == dated[::-1]


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("sort_key=name", [1, 0, 2]),
        ("sort_key=name&sort_dir=asc", [2, 0, 1]),
        ("sort_key=size&sort_dir=asc", [1, 2, 0]),
        ("sort_dir=asc", [0, 1, 2]),
        ("sort_key=name&sort_key=size", [0, 2, 1]),
        ("sort_dir=asc&sort_dir=desc", [2, 1, 0]),
    ],
)
def test_sort_key_and_dir_order_the_listing_and_the_last_repeat_wins(admin, dated, query, order):
    assert admin.ids(query) == [dated[i] for i in order]


def test_ties_are_broken_by_created_at_then_id(admin):
    same = [created(admin, 1, name="same", is_public=True) for _ in range(3)]
    later = created(admin, 2, name="same", is_public=True)
    assert admin.ids("sort_key=name") == [later, *sorted(same, reverse=True)]
    assert admin.ids("sort_key=name&sort_dir=asc") == [*sorted(same), later]


def test_an_unsupported_sort_key_is_a_400_listing_the_keys(admin):
    resp = admin.get("/images?sort_key=owner")
    assert (
        "Unsupported sort_key. Acceptable values: name, status, container_format, "
        "disk_format, size, id, created_at, updated_at" in error(resp)
    )


def test_an_unsupported_sort_dir_is_a_400_listing_the_directions(admin):
    resp = admin.get("/images?sort_dir=up")
    assert "Unsupported sort_dir. Acceptable values: asc, desc" in error(resp)


# --- paging ----------------------------------------------------------------------


@pytest.fixture
def seven(small_pages):
    admin = small_pages.admin
    return admin, [created(admin, day, name=f"i{day}", is_public=True) for day in range(1, 8)][::-1]


def test_the_default_page_size_is_limit_param_default(seven):
    admin, newest_first = seven
    assert admin.ids() == newest_first[:3]


def test_a_limit_above_api_limit_max_is_cut_to_it(seven):
    admin, newest_first = seven
    assert admin.ids("limit=100") == newest_first[:5]


def test_limit_zero_returns_an_empty_list(seven):
    admin, _ = seven
    assert admin.ids("limit=0") == []


def test_a_marker_starts_the_page_after_that_image(seven):
    admin, newest_first = seven
    assert admin.ids(f"limit=2&marker={newest_first[1]}") == newest_first[2:4]
    assert admin.ids(f"sort_dir=asc&limit=2&marker={newest_first[5]}") == [
        newest_first[4],
        newest_first[3],
    ]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("abc", "limit param must be an integer"),
        ("2.5", "limit param must be an integer"),
        ("", "limit param must be an integer"),
        ("-1", "limit param must be positive"),
    ],
)
def test_a_bad_limit_is_a_400(admin, limit, message):
    assert message in error(admin.get(f"/images?limit={limit}"))


@pytest.mark.parametrize("marker", ["notauuid", UNKNOWN + "0"])
def test_a_marker_that_is_not_uuid_like_is_a_400(admin, marker):
    assert "Invalid marker format" in error(admin.get(f"/images?marker={marker}"))


def test_an_unknown_marker_is_a_400(admin):
    resp = admin.get(f"/images?marker={UNKNOWN}")
    assert "Invalid marker. Image could not be found." in error(resp)


def test_a_marker_the_caller_cannot_see_is_a_400(registry):
    private = registry.tenant("alice").create(name="mine")["id"]
    resp = registry.tenant("bob").get(f"/images?marker={private}")
    assert "Invalid marker. Image could not be found." in error(resp)


def test_an_empty_marker_is_no_marker(admin):
    image_id = public(admin, name="a")
    assert admin.ids("marker=") == [image_id]
