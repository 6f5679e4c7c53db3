"""Every option glance-lite reads, one list per concern, named and defaulted as Glance's.

The `list_*_opts` functions give each program's options by group, as oslo-config-generator
wants them (setup.cfg points it here); the `register_*_opts` functions register the same
options on a program's ConfigOpts. Nothing here reads a value: config.py loads the files,
and each paste factory reads what it needs once.
"""

from oslo_config import cfg
from oslo_policy import opts as oslo_policy_opts

from glance_lite import image_meta as im
from glance_lite.opts.cache import cache_opts
from glance_lite.opts.keystone import service_credential_opts
from glance_lite.opts.store import (
    STORE_GROUP,
    external_source_opts,
    http_store_opts,
    s3_store_opts,
    store_opts,
    swift_store_opts,
)
from glance_lite.opts.store import register_http_store_opts as register_http_store_opts
from glance_lite.opts.store import register_s3_store_opts as register_s3_store_opts
from glance_lite.opts.store import register_store_opts as register_store_opts
from glance_lite.opts.store import register_swift_store_opts as register_swift_store_opts

POLICY_GROUP = "oslo_policy"
DEFAULT_POLICY_FILE = "policy.json"

logging_opts = [
    cfg.BoolOpt("debug", short="d", default=False, help="Log at DEBUG level instead of INFO."),
    cfg.StrOpt(
        "log_file",
        metavar="PATH",
        help="Write the log to this file. Without it the log goes to standard error.",
    ),
    cfg.StrOpt("log_dir", help="Directory that a relative log_file is taken from."),
]

server_opts = [
    cfg.PortOpt(
        "bind_port",
        help="Port to listen on; 0 picks a free one, which the server then reports. "
        "Unset: 9292 for glance-api, 9191 for glance-registry.",
    ),
    cfg.IntOpt("backlog", default=4096, min=1, help="Listen backlog of the server socket."),
    cfg.IntOpt(
        "tcp_keepidle",
        default=600,
        help="Seconds a connection stays idle before TCP keepalive probes start.",
    ),
    cfg.IntOpt(
        "workers",
        min=0,
        help="Worker processes serving requests. 0 serves in the one parent process. "
        "Unset: the number of CPUs, at most 8.",
    ),
    cfg.IntOpt(
        "max_header_line",
        default=16384,
        min=1,
        help="Longest request header line accepted; a longer one is answered with 400.",
    ),
    cfg.BoolOpt(
        "http_keepalive",
        default=True,
        help="Keep client connections open between requests. False closes each after its response.",
    ),
    cfg.IntOpt(
        "client_socket_timeout",
        default=900,
        min=0,
        help="Seconds to wait for a client to send data before dropping it; 0 waits forever.",
    ),
    cfg.IntOpt(
        "client_header_timeout",
        default=60,
        min=0,
        help="Seconds a client has to send a request's line and headers, counted from "
        "when the server starts waiting for it (the connection opened, or the previous "
        "answer went out); then the connection is closed. Also how long a kept-alive "
        "connection may stay idle. 0: no limit (client_socket_timeout alone).",
    ),
    cfg.IntOpt(
        "client_body_timeout",
        default=60,
        min=0,
        help="While a request body is read: seconds without receiving a byte of it after "
        "which the request fails and the connection is closed (an upload then ends "
        "killed). 0: client_socket_timeout alone.",
    ),
    cfg.IntOpt(
        "max_client_connections",
        default=1000,
        min=1,
        help="Client connections each worker serves at once. When a new one comes and "
        "the bound is reached, the worker closes its longest-open idle connection to "
        "make room, or, when none is idle, answers the new one 503 at once.",
    ),
    cfg.IntOpt(
        "upload_discard_limit",
        default=16 * 1024 * 1024,
        min=0,
        help="A request refused before its body was read (an upload over the size cap, "
        "a 401, 404, ...) is answered at once and its connection closed instead of "
        "reading the rest of a large body; while it closes, at most this many more bytes "
        "are read and dropped, so that a client still sending gets to read the answer.",
    ),
    cfg.IntOpt(
        "graceful_shutdown_timeout",
        default=60,
        min=0,
        help="On SIGTERM, SIGHUP or a config reload: seconds a worker lets in-flight "
        "requests finish before it exits anyway; 0 waits for them forever.",
    ),
]

context_opts = [
    cfg.StrOpt("admin_role", default="admin", help="Role that makes a caller an admin."),
    cfg.BoolOpt(
        "owner_is_tenant",
        default=True,
        help="Images are owned by the caller's tenant (True) or by the user (False).",
    ),
    cfg.BoolOpt(
        "allow_anonymous_access",
        default=False,
        help="With the trusted-auth flavor, let unauthenticated callers in as "
        "read-only, non-admin anonymous users instead of answering 401.",
    ),
    cfg.IntOpt(
        "max_request_id_length",
        default=64,
        help="Longest X-Openstack-Request-ID taken from a caller.",
    ),
]

paging_opts = [
    cfg.IntOpt("limit_param_default", default=25, min=1, help="Default page size of lists."),
    cfg.IntOpt("api_limit_max", default=1000, min=1, help="Largest page size a list returns."),
]

# The largest legal JSON body, 128 properties of 65,535 bytes (the registry's limit),
# is 8 MiB as plain UTF-8 and up to 6 times that with every character escaped (\u0001).
json_body_opts = [
    cfg.IntOpt(
        "max_json_body_size",
        default=64 * 1024 * 1024,
        min=1024,
        help="Largest JSON request body, in bytes (image records and memberships; image "
        "data is not JSON). A larger one is answered with 413 before it is read, or as "
        "soon as it passes the limit when it comes chunked. The default admits the "
        "largest legal body however it is escaped.",
    ),
]

registry_secret_opt = cfg.StrOpt(
    "registry_shared_secret",
    secret=True,
    help="Secret every caller of glance-registry sends in the X-Glance-Registry-Secret "
    "header. When set on the registry, requests without it get 401. A registry that "
    "listens on anything but loopback refuses to start without one.",
)

metadata_encryption_key_opt = cfg.StrOpt(
    "metadata_encryption_key",
    secret=True,
    help="AES key (16, 24 or 32 characters) that location URLs are encrypted with before "
    "they are stored in the registry's database, in Glance's format. Unset stores them "
    "in clear. Every glance-api of a deployment must use the same key.",
)

registry_bind_host_opt = cfg.HostAddressOpt(
    "bind_host",
    default="127.0.0.1",
    help="Address to listen on. glance-registry is an internal service: loopback by "
    "default, and a shared secret is required for any other address.",
)

database_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        default="sqlite:////var/lib/glance/glance.sqlite",
        help="SQLAlchemy URL of the image database: sqlite:///PATH, "
        "postgresql://USER:PASS@HOST/DB (psycopg 3) or mysql+pymysql://USER:PASS@HOST/DB.",
    ),
    cfg.IntOpt("max_pool_size", default=5, help="Connections kept open in the pool."),
    cfg.IntOpt("max_overflow", default=50, help="Extra connections the pool may open under load."),
    cfg.IntOpt("pool_timeout", help="Seconds to wait for a free pooled connection before failing."),
    cfg.IntOpt(
        "connection_recycle_time",
        default=3600,
        help="Seconds after which a pooled connection is replaced.",
    ),
]

paste_deploy_opts = [
    cfg.StrOpt(
        "flavor",
        help="Pipeline to serve: the paste pipeline named after the service, or "
        "'<service>-<flavor>' when set (for example 'trusted-auth').",
    ),
    cfg.StrOpt(
        "config_file",
        help="Paste ini file. Unset: '<service>-paste.ini' next to the last config file, "
        "then in the usual config directories.",
    ),
]

api_bind_host_opt = cfg.HostAddressOpt(
    "bind_host", default="0.0.0.0", help="Address glance-api listens on."
)

registry_client_opts = [
    cfg.HostAddressOpt("registry_host", default="0.0.0.0", help="Address of glance-registry."),
    cfg.PortOpt("registry_port", default=9191, help="Port of glance-registry."),
    cfg.StrOpt(
        "registry_client_protocol",
        default="http",
        choices=("http", "https"),
        help="Protocol glance-api speaks to glance-registry.",
    ),
    cfg.StrOpt("registry_client_key_file", help="Client key for HTTPS to the registry."),
    cfg.StrOpt("registry_client_cert_file", help="Client certificate for HTTPS."),
    cfg.StrOpt("registry_client_ca_file", help="CA bundle that signed the registry's cert."),
    cfg.BoolOpt(
        "registry_client_insecure",
        default=False,
        help="Do not verify the registry's HTTPS certificate.",
    ),
    cfg.IntOpt(
        "registry_client_timeout",
        default=6,
        min=0,
        help="Seconds to wait for each answer of the registry (the read timeout); 0 waits "
        "forever. A registry that stops answering then makes the api answer 503 with "
        "Retry-After, within this and registry_client_connect_timeout together. Glance's "
        "default was 600.",
    ),
    cfg.FloatOpt(
        "registry_client_connect_timeout",
        default=3.0,
        min=0,
        help="Seconds to wait for a connection to the registry; 0 waits forever.",
    ),
    cfg.BoolOpt(
        "use_user_token",
        default=True,
        help="Forward the caller's X-Auth-Token to the registry. False sends no caller "
        "token, unless admin_user is set: then the caller's token still goes, with "
        "admin_user's beside it (see admin_user).",
    ),
    cfg.BoolOpt(
        "send_identity_headers",
        default=False,
        help="Forward the caller's identity (X-User-Id, X-Tenant-Id, X-Roles, "
        "X-Identity-Status) to the registry, for a registry in the trusted-auth flavor.",
    ),
]

image_opts = [
    cfg.IntOpt(
        "image_size_cap",
        default=1099511627776,
        min=1,
        max=9223372036854775807,
        help="Largest image, in bytes, that an upload may store.",
    ),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        help="Bytes an owner's images may take across all stores: a number with an "
        "optional unit B, KB, MB, GB or TB (binary multiples). 0 means no limit.",
    ),
    cfg.IntOpt(
        "image_property_quota",
        default=128,
        help="Custom properties an image may have; negative means no limit.",
    ),
    cfg.IntOpt(
        "image_member_quota",
        default=128,
        help="Members an image may have; negative means no limit.",
    ),
    cfg.BoolOpt(
        "delayed_delete",
        default=False,
        help="Deleting an image with data leaves it pending_delete, its data kept for "
        "glance-scrubber, instead of removing the data at once.",
    ),
    cfg.StrOpt(
        "public_endpoint",
        help="Base URL in the versions document, for an api behind a proxy; unset uses "
        "the request's host URL.",
    ),
    cfg.BoolOpt(
        "show_image_direct_url",
        default=False,
        help="Show an image's location as direct_url (JSON) and x-image-meta-direct_url "
        "(HEAD, GET), its credentials redacted. Glance's v1 never showed it.",
    ),
    cfg.BoolOpt("enable_v1_api", default=True, help="Serve the v1 API under /v1."),
    cfg.BoolOpt(
        "enable_v2_api",
        default=True,
        help="Accepted for compatibility; glance-lite has no v2 API and never serves it.",
    ),
    cfg.StrOpt(
        "property_protection_file",
        help="Rules file that protects custom properties by role or policy; unset turns "
        "property protection off.",
    ),
    cfg.StrOpt(
        "property_protection_rule_format",
        default="roles",
        choices=("roles", "policies"),
        help="How property_protection_file names who may act: roles or policy rules.",
    ),
    cfg.IntOpt(
        "upload_chunk_size",
        default=1024 * 1024,
        min=4096,
        help="Bytes read from an upload's body at a time.",
    ),
]

upload_lease_opts = [
    cfg.StrOpt(
        "node_id",
        help="This api node's name in the upload leases it records in the registry (who "
        "is uploading an image). Unset: '<hostname>:<bind_port>', distinct for api nodes "
        "on one host that listen on distinct ports; set it where that is not enough "
        "(bind_port 0, or containers sharing a hostname).",
    ),
    cfg.IntOpt(
        "upload_lease_duration",
        default=300,
        min=3,
        max=86400,
        help="Seconds an upload's lease lasts unless renewed; the uploading node renews it "
        "every third of that while the bytes stream. An upload whose node died (killed, "
        "power lost) is set killed by a sweep once its lease expired; an image left "
        "saving without a lease (by an older version, or by Glance) once this much time "
        "passed since it last changed. An upload outlives a registry outage shorter "
        "than this.",
    ),
    cfg.IntOpt(
        "upload_lease_sweep_interval",
        default=60,
        min=1,
        max=86400,
        help="Seconds between two sweeps of expired upload leases by each api process "
        "(each also sweeps as it starts).",
    ),
]

image_format_opts = [
    cfg.ListOpt(
        "disk_formats",
        default=list(im.DISK_FORMATS),
        help="Disk formats an image may have.",
    ),
    cfg.ListOpt(
        "container_formats",
        default=list(im.CONTAINER_FORMATS),
        help="Container formats an image may have.",
    ),
]

manage_opts = [
    cfg.StrOpt(
        "migrations_dir",
        help="Alembic script directory; unset uses the one shipped with glance-lite.",
    ),
]


port_file_opt = cfg.StrOpt("port-file", dest="port_file", help="Write the bound port here.")


def register_listed(conf: cfg.ConfigOpts, listing) -> None:
    """Register every option of a `list_*_opts()` listing (the generator's view)."""
    for group, options in listing:
        conf.register_opts(options, group=None if group == "DEFAULT" else group)


def register_registry_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_cli_opts([port_file_opt])
    register_listed(conf, list_registry_opts())


def register_api_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_cli_opts([port_file_opt])
    register_listed(conf, list_api_opts())


def list_api_opts():
    return [
        (
            "DEFAULT",
            [
                api_bind_host_opt,
                *server_opts,
                *context_opts,
                *paging_opts,
                *json_body_opts,
                *registry_client_opts,
                *service_credential_opts,
                registry_secret_opt,
                metadata_encryption_key_opt,
                *image_opts,
                *upload_lease_opts,
                *cache_opts,
                *logging_opts,
                *external_source_opts,
            ],
        ),
        ("image_format", image_format_opts),
        ("paste_deploy", paste_deploy_opts),
        (STORE_GROUP, store_opts),
        (STORE_GROUP, http_store_opts),
        (STORE_GROUP, swift_store_opts),
        (STORE_GROUP, s3_store_opts),
        *list_policy_opts(),
    ]


def register_manage_opts(conf: cfg.ConfigOpts) -> None:
    register_listed(conf, list_manage_opts())


def list_registry_opts():
    return [
        (
            "DEFAULT",
            [
                registry_bind_host_opt,
                *server_opts,
                *context_opts,
                *paging_opts,
                *json_body_opts,
                registry_secret_opt,
                *logging_opts,
            ],
        ),
        ("database", database_opts),
        ("paste_deploy", paste_deploy_opts),
    ]


def list_manage_opts():
    return [("DEFAULT", [*manage_opts, *logging_opts]), ("database", database_opts)]


def list_policy_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """oslo.policy's options with Glance's default policy file name. oslo.policy hands out
    new Opt objects on each call, so its own default stays as it was."""
    group, options = oslo_policy_opts.list_opts()[0]
    for opt in options:
        if opt.dest == "policy_file":
            opt.default = DEFAULT_POLICY_FILE
    return [(group, options)]


def register_policy_opts(conf: cfg.ConfigOpts) -> None:
    register_listed(conf, list_policy_opts())


scrubber_opts = [
    cfg.IntOpt(
        "wakeup_time",
        default=300,
        min=1,
        help="Seconds between two passes of glance-scrubber --daemon.",
    ),
    cfg.IntOpt(
        "scrub_time",
        default=0,
        min=0,
        help="Seconds an image stays pending_delete, its data kept, before glance-scrubber "
        "removes the data (0: on the next pass).",
    ),
    cfg.IntOpt(
        "scrub_pool_size",
        default=1,
        min=1,
        help="Images glance-scrubber scrubs at the same time.",
    ),
]

scrubber_cli_opts = [
    cfg.BoolOpt(
        "daemon",
        short="D",
        default=False,
        help="Run a pass every wakeup_time seconds until stopped, instead of one pass.",
    ),
    cfg.StrOpt(
        "restore",
        metavar="IMAGE_ID",
        help="Bring this pending_delete image back to active, with its data, and exit.",
    ),
]


def register_scrubber_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_cli_opts(scrubber_cli_opts)
    register_listed(conf, list_scrubber_opts())


def list_scrubber_opts():
    return _as_a_registry_client_with_stores(scrubber_opts)


def register_cache_opts(conf: cfg.ConfigOpts) -> None:
    register_listed(conf, list_cache_opts())


def list_cache_opts():
    """glance-cache.conf: what the glance-cache-* tools read (the prefetcher reaches the
    registry and the stores like glance-api)."""
    return _as_a_registry_client_with_stores(cache_opts)


def _as_a_registry_client_with_stores(own: list[cfg.Opt]):
    """A tool's `own` options, plus what it needs to call the registry (as glance-api
    does) and to read and delete data in every store."""
    return [
        (
            "DEFAULT",
            [
                *own,
                *registry_client_opts,
                *service_credential_opts,
                registry_secret_opt,
                metadata_encryption_key_opt,
                *context_opts,
                *logging_opts,
                *external_source_opts,
            ],
        ),
        (STORE_GROUP, store_opts),
        (STORE_GROUP, http_store_opts),
        (STORE_GROUP, swift_store_opts),
        (STORE_GROUP, s3_store_opts),
    ]
