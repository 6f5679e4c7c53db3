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
