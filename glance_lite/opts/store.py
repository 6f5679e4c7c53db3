"""The options of the image stores, in `[glance_store]` as Glance has them.

Each driver's options get a list of their own here; a driver's `from_conf` registers the
lists it reads (`register_store_opts` for the options every store reads).
"""

from oslo_config import cfg

STORE_GROUP = "glance_store"

store_opts = [
    cfg.ListOpt(
        "stores",
        default=["file", "http"],
        help="Stores to enable, by name. A name is an entry point of the group "
        "'glance_lite.stores' (glance-lite installs 'file', also called 'filesystem' and "
        "'glance.store.filesystem.Store'); a name no installed driver has is skipped "
        "with a warning.",
    ),
    cfg.StrOpt(
        "default_store",
        default="file",
        help="Scheme of the store new image data is written to, unless a request asks "
        "for another with x-image-meta-store. It must belong to an enabled store.",
    ),
    cfg.StrOpt(
        "filesystem_store_datadir",
        default="/var/lib/glance/images",
        help="Directory the file store writes images to; created at start-up if missing.",
    ),
    cfg.IntOpt(
        "filesystem_store_chunk_size",
        default=1024 * 1024,
        min=1,
        help="Size in bytes of the pieces the file store reads image files in (Glance: "
        "65536; larger reads make downloads markedly faster).",
    ),
    cfg.IntOpt(
        "filesystem_store_file_perm",
        default=0,
        help="Permission of new image files, read as octal digits (e.g. 640), so that "
        "another service (e.g. Nova) in the file's group can read them. 0 or less keeps "
        "the default permission (0666 less the umask).",
    ),
]


def register_store_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(store_opts, group=STORE_GROUP)


# The http store (read-only), in [glance_store] as Glance's; the timeout is glance-lite's.
http_store_opts = [
    cfg.StrOpt(
        "https_ca_certificates_file",
        help="CA bundle that https locations' certificates are verified with; when set, "
        "https_insecure is ignored.",
    ),
    cfg.BoolOpt(
        "https_insecure",
        default=True,
        help="Do not verify the certificate of an https location (Glance's default). "
        "False verifies it against the system's CAs. Ignored when "
        "https_ca_certificates_file is set.",
    ),
    cfg.DictOpt(
        "http_proxy_information",
        default={},
        help="Proxies for the http store, by scheme: 'http:10.0.0.1:3128, "
        "https:10.0.0.1:1080'. Proxies of the environment (http_proxy...) are not used.",
    ),
    cfg.FloatOpt(
        "http_store_timeout",
        default=60.0,
        min=0.1,
        help="Seconds the http store waits to connect to a server, and for each answer "
        "or piece of data after that, before it gives up (Glance waited forever).",
    ),
]

# Where glance-api may fetch an external source from (x-image-meta-location,
# x-glance-api-copy-from and downloads of images at such locations): the guard against
# a client making the api reach addresses on its own side of the network.
external_source_opts = [
    cfg.ListOpt(
        "external_source_denied_networks",
        default=[
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "::/128",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
        ],
        help="Networks (CIDR) that an external source (location, copy-from) may not be "
        "fetched from: loopback, link-local (the cloud metadata address 169.254.169.254 "
        "among them), the private ranges and their IPv6 equivalents by default. Every "
        "address a source's host resolves to is checked, and again on every redirect; an "
        "IPv4-mapped IPv6 address counts as its IPv4 address.",
    ),
    cfg.ListOpt(
        "external_source_allowed_networks",
        default=[],
        help="Networks (CIDR) that external sources may be fetched from even though "
        "external_source_denied_networks lists them (e.g. a web server of images on a "
        "private network).",
    ),
]

# The swift store, in [glance_store] as Glance's (single tenant). The account comes from
# a reference in swift_store_config_file, or from the older swift_store_auth_* options.
swift_store_opts = [
    cfg.StrOpt(
        "default_swift_reference",
        default="ref1",
        help="Name of the section of swift_store_config_file (or of the account that the "
        "swift_store_auth_address, _user and _key options make) that new images are "
        "written with.",
    ),
    cfg.StrOpt(
        "swift_store_config_file",
        help="A glance-swift.conf: one section per Swift account, with auth_address, "
        "user (project:user for keystone), key, auth_version (1 for tempauth, 2 or 3 for "
        "keystone; swift_store_auth_version when absent) and, for version 3, "
        "user_domain_id and project_domain_id (default 'default'). When set, locations "
        "name the account by reference (swift+config://ref1/...) and hold no credentials.",
    ),
    cfg.StrOpt(
        "swift_store_auth_version",
        default="2",
        help="Authentication version for swift_store_auth_address: 1 (tempauth, swauth), "
        "2 or 3 (keystone).",
    ),
    cfg.StrOpt(
        "swift_store_auth_address",
        help="Authentication URL of the Swift account, when no swift_store_config_file "
        "is set (e.g. http://swift.example.com:8080/auth/v1.0).",
    ),
    cfg.StrOpt(
        "swift_store_user",
        secret=True,
        help="User of swift_store_auth_address (account:user for tempauth, "
        "project:user for keystone).",
    ),
    cfg.StrOpt("swift_store_key", secret=True, help="Key (password) of swift_store_user."),
    cfg.StrOpt("swift_store_container", default="glance", help="Container images are written to."),
    cfg.BoolOpt(
        "swift_store_create_container_on_put",
        default=False,
        help="Create swift_store_container on an upload when it does not exist; otherwise "
        "such an upload fails with 503 saying so.",
    ),
    cfg.IntOpt(
        "swift_store_large_object_size",
        default=5 * 1024,
        min=1,
        help="Images of this many MB or more, and those of unknown size (chunked uploads), "
        "are written as segments and a manifest (a dynamic large object). MB as Glance "
        "counts it: 1,024,000 bytes.",
    ),
    cfg.IntOpt(
        "swift_store_large_object_chunk_size",
        default=200,
        min=1,
        help="Size in MB (1,024,000 bytes) of each segment of a large image.",
    ),
    cfg.StrOpt(
        "swift_store_region",
        help="Region of the object-store endpoint in the keystone catalog (versions 2, 3).",
    ),
    cfg.StrOpt(
        "swift_store_endpoint_type",
        default="publicURL",
        choices=("publicURL", "adminURL", "internalURL"),
        help="Interface of the object-store endpoint in the keystone catalog.",
    ),
    cfg.StrOpt(
        "swift_store_service_type",
        default="object-store",
        help="Service type of Swift in the keystone catalog.",
    ),
    cfg.StrOpt(
        "swift_store_endpoint",
        help="Storage URL to use instead of the one authentication returns, up to but "
        "excluding the container (e.g. https://swift.example.com/v1/AUTH_glance).",
    ),
    cfg.BoolOpt(
        "swift_store_auth_insecure",
        default=False,
        help="Do not verify the certificates of https authentication and storage URLs.",
    ),
    cfg.StrOpt("swift_store_cacert", help="CA bundle to verify Swift's certificates with."),
    cfg.BoolOpt(
        "swift_store_ssl_compression",
        default=True,
        help="Compress https traffic to Swift at the TLS layer, where the TLS library "
        "still offers it.",
    ),
    cfg.FloatOpt(
        "swift_store_timeout",
        default=60.0,
        min=0.1,
        help="Seconds to wait for Swift (or keystone) to accept a connection, and for "
        "each answer or piece of data after that (Glance waited forever).",
    ),
]


def register_http_store_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(http_store_opts, group=STORE_GROUP)
    conf.register_opts(external_source_opts)


def register_swift_store_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(swift_store_opts, group=STORE_GROUP)


# The s3 store, in [glance_store] with the names of Glance's s3 store (any S3 endpoint).
s3_store_opts = [
    cfg.StrOpt(
        "s3_store_host",
        help="The S3 endpoint: http(s)://host[:port] (http when no scheme is given).",
    ),
    cfg.StrOpt("s3_store_access_key", secret=True, help="Access key of the S3 account."),
    cfg.StrOpt("s3_store_secret_key", secret=True, help="Secret key of the S3 account."),
    cfg.StrOpt("s3_store_bucket", help="Bucket images are written to."),
    cfg.BoolOpt(
        "s3_store_create_bucket_on_put",
        default=False,
        help="Create s3_store_bucket on an upload when it does not exist; otherwise such "
        "an upload fails with 503 saying so.",
    ),
    cfg.StrOpt(
        "s3_store_bucket_url_format",
        default="auto",
        choices=("auto", "virtual", "path", "subdomain"),
        help="How the bucket is named in request URLs: 'path' (endpoint/bucket), "
        "'virtual' (bucket.endpoint; 'subdomain' is its old name) or 'auto'.",
    ),
    cfg.IntOpt(
        "s3_store_large_object_size",
        default=100,
        min=1,
        help="Images of this many MiB or more, and those of unknown size, are written as "
        "multipart uploads.",
    ),
    cfg.IntOpt(
        "s3_store_large_object_chunk_size",
        default=10,
        min=5,
        help="Size in MiB of each part of a multipart upload (S3's smallest is 5). An "
        "upload holds at most s3_store_thread_pools + 1 parts in memory.",
    ),
    cfg.IntOpt(
        "s3_store_thread_pools",
        default=10,
        min=1,
        help="How many parts of one multipart upload are sent to S3 at the same time, "
        "each from a part buffer of its own: an upload's memory is at most this many "
        "parts plus the one being filled, whatever the image size.",
    ),
    cfg.FloatOpt(
        "s3_store_timeout",
        default=60.0,
        min=0.1,
        help="Seconds to wait for the S3 endpoint to accept a connection, and for each "
        "answer or piece of data after that.",
    ),
]


def register_s3_store_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(s3_store_opts, group=STORE_GROUP)
