"""glance-registry: serve the registry's paste pipeline on the eventlet server."""

import ipaddress
import sys

from glance_lite.server import green

green.monkey_patch()  # before anything else imports sockets or threads

from glance_lite import exceptions, opts
from glance_lite.cmd import serve


def main(argv: list[str] | None = None) -> None:
    serve.serve("glance-registry", opts.register_registry_opts, argv, check=require_secret)


def require_secret(conf) -> None:
    """A registry reachable from other machines must demand the shared secret."""
    if not conf.registry_shared_secret and not is_loopback(conf.bind_host):
        raise exceptions.ConfigError(
            f"bind_host is {conf.bind_host}, which is not a loopback address: set "
            "registry_shared_secret in [DEFAULT] so that only glance-api and the other "
            "tools that know it can reach the registry"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
