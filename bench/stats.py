"""Figures: repeated samples of one measurement, with the ceiling and target they answer to."""

import math
import operator
from dataclasses import asdict, dataclass, field
from statistics import median

__all__ = ["Figure", "Target", "median", "percentile"]

# Target.op -> how a figure is compared with its bound
OPERATORS = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least pct% of values at or below."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Target:
    """What the lead aims for. `on` is "ratio" (figure / ceiling) or "value" (the figure)."""

    on: str
    op: str  # a key of OPERATORS
    bound: float

    def met(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.bound)

    def text(self, unit: str) -> str:
        if self.on == "ratio":
            return f"ratio {self.op} {self.bound:g}"
        return f"{self.op} {self.bound:g} {unit}"


@dataclass
class Figure:
    name: str
    label: str
    unit: str
    samples: list[float] = field(default_factory=list)
    ceiling: str | None = None  # name of the ceiling Figure this one is divided by
    target: Target | None = None
    group: str = ""

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict:
        data = asdict(self)
        if self.samples:
            data.update(median=self.median, min=self.low, max=self.high)
        return data
