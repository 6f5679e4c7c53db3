"""glance-registry: serve the registry's paste pipeline on the eventlet server."""

import ipaddress
import sys

from glance_lite import cmd


def main(argv: list[str] | None = None) -> None:
    from glance_lite import config

    cmd.serve("glance-registry", config.register_registry_opts, argv, check=require_secret)


def require_secret(conf) -> None:
    """A registry reachable from other machines must demand the shared secret."""
    from glance_lite import exceptions

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
