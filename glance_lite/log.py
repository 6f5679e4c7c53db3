"""Logging set-up from the oslo.log-compatible options debug, log_file and log_dir."""

import logging
import os

FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"


def setup(conf, service: str) -> None:
    handler: logging.Handler
    if conf.log_file:
        path = conf.log_file
        if conf.log_dir and not os.path.isabs(path):
            path = os.path.join(conf.log_dir, path)
        handler = logging.FileHandler(path)
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if conf.debug else logging.INFO)
    for noisy in ("routes", "urllib3", "stevedore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger(service).debug("logging configured")
