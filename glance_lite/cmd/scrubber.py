"""glance-scrubber: remove the data of images deleted with delayed_delete (one pass, or
every wakeup_time seconds with --daemon), or --restore one of them.

A client of glance-registry over HTTP, as an admin, like glance-api (the registry_*
options of its config); it reaches the data through the same store drivers
([glance_store]). glance_lite/scrubber.py does the work.
"""

import logging
import signal
import sys
import time

from glance_lite import config, exceptions, log, opts, store
from glance_lite.context import RequestContext, service_context
from glance_lite.registry.client import client_from_conf
from glance_lite.scrubber import Scrubber, ScrubberError

LOG = logging.getLogger("glance-scrubber")
SERVICE = "glance-scrubber"


def main(argv: list[str] | None = None) -> None:
    try:
        conf = config.load(SERVICE, opts.register_scrubber_opts, argv)
    except Exception as exc:  # oslo.config's errors carry a readable message
        sys.exit(f"ERROR: {exc}")
    log.setup(conf, SERVICE)
    if conf.restore and conf.daemon:
        sys.exit("ERROR: --restore cannot be combined with --daemon")
    try:
        scrubber = Scrubber(
            client_from_conf(conf),
            store.from_conf(conf),
            admin_context(conf),
            scrub_time=conf.scrub_time,
            pool_size=conf.scrub_pool_size,
        )
    except exceptions.ConfigError as err:
        sys.exit(f"ERROR: {err}")
    if conf.restore:
        restore(scrubber, conf.restore)
    elif conf.daemon:
        run_forever(scrubber, conf.wakeup_time)
    else:
        try:
            scrubbed, left = scrubber.run()
        except ScrubberError as err:
            sys.exit(f"ERROR: {err}")
        LOG.info("Scrubbed %d image(s); %d left for the next pass", scrubbed, left)


def admin_context(conf) -> RequestContext:
    return service_context(admin_role=conf.admin_role, owner_is_tenant=conf.owner_is_tenant)


def restore(scrubber: Scrubber, image_id: str) -> None:
    try:
        image = scrubber.restore(image_id)
    except exceptions.GlanceLiteError as err:
        sys.exit(f"ERROR: Image {image_id} could not be restored: {getattr(err, 'detail', err)}")
    print(f"Image {image['id']} restored: it is {image['status']} again")


def run_forever(scrubber: Scrubber, wakeup_time: int) -> None:
    """A pass now and every wakeup_time seconds; a pass that fails (the registry away)
    is logged with its reason and tried again at the next wake-up. SIGTERM and SIGINT
    stop it between passes."""
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    while not stopping:
        try:
            scrubbed, left = scrubber.run()
            LOG.info("Scrubbed %d image(s); %d left for the next pass", scrubbed, left)
        except ScrubberError as err:
            LOG.error("%s; trying again in %d s", err, wakeup_time)
        deadline = time.monotonic() + wakeup_time
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.5, wakeup_time))
    LOG.info("Stopped")


if __name__ == "__main__":
    main()
