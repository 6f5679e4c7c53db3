"""The report: report.json (every figure and sample), report.md (the tables)."""

import json
from pathlib import Path

from bench.session import Session
from bench.stats import Figure, median

RATIO_NOTE = (
    "ratio = figure / ceiling, taken repeat by repeat (each repeat measures both back to "
    "back) and reported as the median and range of those ratios: for a throughput higher "
    "is better, for a latency it is a multiple of the ceiling's time."
)


def ratios(fig: Figure, figures: dict[str, Figure]) -> list[float]:
    """figure / ceiling per repeat when the two were measured in pairs, else of the medians."""
    ceiling = figures.get(fig.ceiling) if fig.ceiling else None
    if not fig.samples or not ceiling or not ceiling.samples:
        return []
    if len(fig.samples) == len(ceiling.samples) and all(ceiling.samples):
        return [ours / top for ours, top in zip(fig.samples, ceiling.samples, strict=True)]
    return [fig.median / ceiling.median] if ceiling.median else []


def met(fig: Figure, value_ratio: float | None) -> bool | None:
    if not fig.target or not fig.samples:
        return None
    value = value_ratio if fig.target.on == "ratio" else fig.median
    return None if value is None else fig.target.met(value)


def build(s: Session, meta: dict) -> dict:
    figures = []
    for fig in s.figures.values():
        entry = fig.as_dict()
        paired = ratios(fig, s.figures)
        entry["ratios"] = paired
        entry["ratio"] = median(paired) if paired else None
        entry["met"] = met(fig, entry["ratio"])
        entry["target"] = fig.target.text(fig.unit) if fig.target else None
        figures.append(entry)
    return {
        "meta": meta,
        "figures": figures,
        "memory": {"phases": memory_by_phase(s.memory), "records": s.memory},
        "notes": s.notes,
        "orders": s.orders,
    }


def memory_by_phase(records: list[dict]) -> list[dict]:
    """Per phase and service: the largest idle, peak and growth over the serving processes
    (the workers; the parent only forks them) and repeats."""
    phases: dict[str, dict] = {}
    for record in records:
        phase = phases.setdefault(record["phase"], {"phase": record["phase"], "services": {}})
        for service, procs in record["services"].items():
            worst = phase["services"].setdefault(
                service, {"idle_mib": 0.0, "peak_mib": 0.0, "growth_mib": 0.0}
            )
            workers = [proc for proc in procs if proc["role"] == "worker"]
            for proc in workers or procs:
                worst["idle_mib"] = max(worst["idle_mib"], proc["idle_mib"])
                worst["peak_mib"] = max(worst["peak_mib"], proc["peak_mib"])
                worst["growth_mib"] = max(worst["growth_mib"], proc["peak_mib"] - proc["idle_mib"])
    return list(phases.values())


def write(results: Path, data: dict) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (results / "report.md").write_text(markdown(data))


def num(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(data: dict) -> str:
    meta = data["meta"]
    by_name = {fig["name"]: fig for fig in data["figures"]}
    lines = [
        f"# glance-lite benchmark ({meta['profile']['name']}), {meta['date']}",
        "",
        *(f"- {line}" for line in meta["summary"]),
        f"- {RATIO_NOTE}",
        "",
        "| figure | median | range | ceiling | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for fig in data["figures"]:
        if fig["group"] != "ceiling":
            lines.append(_figure_row(fig, by_name))
    lines += ["", "## Ceilings", "", "| ceiling | median | range |", "|---|---|---|"]
    for fig in data["figures"]:
        if fig["group"] == "ceiling":
            lines.append(f"| {fig['label']} | {_value(fig)} | {_range(fig)} |")
    lines += [
        "",
        "## Resident memory per phase",
        "",
        "MiB; the largest worker process of each service over all repeats of the phase.",
        "",
        "| phase | glance-api idle | glance-api peak | glance-api growth | glance-registry idle "
        "| glance-registry peak |",
        "|---|---|---|---|---|---|",
    ]
    for phase in data["memory"]["phases"]:
        api = phase["services"]["glance-api"]
        reg = phase["services"]["glance-registry"]
        lines.append(
            f"| {phase['phase']} | {num(api['idle_mib'])} | {num(api['peak_mib'])} "
            f"| {num(api['growth_mib'])} "
            f"| {num(reg['idle_mib'])} | {num(reg['peak_mib'])} |"
        )
    if data["notes"]:
        lines += ["", "## Notes", "", *(f"- {note}" for note in data["notes"])]
    if data.get("orders"):
        lines += [
            "",
            "## Order of measurement",
            "",
            f"Drawn with seed {meta['seed']} (`python -m bench.run --seed {meta['seed']}` "
            "measures in the same order again).",
            "",
            *(f"- {order}" for order in data["orders"]),
        ]
    return "\n".join(lines) + "\n"


def _value(fig: dict) -> str:
    return f"{num(fig.get('median'))} {fig['unit']}" if fig["samples"] else "missing"


def _range(fig: dict) -> str:
    return f"{num(fig['min'])}-{num(fig['max'])}" if fig["samples"] else "—"


def _ratio(fig: dict) -> str:
    if fig["ratio"] is None:
        return "—"
    if len(fig["ratios"]) < 2:
        return num(fig["ratio"])
    return f"{num(fig['ratio'])} ({num(min(fig['ratios']))}-{num(max(fig['ratios']))})"


def _figure_row(fig: dict, by_name: dict) -> str:
    ceiling = by_name.get(fig["ceiling"]) if fig["ceiling"] else None
    if ceiling:
        ceiling_text = f"{ceiling['label']}: {_value(ceiling)}"
    else:
        ceiling_text = "missing" if fig["ceiling"] else "—"
    verdict = {True: "yes", False: "**no**", None: "—"}[fig["met"]]
    return (
        f"| {fig['label']} | {_value(fig)} | {_range(fig)} | {ceiling_text} "
        f"| {_ratio(fig)} | {fig['target'] or '—'} | {verdict} |"
    )
