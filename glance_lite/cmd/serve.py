"""What glance-api and glance-registry share: load the config, set up logging, check,
serve. The entry points have monkey-patched eventlet before importing this."""

import sys

from glance_lite import config, exceptions, log, offload, wsgi
from glance_lite.server import green, workers


def serve(service: str, register, argv: list[str] | None, check=None, background=None) -> None:
    """Run `service` (glance-api or glance-registry) until it is told to stop.

    `register` declares the options; `check(conf)`, the service's own start-up check,
    raises ConfigError to refuse; `background(conf)` runs beside the app in each serving
    process, from its start.
    """
    try:
        conf = config.load(service, register, argv)
    except Exception as exc:  # oslo.config's errors carry a readable message
        fail(str(exc))
    config.set(conf)
    offload.use(green.ThreadPool())
    log.setup(conf, service)
    svc = workers.Service(
        service,
        conf,
        lambda: wsgi.load_paste_app(conf, service),
        config.DEFAULT_PORTS[service],
        None if background is None else lambda: background(conf),
    )
    try:
        if check is not None:
            check(conf)
        svc.serve()
    except exceptions.ConfigError as exc:
        fail(str(exc))


def fail(message: str) -> None:
    """Stop a console script at start-up the way Glance's do: `ERROR: <message>`, status 1."""
    sys.exit(f"ERROR: {message}")
