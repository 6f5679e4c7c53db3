"""glance-api: serve the image API's paste pipeline on the eventlet server."""

import sys

from glance_lite.server import green

green.monkey_patch()  # before anything else imports sockets or threads

from glance_lite import opts
from glance_lite.api import leases
from glance_lite.cmd import serve


def main(argv: list[str] | None = None) -> None:
    # each serving process sweeps the uploads whose lease expired (api/leases.py)
    serve.serve("glance-api", opts.register_api_opts, argv, background=leases.sweep_forever)


if __name__ == "__main__":
    sys.exit(main())
