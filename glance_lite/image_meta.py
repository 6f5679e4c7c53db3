"""What an image's metadata looks like on the v1 wire, shared by glance-registry and
glance-api: field names, statuses, formats, sort keys, the timestamp format, and the
parsers both sides apply to the same strings.
"""

import datetime
import re
import uuid

from glance_lite import exceptions

# Every status an image row may hold (the registry refuses any other with a 400).
STATUSES = (
    "active",
    "saving",
    "queued",
    "killed",
    "pending_delete",
    "deleted",
    "deactivated",
    "importing",
    "uploading",
)

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker")

SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)
SORT_DIRS = ("asc", "desc")

# The keys of one entry of a brief listing (GET /images).
INDEX_FIELDS = ("id", "name", "size", "disk_format", "container_format", "checksum")

# The core attributes of an image; with `properties` they make the JSON image dict.
CORE_FIELDS = (
    "id",
    "name",
    "status",
    "size",
    "virtual_size",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "is_public",
    "checksum",
    "owner",
    "protected",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
)
TIMESTAMP_FIELDS = ("created_at", "updated_at", "deleted_at")
# What the registry adds for its callers (glance-api strips these before replying).
LOCATION_FIELDS = ("location", "location_data")

# Longest string each column of Glance's schema holds, and the largest size.
COLUMN_LENGTHS = {
    "name": 255,
    "status": 30,
    "disk_format": 20,
    "container_format": 20,
    "checksum": 32,
    "owner": 255,
    "property": 255,
    "member": 255,
}
# Longest property value in bytes of UTF-8: MySQL's TEXT column holds no more (Glance
# answered 500 there); refused on every backend so that they all behave alike.
PROPERTY_VALUE_BYTES = 65535
BIGINT_MAX = 2**63 - 1
# Largest min_disk / min_ram (Integer columns).
INT_MAX = 2**31 - 1
# What the integer columns hold (images.size: BigInteger; images.min_disk, min_ram and
# image_locations.id: Integer), on every backend alike.
BIGINT_RANGE = (-BIGINT_MAX - 1, BIGINT_MAX)
INT_RANGE = (-INT_MAX - 1, INT_MAX)

# The filters of GET /images that compare a column with a string (exact, `in:`, `eq:`).
STRING_FILTERS = ("name", "status", "container_format", "disk_format")
INT_FILTERS = ("size_min", "size_max", "min_ram", "min_disk")
# The range of the column each integer filter is compared with.
INT_FILTER_RANGES = {
    "size_min": BIGINT_RANGE,
    "size_max": BIGINT_RANGE,
    "min_ram": INT_RANGE,
    "min_disk": INT_RANGE,
}

_TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})


# --- timestamps ---------------------------------------------------------------------


def format_time(value: datetime.datetime | None) -> str | None:
    """A naive-UTC datetime as `YYYY-MM-DDTHH:MM:SS.ffffff`; None stays None."""
    return None if value is None else value.isoformat(timespec="microseconds")


def parse_isotime(value: str) -> datetime.datetime:
    """An ISO 8601 string as a naive UTC datetime (no zone means UTC). ValueError if bad."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    parsed = datetime.datetime.fromisoformat(value.strip().replace("z", "Z"))
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
        except OverflowError:  # its UTC time is before year 1 or after 9999
            raise ValueError(f"not a time of years 1 to 9999 in UTC: {value!r}") from None
    return parsed


def parse_field_time(field: str, value: str) -> datetime.datetime:
    """A timestamp field sent as a string; 400 `Invalid time format for <field>.`."""
    try:
        parsed = parse_isotime(value)
    except ValueError:
        raise exceptions.Invalid(f"Invalid time format for {field}.") from None
    if parsed.year < 1900:
        raise exceptions.Invalid(f"Invalid time format for {field}.")
    return parsed


# --- booleans and ids -------------------------------------------------------------


def bool_from_string(value) -> bool:
    """oslo's permissive parser: 1, t, true, on, y, yes (any case) are true, all else false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE_STRINGS


def strict_bool(value: str) -> bool | None:
    """`true`/`1` -> True, `false`/`0` -> False (any case), anything else -> None."""
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


def is_uuid_like(value) -> bool:
    """oslo.utils' test: parses as a UUID and says the same hex digits (any dashes/case)."""
    try:
        canonical = str(uuid.UUID(value)).replace("-", "")
    except (TypeError, ValueError, AttributeError):
        return False
    given = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    return canonical == given


# --- list filters -----------------------------------------------------------------


def parse_int_filter(name: str, value: str, *, minimum: int | None = None) -> int:
    """An integer filter value; 400 `Bad value passed to filter <name> got <value>`, or
    Glance's out-of-range text beyond what the filter's column holds (no backend could
    compare with it: SQLite and PostgreSQL fail on such a value)."""
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or (minimum is not None and number < minimum):
        raise exceptions.Invalid(f"Bad value passed to filter {name} got {value}")
    return check_range(name, number, INT_FILTER_RANGES[name])


def check_range(name: str, number: int, bounds: tuple[int, int]) -> int:
    """`number` if it lies within `bounds` (a column's range), else a 400 in Glance's
    words naming `name`."""
    low, high = bounds
    if number > high:
        raise exceptions.Invalid(f"'{name}' value out of range, must not exceed {high}.")
    if number < low:
        raise exceptions.Invalid(f"'{name}' value out of range, must not be below {low}.")
    return number


_IN_VALUE = re.compile(
    r"""
    "([^"\\]*(?:\\.[^"\\]*)*)",?   # a double-quoted value, then maybe a comma
    | ([^,]+),?                    # or any run of non-commas, then maybe a comma
    | ,                            # or a lone comma: an empty value
    """,
    re.VERBOSE,
)


def parse_string_filter(value: str) -> str | list[str]:
    """`in:a,b` -> ["a", "b"], `eq:x` -> "x", anything else -> the value itself.

    Glance treats any other `word:` prefix as an unknown operator and fails with 500;
    here such a value is simply matched literally (see docs/differences.md).
    """
    op, sep, rest = value.partition(":")
    if not sep or op not in ("in", "eq"):
        return value
    if op == "eq":
        return rest
    _check_quotes(rest)
    return [quoted or bare for quoted, bare in _IN_VALUE.findall(rest)]


def _check_quotes(value: str) -> None:
    """Glance's api-wg quoting rules for `in:` lists, with its 400 texts."""
    inside = False
    for i, char in enumerate(value):
        if char != '"' or (i and value[i - 1] == "\\"):
            continue
        if not inside and i and value[i - 1] != ",":
            raise exceptions.Invalid(
                f"Invalid filter value {value}. There is no comma before opening quotation mark."
            )
        if inside and i + 1 != len(value) and value[i + 1] != ",":
            raise exceptions.Invalid(
                f"Invalid filter value {value}. There is no comma after closing quotation mark."
            )
        inside = not inside
    if inside:
        raise exceptions.Invalid(f"Invalid filter value {value}. The quote is not closed.")


# --- serialisation ----------------------------------------------------------------


def _json_value(value):
    return format_time(value) if isinstance(value, datetime.datetime) else value


def image_to_json(image_meta: dict, *, with_locations: bool = True) -> dict:
    """The JSON image dict: core fields, `properties`, and (registry) the locations."""
    fields = CORE_FIELDS + LOCATION_FIELDS if with_locations else CORE_FIELDS
    body = {key: image_meta.get(key) for key in fields}
    for key in TIMESTAMP_FIELDS:
        body[key] = _json_value(body[key])
    body["properties"] = dict(image_meta.get("properties") or {})
    return body
