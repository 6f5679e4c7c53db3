"""The wire-format helpers shared by glance-registry and glance-api."""

import datetime

import pytest

from glance_lite import exceptions
from glance_lite import image_meta as im

UUID = "0b7e2a2c-6c5f-4e2b-9a0a-1f1f1f1f1f1f"


def test_timestamps_are_formatted_with_six_fraction_digits_and_no_zone():
    value = datetime.datetime(2016, 5, 10, 21, 35, 15)
    assert im.format_time(value) == "2016-05-10T21:35:15.000000"
    assert im.format_time(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-05-10T21:35:15.000000", datetime.datetime(2016, 5, 10, 21, 35, 15)),
        ("2016-05-10T21:35:15Z", datetime.datetime(2016, 5, 10, 21, 35, 15)),
        ("2016-05-10T23:35:15+02:00", datetime.datetime(2016, 5, 10, 21, 35, 15)),
        ("2016-05-10", datetime.datetime(2016, 5, 10)),
    ],
)
def test_iso_times_become_naive_utc(text, expected):
    assert im.parse_isotime(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2016-13-01", "12:30"])
def test_unparseable_iso_times_raise_value_error(text):
    with pytest.raises(ValueError):
        im.parse_isotime(text)


@pytest.mark.parametrize("text", ["garbage", "1899-12-31T00:00:00"])
def test_bad_field_times_are_a_400_naming_the_field(text):
    with pytest.raises(exceptions.Invalid, match=r"^Invalid time format for created_at\.$"):
        im.parse_field_time("created_at", text)


@pytest.mark.parametrize("text", ["1", "t", "TRUE", "On", "y", "yes", " yes "])
def test_permissive_booleans_accept_oslo_true_words(text):
    assert im.bool_from_string(text) is True


@pytest.mark.parametrize("text", ["0", "false", "no", "maybe", ""])
def test_permissive_booleans_treat_everything_else_as_false(text):
    assert im.bool_from_string(text) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("False", False), ("0", False), ("yes", None), ("", None)],
)
def test_strict_booleans_know_only_true_false_one_and_zero(text, expected):
    assert im.strict_bool(text) is expected


@pytest.mark.parametrize(
    "value",
    [UUID, UUID.upper(), UUID.replace("-", ""), "{" + UUID + "}", "urn:uuid:" + UUID],
)
def test_uuid_like_accepts_the_spellings_oslo_accepts(value):
    assert im.is_uuid_like(value)


@pytest.mark.parametrize("value", ["notauuid", UUID + "0", UUID[:-1], "", None, 5])
def test_uuid_like_rejects_anything_else(value):
    assert not im.is_uuid_like(value)


def test_int_filters_parse_integers():
    assert im.parse_int_filter("size_min", "42") == 42
    assert im.parse_int_filter("size_min", "-1") == -1


@pytest.mark.parametrize("value", ["abc", "2.5", ""])
def test_non_integer_filters_are_a_400_naming_filter_and_value(value):
    with pytest.raises(exceptions.Invalid) as caught:
        im.parse_int_filter("size_min", value)
    assert str(caught.value) == f"Bad value passed to filter size_min got {value}"


def test_int_filters_can_require_a_minimum():
    with pytest.raises(exceptions.Invalid, match="Bad value passed to filter min_ram got -1"):
        im.parse_int_filter("min_ram", "-1", minimum=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("raw", "raw"),
        ("eq:raw", "raw"),
        ("in:raw,iso", ["raw", "iso"]),
        ('in:"a,b",c', ["a,b", "c"]),
        ("in:a,,b", ["a", "", "b"]),
        ("foo:bar", "foo:bar"),
        ("2016-05-10T21:35:15", "2016-05-10T21:35:15"),
    ],
)
def test_string_filters_understand_in_and_eq_and_take_anything_else_literally(value, expected):
    assert im.parse_string_filter(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('in:a"b"', "There is no comma before opening quotation mark."),
        ('in:"a"b', "There is no comma after closing quotation mark."),
        ('in:"ab', "The quote is not closed."),
    ],
)
def test_badly_quoted_in_lists_are_a_400(value, message):
    with pytest.raises(exceptions.Invalid, match=message):
        im.parse_string_filter(value)


def _image(**overrides):
    image = {key: None for key in im.CORE_FIELDS}
    image.update(
        id=UUID,
        status="active",
        created_at=datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
        properties={"a": "b"},
        location="file:///x",
        location_data=[],
        visibility="public",
    )
    image.update(overrides)
    return image


def test_the_json_image_dict_has_the_core_fields_properties_and_locations_only():
    body = im.image_to_json(_image())
    assert set(body) == {*im.CORE_FIELDS, "properties", "location", "location_data"}
    assert body["created_at"] == "2020-01-02T03:04:05.000006"
    assert body["properties"] == {"a": "b"}


def test_the_json_image_dict_can_leave_the_locations_out():
    body = im.image_to_json(_image(), with_locations=False)
    assert set(body) == {*im.CORE_FIELDS, "properties"}
