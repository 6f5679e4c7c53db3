"""Upload leases seen from glance-api: who is uploading, kept alive, and dead ones swept.

Each api node has an id (`[DEFAULT] node_id`, by default `<hostname>:<bind_port>`), and
each upload a holder of its own, `<node id>#<token>` (repository.Attempt). Setting an
image `saving` takes a lease on it in the same registry call
(ImageRepository.start_saving); the upload's activation and its kill are conditional on
still holding it; while the bytes stream, a `LeaseKeeper` renews it every
third of its duration from a background thread (never per chunk: a 1 GiB upload makes a
handful of calls, a short one none); the registry drops it as the image leaves `saving`.

An api killed mid-upload (SIGKILL, power loss) renews nothing: its lease expires. Every
serving api process runs a `Sweeper` at start-up and every `upload_lease_sweep_interval`
seconds; the registry kills the `saving` images whose lease expired, under row locks
(db/leases.py), and the sweeper removes what the store kept of their data. A live
upload, on this node or another, renews its lease and is never swept; an image set
`saving` without a lease (an older version, Glance) is swept once the lease duration
has passed since it last changed.
"""

import dataclasses
import logging
import random
import socket
import threading
import time
from collections.abc import Callable

from glance_lite import exceptions, offload, store
from glance_lite.api.settle import in_background
from glance_lite.context import RequestContext, service_context
from glance_lite.registry.client import RegistryClient, client_from_conf
from glance_lite.store.base import Stores

LOG = logging.getLogger(__name__)

DEFAULT_API_PORT = 9292
# Seconds between renewals while the registry cannot be reached (at most a third of the
# lease): the lease must not run out because one renewal fell into a short outage.
RETRY_DELAY = 2.0
# Images one sweep call may kill; the sweeper asks again while it gets this many.
SWEEP_BATCH = 100


@dataclasses.dataclass(frozen=True)
class LeaseTerms:
    """Whose leases this node takes, and for how long."""

    node_id: str
    duration: int  # seconds

    @property
    def renew_every(self) -> float:
        return self.duration / 3


def node_id_from_conf(conf) -> str:
    """`[DEFAULT] node_id`, or `<hostname>:<bind_port>`: distinct for api nodes on one
    host that listen on distinct ports (bind_port 0 makes them alike: set node_id)."""
    return conf.node_id or f"{socket.gethostname()}:{conf.bind_port or DEFAULT_API_PORT}"


def terms_from_conf(conf) -> LeaseTerms:
    return LeaseTerms(node_id=node_id_from_conf(conf), duration=conf.upload_lease_duration)


class LeaseKeeper:
    """Renews one upload's lease every terms.renew_every seconds until stopped.

    Used as a context manager around the upload. A renewal the registry refuses (409:
    the image left `saving`, or the lease was swept after the node lost the registry for
    longer than the lease) ends the renewals; the upload then finds out as it activates
    the image (its status is no longer `saving`), as it would after a delete.
    """

    def __init__(
        self,
        registry: RegistryClient,
        context: RequestContext,
        image_id: str,
        terms: LeaseTerms,
        *,
        start: Callable[[Callable[[], None]], None] | None = None,
        holder: str | None = None,
    ):
        """`holder`: the upload's own name in the lease (by default the node's id)."""
        self.registry = registry
        self.context = context
        self.image_id = image_id
        self.terms = terms
        self.holder = holder or terms.node_id
        self.renewals = 0
        self._stopped = threading.Event()
        self._start = start or _in_thread

    def __enter__(self) -> "LeaseKeeper":
        self._start(self._run)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()  # not waited for: a renewal under way ends by itself

    def _run(self) -> None:
        delay = self.terms.renew_every
        while not self._stopped.wait(delay):
            delay = self.renew()
            if delay is None:
                return

    def renew(self) -> float | None:
        """One renewal: the seconds until the next, None to stop."""
        try:
            self.registry.renew_lease(self.context, self.image_id, self.holder, self.terms.duration)
        except exceptions.Conflict as err:
            if not self._stopped.is_set():
                LOG.warning(
                    "upload of image %s: lease renewals stop, the image is no longer "
                    "saving or the lease is another upload's: %s",
                    self.image_id,
                    err,
                )
            return None
        except exceptions.ServiceUnavailable as err:
            LOG.warning("upload of image %s: lease not renewed, retrying: %s", self.image_id, err)
            return min(RETRY_DELAY, self.terms.renew_every)
        except exceptions.GlanceLiteError as err:
            LOG.error("upload of image %s: lease not renewed: %s", self.image_id, err)
            return self.terms.renew_every
        self.renewals += 1
        return self.terms.renew_every


class Sweeper:
    """Kills the uploads whose lease expired, through the registry, and removes their
    partial data from the stores where they can find it."""

    def __init__(
        self,
        registry: RegistryClient,
        stores: Stores,
        context: RequestContext,
        *,
        grace: int,
        interval: float,
    ):
        self.registry = registry
        self.stores = stores
        self.context = context
        self.grace = grace  # seconds after which a `saving` image without a lease is dead
        self.interval = interval

    def sweep(self) -> list[str]:
        """One pass: the ids of the images killed."""
        killed = []
        while True:
            leases = self.registry.sweep_leases(self.context, self.grace, SWEEP_BATCH)
            for lease in leases:
                image_id = lease["image_id"]
                LOG.warning(
                    "image %s killed: its upload (by %s) stopped renewing its lease",
                    image_id,
                    lease.get("holder") or "a node without leases",
                )
                self.stores.discard_partial(image_id, lease.get("partial_location"))
                killed.append(image_id)
            if len(leases) < SWEEP_BATCH:
                return killed

    def run_forever(self, sleep: Callable[[float], None]) -> None:
        """A pass now, then one every interval (give or take a tenth, so that the
        processes of a node do not all ask at once); a pass that fails is logged."""
        while True:
            try:
                self.sweep()
            except exceptions.GlanceLiteError as err:
                LOG.warning("upload lease sweep failed, next try in %gs: %s", self.interval, err)
            except Exception:
                LOG.exception("upload lease sweep failed")
            sleep(self.interval * random.uniform(0.9, 1.1))  # noqa: S311 - spread, not secrecy


def sweep_forever(conf) -> None:
    """The sweeper of a glance-api configuration, run until the process ends: beside
    the app in each serving process (cmd/api.py), with its own registry client and
    the app's stores (store.shared)."""
    try:
        sweeper = Sweeper(
            client_from_conf(conf),
            store.shared(conf, offload=offload.current()),
            service_context(admin_role=conf.admin_role, owner_is_tenant=conf.owner_is_tenant),
            grace=conf.upload_lease_duration,
            interval=conf.upload_lease_sweep_interval,
        )
    except Exception:
        LOG.exception("upload lease sweeper not started")
        return
    sweeper.run_forever(time.sleep)


def _in_thread(fn: Callable[[], None]) -> None:
    in_background(fn, "glance-lite-lease")
