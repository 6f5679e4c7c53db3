"""glance-api: serve the image API's paste pipeline on the eventlet server."""

import sys

from glance_lite import cmd


def main(argv: list[str] | None = None) -> None:
    from glance_lite import config

    cmd.serve("glance-api", config.register_api_opts, argv)


if __name__ == "__main__":
    sys.exit(main())
