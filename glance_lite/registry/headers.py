"""Header names of the registry's wire protocol, shared by its server side and its client."""

# The registry's shared secret travels in this header (its value is the secret).
SECRET = "X-Glance-Registry-Secret"  # noqa: S105 - a header name, not a password
# "true" (exactly) makes an update replace the custom property set instead of merging.
PURGE_PROPS = "X-Glance-Registry-Purge-Props"
# glance-lite's own: "true" leaves `location` and `location_data` out of a detail listing
# (glance-api never shows them, and can then pass the registry's JSON through).
OMIT_LOCATIONS = "X-Glance-Registry-Omit-Locations"
