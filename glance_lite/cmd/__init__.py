"""Console-script entry points. Each is thin: `serve()` does what every server shares."""


def serve(service: str, register, argv: list[str] | None, check=None) -> None:
    """Run `service` (glance-api or glance-registry) until it is told to stop.

    Monkey-patching comes first, before anything imports sockets or threads; then the
    config (with `register` declaring the options), logging, the service's own start-up
    `check(conf)` (raise ConfigError to refuse), and the server.
    """
    from glance_lite import server

    server.monkey_patch()

    from glance_lite import config, exceptions, log, wsgi

    try:
        conf = config.load(service, register, argv)
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
        if check is not None:
            check(conf)
        svc.serve()
    except exceptions.ConfigError as exc:
        server.fail(str(exc))
