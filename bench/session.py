"""What one bench run shares: the servers, the work directory, the figures and the memory
records; the scenarios (bench/scenarios.py) add to them."""

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.memory import RssWatch
from bench.nginx import Nginx
from bench.profiles import Profile
from bench.services import BareSendfile, Glance, NoopChain, ServerProcess
from bench.stats import Figure, Target


@dataclass
class Session:
    profile: Profile
    workdir: Path
    glance: Glance
    noop: NoopChain
    nginx: Nginx | None  # None when nginx could not be had
    bare: BareSendfile  # the bare sendfile() server, the other download ceiling
    seed: int = 0  # of the order the systems are measured in within each repeat
    db: str = "sqlite"  # the registry's database
    # the no-op chain whose backend does the registry's database work (bench/floor.py);
    # None where it is not measured (a database other than SQLite)
    floor: NoopChain | None = None
    # the same, both its servers behind webob and routes (bench/floor.py --framed)
    stack_floor: NoopChain | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    memory: list[dict] = field(default_factory=list)  # one record per watched operation
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    orders: list[str] = field(default_factory=list)  # each repeat's order, as it ran
    # Appended to every figure's key and label while a second setting of the same
    # scenarios is measured (the PostgreSQL profile's one worker per service).
    variant: str = ""
    variant_label: str = ""
    # the second glance-api, with an image cache in cache_dir (the `cache` part only)
    caching_api: ServerProcess | None = None
    cache_dir: Path | None = None
    rng: random.Random = field(init=False)

    def floors(self) -> dict[str, tuple[str, NoopChain]]:
        """The floors measured in this session: name -> (figure key prefix, chain)."""
        found = {
            "database floor": ("floor", self.floor),
            "stack floor": ("stack_floor", self.stack_floor),
        }
        return {name: (key, chain) for name, (key, chain) in found.items() if chain}

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def api_url(self) -> str:
        return self.glance.api.url

    @property
    def gate_dir(self) -> Path:
        """Where the FIFOs that start client processes together are made."""
        return self.workdir / "gate"

    def figure(
        self,
        name: str,
        label: str,
        unit: str,
        *,
        ceiling: str | None = None,
        target: Target | None = None,
        group: str = "",
    ) -> Figure:
        """The figure called `name` (in the current variant), made on first use."""
        name += self.variant
        if name not in self.figures:
            ceiling = ceiling + self.variant if ceiling else None
            label += self.variant_label
            self.figures[name] = Figure(name, label, unit, [], ceiling, target, group)
        return self.figures[name]

    def add(self, name: str, value: float) -> None:
        self.figures[name + self.variant].samples.append(value)

    @contextlib.contextmanager
    def watch(self, phase: str, api: ServerProcess | None = None) -> Iterator[RssWatch]:
        """Record per-process RSS of glance-api (`api`, by default the bench's first one)
        and glance-registry around one operation."""
        services = {
            "glance-api": (api or self.glance.api).pids(),
            "glance-registry": self.glance.registry.pids(),
        }
        with RssWatch(services) as watch:
            yield watch
        self.memory.append(
            {
                "phase": phase,
                "services": {
                    name: [vars(proc) for proc in procs] for name, procs in watch.result.items()
                },
            }
        )

    def in_random_order(self, what: str, steps: dict[str, Callable[[], None]]) -> None:
        """Run `steps` (one measurement of each system) in an order drawn from the seeded
        generator, and record it: what ran right before a measurement (nginx's download
        leaves other things in the caches than another api download) then falls on every
        system alike, and the same seed measures in the same order again."""
        names = list(steps)
        self.rng.shuffle(names)
        self.orders.append(f"{what}: {', '.join(names)}")
        for name in names:
            steps[name]()

    def delete_image(self, image_id: str) -> None:
        resp = requests.delete(f"{self.api_url}/v1/images/{image_id}", timeout=60)
        if resp.status_code != 200:
            raise RuntimeError(f"delete of {image_id} answered {resp.status_code}: {resp.text}")

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)
