"""glance-registry: serve the registry's paste pipeline on the eventlet server."""

import ipaddress
import sys


def main(argv: list[str] | None = None) -> None:
    from glance_lite import server

    server.monkey_patch()

    from glance_lite import config, exceptions, log, wsgi

    service = "glance-registry"
    try:
        conf = config.load(service, config.register_registry_opts, argv)
    except Exception as exc:  # oslo.config's errors carry a readable message
        server.fail(str(exc))
    config.set(conf)
    log.setup(conf, service)
    if not conf.registry_shared_secret and not is_loopback(conf.bind_host):
        server.fail(
            f"bind_host is {conf.bind_host}, which is not a loopback address: set "
            "registry_shared_secret in [DEFAULT] so that only glance-api and the other "
            "tools that know it can reach the registry"
        )
    svc = server.Service(
        service,
        conf,
        lambda: wsgi.load_paste_app(conf, service),
        config.DEFAULT_PORTS[service],
    )
    try:
        svc.serve()
    except exceptions.ConfigError as exc:
        server.fail(str(exc))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
