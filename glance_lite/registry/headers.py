"""Header names of the registry's wire protocol, shared by its server side and its client."""

# The registry's shared secret travels in this header (its value is the secret).
SECRET = "X-Glance-Registry-Secret"  # noqa: S105 - a header name, not a password
# "true" (exactly) makes an update replace the custom property set instead of merging.
PURGE_PROPS = "X-Glance-Registry-Purge-Props"
