"""A service's configuration: loaded once, published for its paste factories.

cmd/ builds a ConfigOpts for its service with `load()` (the options come from opts.py)
and publishes it with `set()`; paste factories read it once with `get()` and hand plain
values to constructors. Also where the paste ini and pipeline of a service are found.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from oslo_config import cfg

T = TypeVar("T")

PROJECT = "glance"
DEFAULT_PORTS = {"glance-api": 9292, "glance-registry": 9191}


def load(
    service: str, register, argv: list[str] | None = None, default_config_files=None
) -> cfg.ConfigOpts:
    """Parse the command line and config files of one service into a new ConfigOpts."""
    conf = cfg.ConfigOpts()
    register(conf)
    conf(
        args=sys.argv[1:] if argv is None else argv,
        project=PROJECT,
        prog=service,
        default_config_files=default_config_files,
    )
    return conf


_current: cfg.ConfigOpts | None = None


def set(conf: cfg.ConfigOpts) -> None:
    """Publish the service's configuration for the paste factories."""
    global _current
    _current = conf


def get() -> cfg.ConfigOpts:
    if _current is None:
        raise RuntimeError("configuration read before a service loaded it")
    return _current


class PerProcess(Generic[T]):
    """What `build(*args)` makes from a service's configuration, made once per process:
    the paste factories and the background work of one serving process (built apart)
    share it. The same arguments (the very objects) in the same process get what was
    made for them; others (a reload's configuration) or a child forked after the build
    (another pid) make their own, and only the latest is kept."""

    def __init__(self, build: Callable[..., T]):
        self._build = build
        self._held: tuple[int, tuple, T] | None = None

    def __call__(self, *args) -> T:
        held = self._held
        pid = os.getpid()
        if held is None or held[0] != pid or not _same(held[1], args):
            held = self._held = (pid, args, self._build(*args))
        return held[2]

    def clear(self) -> None:
        self._held = None


def _same(held: tuple, args: tuple) -> bool:
    return len(held) == len(args) and all(a is b for a, b in zip(held, args, strict=True))


def default_workers() -> int:
    return min(os.cpu_count() or 1, 8)


def shipped_etc_dirs() -> list[Path]:
    """Where glance-lite's own sample files live: the source tree, then the install."""
    here = Path(__file__).resolve().parent.parent / "etc"
    installed = Path(sys.prefix) / "share" / "glance-lite" / "etc"
    return [here, installed]


def paste_config_path(conf: cfg.ConfigOpts, service: str) -> Path:
    """Find the paste ini of `service` as Glance does, then fall back to the shipped one."""
    name = conf.paste_deploy.config_file
    if name and os.path.isabs(name):
        candidates = [Path(name)]
    else:
        name = name or f"{service}-paste.ini"
        dirs = [Path(f).resolve().parent for f in reversed(conf.config_file or [])]
        dirs += [Path(d) for d in conf.config_dir or []]
        dirs += [Path(d).expanduser() for d in ("~/.glance", "~", "/etc/glance", "/etc")]
        dirs += shipped_etc_dirs()
        candidates = [d / name for d in dirs]
    for path in candidates:
        if path.is_file():
            return path
    raise cfg.ConfigFilesNotFoundError([str(c) for c in candidates])


def pipeline_name(conf: cfg.ConfigOpts, service: str) -> str:
    flavor = conf.paste_deploy.flavor
    return f"{service}-{flavor}" if flavor else service
