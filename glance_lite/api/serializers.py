"""glance-api v1's wire format: the `x-image-meta-*` request headers parsed into image
metadata, image metadata rendered as response headers or JSON, and the query string of
the listings checked before it goes to the registry (docs/api.md). Pure functions.

Header text on the WSGI side is latin-1 `str` (PEP 3333): the bytes the client sent, one
character per byte. Names and values are read as UTF-8 and written back as UTF-8 bytes in
that same latin-1 form, so non-ASCII text survives a round trip through headers.
"""

import datetime
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from glance_lite import exceptions, wsgi
from glance_lite import image_meta as im

META_PREFIX = "x-image-meta-"
PROPERTY_PREFIX = "x-image-meta-property-"

# The core fields a request may set through `x-image-meta-<field>` (any other is a 400).
HEADER_FIELDS = frozenset(
    {
        "location",
        "size",
        "is_public",
        "disk_format",
        "container_format",
        "name",
        "status",
        "copy_from",
        "uri",
        "checksum",
        "created_at",
        "updated_at",
        "deleted_at",
        "min_ram",
        "min_disk",
        "owner",
        "store",
        "id",
        "protected",
        "deleted",
        "virtual_size",
    }
)
# Integer fields in Glance's conversion order; only virtual_size may be null.
INT_FIELDS = ("size", "min_disk", "min_ram", "virtual_size")
NULLABLE_INT_FIELDS = frozenset({"virtual_size"})
INT_LIMITS = {
    "size": im.BIGINT_MAX,
    "min_disk": im.INT_MAX,
    "min_ram": im.INT_MAX,
    "virtual_size": im.BIGINT_MAX,
}
BOOL_FIELDS = ("is_public", "deleted", "protected")
AMAZON_FORMATS = frozenset({"aki", "ari", "ami"})
NAME_MAX = im.COLUMN_LENGTHS["name"]
CHECKSUM_MAX = im.COLUMN_LENGTHS["checksum"]

# GET /v1/images[/detail]: what glance-api forwards to the registry (plus `property-*`).
LIST_FILTERS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "min_ram",
    "min_disk",
    "size_min",
    "size_max",
    "is_public",
    "changes-since",
    "protected",
)
PAGING_PARAMS = ("limit", "marker", "sort_key", "sort_dir")
NON_NEGATIVE_INT_FILTERS = frozenset({"size_min", "size_max", "min_ram"})
BOOL_FILTERS = frozenset({"is_public", "protected"})
BOOL_FILTER_VALUES = frozenset({"none", "true", "false", "1", "0"})

# A body is present with one of these Transfer-Encodings on POST/PUT/PATCH (or a length).
BODY_ENCODINGS = frozenset({"chunked", "compress", "deflate", "gzip", "identity"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# An RFC 7230 token: what a header name may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


# --- request headers -----------------------------------------------------------------


def parse_image_meta(
    headers: Headers, *, disk_formats: Iterable[str], container_formats: Iterable[str]
) -> dict:
    """The image metadata of a create/update request, validated as Glance v1 does.

    Always has a `properties` dict. Raises Invalid (400) with Glance's texts.
    """
    meta, properties = _collect(headers)
    _convert_ints(meta)
    for key in BOOL_FIELDS:
        if key in meta:
            meta[key] = im.bool_from_string(meta[key])
    meta["properties"] = properties
    _validate_formats(meta, tuple(disk_formats), tuple(container_formats))
    _normalise_times(meta)
    _validate_lengths(meta)
    _validate_ranges(meta)
    return meta


def request_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A request's headers as (lowercase name, value) pairs, read from the WSGI environ
    once: webob's view of them translates every environ key again on each lookup, which
    cost more than parsing the image metadata itself."""
    found = [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if key in environ:
            found.append((name, environ[key]))
    return found


def _items(headers: Headers) -> Iterable[tuple[str, str]]:
    return headers.items() if hasattr(headers, "items") else headers


def _collect(headers: Headers) -> tuple[dict, dict]:
    """Core fields and properties from the headers; repeats joined with a comma."""
    fields: dict[str, list[str]] = {}
    properties: dict[str, list[str]] = {}
    for raw_name, raw_value in _items(headers):
        if not raw_name.lower().startswith(META_PREFIX):
            continue  # other headers are none of our business, whatever their bytes
        name = _wire_text(raw_name, "Header name").lower()
        value = _wire_text(raw_value, f"Header {name}")
        if name.startswith(PROPERTY_PREFIX):
            key = name[len(PROPERTY_PREFIX) :].replace("-", "_")
            properties.setdefault(key, []).append(value)
            continue
        key = name[len(META_PREFIX) :].replace("-", "_")
        if key not in HEADER_FIELDS:
            raise exceptions.Invalid(f"Bad header: {name.replace('_', '-')}")
        fields.setdefault(key, []).append(value)
    return _joined(fields), _joined(properties)


def _joined(values: dict[str, list[str]]) -> dict:
    """One value per key, as a WSGI server joins repeated headers; empty means null."""
    return {key: ",".join(parts) or None for key, parts in values.items()}


def _wire_text(raw: str, what: str) -> str:
    """Header text as the client meant it: its bytes (latin-1 str in WSGI) read as UTF-8.

    A str that is not latin-1 cannot have come from a WSGI server: it is taken as text.
    """
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        text = raw
    except UnicodeDecodeError:
        shown = raw.encode("latin-1").decode("utf-8", "backslashreplace")
        raise exceptions.Invalid(f"{what} is not valid UTF-8: {shown}") from None
    if "\x00" in text:
        raise exceptions.Invalid(f"{what} contains a NUL character.")
    return text


def _convert_ints(meta: dict) -> None:
    for key in INT_FIELDS:
        if key not in meta:
            continue
        value = meta[key]
        if key in NULLABLE_INT_FIELDS and value in (None, "None"):
            meta[key] = None
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            shown = "" if value is None else value
            raise exceptions.Invalid(
                f"Invalid value '{shown}' for parameter '{key}': "
                f"Cannot convert image {key} '{shown}' to an integer."
            ) from None
        if number < 0:
            raise exceptions.Invalid(
                f"Invalid value '{number}' for parameter '{key}': Cannot be a negative value."
            )
        meta[key] = number


def _validate_formats(meta: dict, disk_formats: tuple, container_formats: tuple) -> None:
    """Known formats, and the Amazon rule: aki/ari/ami need the same format on both sides."""
    disk_format = meta.get("disk_format")
    container_format = meta.get("container_format")
    if "disk_format" in meta and disk_format not in disk_formats:
        raise exceptions.Invalid(f"Invalid disk format '{disk_format}' for image.")
    if "container_format" in meta and container_format not in container_formats:
        raise exceptions.Invalid(f"Invalid container format '{container_format}' for image.")
    if disk_format not in AMAZON_FORMATS and container_format not in AMAZON_FORMATS:
        return
    if disk_format is None:
        meta["disk_format"] = container_format
    elif container_format is None:
        meta["container_format"] = disk_format
    elif container_format != disk_format:
        raise exceptions.Invalid(
            "Invalid mix of disk and container formats. When setting a disk or container "
            "format to one of 'aki', 'ari', or 'ami', the container and disk formats must "
            "match."
        )


def _normalise_times(meta: dict) -> None:
    """Timestamps travel to the registry as `YYYY-MM-DDTHH:MM:SS.ffffff` (naive UTC)."""
    for field in im.TIMESTAMP_FIELDS:
        if meta.get(field):
            meta[field] = im.format_time(im.parse_field_time(field, meta[field]))


def _validate_lengths(meta: dict) -> None:
    name = meta.get("name")
    if name and len(name) > NAME_MAX:
        raise exceptions.Invalid(f"Image name too long: {len(name)}")
    checksum = meta.get("checksum")
    if checksum and len(checksum) > CHECKSUM_MAX:
        raise exceptions.Invalid(f"Invalid checksum '{checksum}': can't exceed 32 characters")


def _validate_ranges(meta: dict) -> None:
    """What the registry's columns hold, with the registry's text (checked here first)."""
    for key, high in INT_LIMITS.items():
        if meta.get(key) is not None and meta[key] > high:
            raise exceptions.Invalid(f"'{key}' value out of range, must not exceed {high}.")


# --- size and body ------------------------------------------------------------------


def header(headers: Headers, name: str) -> str | None:
    """The last value of a header, found case-insensitively."""
    wanted = name.lower()
    found = None
    for key, value in _items(headers):
        if key.lower() == wanted:
            found = value
    return found


def _content_length(headers: Headers) -> int | None:
    """Content-Length as an int; None when absent, unparseable or negative."""
    value = header(headers, "Content-Length")
    try:
        length = int(value) if value is not None else None
    except ValueError:
        return None
    return length if length is not None and length >= 0 else None


def declared_size(headers: Headers, image_meta: dict) -> int | None:
    """The size a create/update declares: a non-zero Content-Length, else x-image-meta-size."""
    return _content_length(headers) or image_meta.get("size")


def has_body(req_method: str, headers: Headers) -> bool:
    """A body comes with a known Transfer-Encoding on POST/PUT/PATCH, or a Content-Length > 0."""
    encoding = (header(headers, "Transfer-Encoding") or "").lower()
    if encoding in BODY_ENCODINGS and req_method.upper() in BODY_METHODS:
        return True
    return bool(_content_length(headers))


# --- responses ----------------------------------------------------------------------


def image_meta_to_headers(image: dict) -> list[tuple[str, str]]:
    """HEAD/GET response headers for an image: null values omitted.

    Never the locations. A control character in a value becomes a space (as a folded
    header line would), so stored text cannot start a header of its own; a property whose
    name is not a valid header name (non-ASCII, spaces, `:` ...) is left out.
    """
    headers = [
        (f"{META_PREFIX}{key}", _header_value(image[key]))
        for key in im.CORE_FIELDS
        if image.get(key) is not None
    ]
    for name, value in (image.get("properties") or {}).items():
        header = f"{PROPERTY_PREFIX}{name.lower()}"
        if value is not None and _TOKEN.fullmatch(header):
            headers.append((header, _header_value(value)))
    if image.get("checksum") is not None:
        headers.append(("ETag", _header_value(image["checksum"])))
    return headers


def _header_value(value) -> str:
    # booleans as True/False, integers in decimal, timestamps as in the JSON
    text = im.format_time(value) if isinstance(value, datetime.datetime) else str(value)
    return wsgi.UNSAFE_IN_HEADER_VALUE.sub(" ", text).encode("utf-8").decode("latin-1")


def image_to_json(image: dict) -> dict:
    """The api's JSON image: the 17 core fields and `properties`, never the locations."""
    return im.image_to_json(image, with_locations=False)


# --- listing query ------------------------------------------------------------------


def parse_list_params(params: Mapping[str, str]) -> dict[str, str]:
    """The query parameters of GET /v1/images[/detail] that go on to the registry.

    Filters (LIST_FILTERS and `property-*`) and the paging params; the last of repeated
    parameters wins. Anything else (`deleted`, `member_status`, ...) is dropped, as
    Glance does. The api's own checks: 400 `Bad value passed to filter <f> got <v>`.
    """
    forwarded = {}
    for name in params:
        if name in LIST_FILTERS or name.startswith("property-"):
            forwarded[name] = _checked_filter(name, params[name])
    for name in PAGING_PARAMS:
        if name in params:
            forwarded[name] = params[name]
    return forwarded


def _checked_filter(name: str, value: str) -> str:
    if name in NON_NEGATIVE_INT_FILTERS:
        im.parse_int_filter(name, value, minimum=0)
    elif name in BOOL_FILTERS and value.lower() not in BOOL_FILTER_VALUES:
        raise exceptions.Invalid(f"Bad value passed to filter {name} got {value}")
    return value


# What a forwarded query keeps as the client sent it: RFC 3986's query characters, '%'
# included so that the client's escapes stay as they are (quote() also keeps letters,
# digits and -._~). Anything else (raw non-ASCII bytes, spaces, '#', quotes) is escaped.
_QUERY_SAFE = "!$'()*+,;=:@/?%"
# webob (so both services) splits a query string at `;` as well as `&`.
_QUERY_SEPARATOR = re.compile("[&;]")


def forwarded_query(query_string: str, names: Collection[str]) -> str:
    """The parameters `names` of a request's raw query string, as the client encoded
    them (the last of repeated ones, as parse_list_params takes), for the registry.

    Decoding and encoding the values again would not give the client's text back:
    urlencode writes each `!` as `%21`, so a query glance-api accepted could grow past
    the registry's URL limit. Kept as sent, it is never longer than what glance-api took,
    and costs no encoding; only bytes that may not stand in a URL are escaped.
    """
    kept: dict[str, str] = {}
    for segment in _QUERY_SEPARATOR.split(query_string):
        raw_name = segment.partition("=")[0].encode("latin-1")
        name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
        if name in names:
            kept[name] = segment
    return "&".join(quote(segment.encode("latin-1"), safe=_QUERY_SAFE) for segment in kept.values())
