"""glance-api: serve the image API's paste pipeline on the eventlet server."""

import sys


def main(argv: list[str] | None = None) -> None:
    from glance_lite import server

    server.monkey_patch()

    from glance_lite import config, exceptions, log, wsgi

    service = "glance-api"
    try:
        conf = config.load(service, config.register_api_opts, argv)
    except Exception as exc:  # oslo.config's errors carry a readable message
        server.fail(str(exc))
    config.set(conf, offload=server.thread_offload)
    log.setup(conf, service)
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


if __name__ == "__main__":
    sys.exit(main())
