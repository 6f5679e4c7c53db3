"""PNG plots of a report: throughput by image size against the ceilings, latencies against
theirs, and glance-api's memory growth while streaming."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from bench.scenarios import STREAM_GROWTH_TARGET, size_label

UPLOAD_SERIES = (("upload_length", "upload, Content-Length"), ("upload_chunked", "upload, chunked"))
UPLOAD_CEILINGS = (("md5", "md5 in Python (ceiling)"),)
DOWNLOAD_SERIES = (("download", "download"),)
DOWNLOAD_CEILINGS = (("nginx_get", "nginx GET (ceiling)"),)
LATENCIES = (
    ("head_p50", "noop_head_p50", "HEAD p50"),
    ("head_p99", "noop_head_p99", "HEAD p99"),
    ("list", "noop_list", "list of 1000"),
    ("par_p50", "nginx_par_p50", "parallel GET p50"),
    ("par_p99", "nginx_par_p99", "parallel GET p99"),
)


def write(results: Path, data: dict) -> list[Path]:
    figures = {fig["name"]: fig for fig in data["figures"]}
    sizes = data["meta"]["profile"]["sizes_mib"]
    return [
        _throughput(results / "throughput.png", figures, sizes, data["meta"]),
        _latency(results / "latency.png", figures),
        _memory(results / "memory.png", figures, sizes),
    ]


def _series(ax, figures: dict, prefix: str, sizes: list[int], label: str, style: str) -> None:
    points = [(size, figures.get(f"{prefix}_{size}")) for size in sizes]
    points = [(size, fig) for size, fig in points if fig and fig["samples"]]
    if not points:
        return
    xs = [size for size, _ in points]
    ys = [fig["median"] for _, fig in points]
    errors = [
        [fig["median"] - fig["min"] for _, fig in points],
        [fig["max"] - fig["median"] for _, fig in points],
    ]
    ax.errorbar(xs, ys, yerr=errors, fmt=style, capsize=3, label=label)


def _throughput(path: Path, figures: dict, sizes: list[int], meta: dict) -> Path:
    fig, (up, down) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for prefix, label in UPLOAD_SERIES:
        _series(up, figures, prefix, sizes, label, "o-")
    for prefix, label in UPLOAD_CEILINGS:
        _series(up, figures, prefix, sizes, label, "k--")
    disk = figures.get("disk_fsync")
    if disk and disk["samples"]:
        up.axhline(disk["median"], color="grey", linestyle=":", label="disk write + fsync")
    for prefix, label in DOWNLOAD_SERIES:
        _series(down, figures, prefix, sizes, label, "o-")
    for prefix, label in DOWNLOAD_CEILINGS:
        _series(down, figures, prefix, sizes, label, "k--")
    for name, label, style in (
        ("par_tput", "parallel total", "s"),
        ("nginx_par_tput", "nginx parallel", "kx"),
    ):
        point = figures.get(name)
        if point and point["samples"]:
            down.plot([meta["profile"]["parallel_size_mib"]], [point["median"]], style, label=label)
    for ax, title in ((up, "uploads"), (down, "downloads")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [size_label(s) for s in sizes])
        ax.set_xlabel("image size")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    up.set_ylabel("MiB/s (median, bars: range)")
    fig.suptitle(f"glance-lite throughput ({meta['profile']['name']}, {meta['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _latency(path: Path, figures: dict) -> Path:
    rows = [
        (label, figures.get(ours), figures.get(ceiling))
        for ours, ceiling, label in LATENCIES
        if figures.get(ours) and figures[ours]["samples"]
    ]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = range(len(rows))
    ours = [row[1]["median"] for row in rows]
    ceilings = [row[2]["median"] if row[2] and row[2]["samples"] else 0 for row in rows]
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="glance-lite")
    ax.bar([x + 0.2 for x in xs], ceilings, width=0.4, label="ceiling (no-op chain / nginx)")
    ax.set_xticks(list(xs), [row[0] for row in rows])
    ax.set_yscale("log")
    ax.set_ylabel("ms (median over repeats)")
    ax.set_title("latency against the ceilings")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _memory(path: Path, figures: dict, sizes: list[int]) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    _series(ax, figures, "api_growth", sizes, "glance-api RSS growth (worst process)", "o-")
    bound = STREAM_GROWTH_TARGET.bound
    ax.axhline(bound, color="red", linestyle="--", label=f"target: under {bound:g} MiB")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [size_label(s) for s in sizes])
    ax.set_xlabel("image size")
    ax.set_ylabel("MiB over idle")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
