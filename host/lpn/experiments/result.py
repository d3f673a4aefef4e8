"""What an experiment hands back: its measured numbers and whether its claim holds."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How a metric is shown: a fraction as a percentage, a difference of fractions in
# points, or a plain number.
FORMATS = ("percent", "points", "number", "ratio", "count")


@dataclass(frozen=True)
class Metric:
    key: str          # identifier used in JSON
    label: str        # what the table shows
    value: float
    format: str = "number"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"metric {self.key}: unknown format {self.format!r}")

    def text(self) -> str:
        v = self.value
        if self.format == "percent":
            return f"{100 * v:.1f}%"
        if self.format == "points":
            return f"{100 * v:+.1f} pts"
        if self.format == "ratio":
            return f"{v:.3f}"
        if self.format == "count":
            return f"{int(v)}"
        return f"{v:.4g}"


@dataclass
class ExperimentResult:
    """One experiment run on one backend ("float" or "fixed")."""
    experiment: str
    kind: str
    quick: bool
    claim: str
    passed: bool
    metrics: list[Metric]
    design: dict[str, Any] = field(default_factory=dict)  # sizes and settings, for the record
    seconds: float = 0.0

    def __getitem__(self, key: str) -> float:
        for m in self.metrics:
            if m.key == key:
                return m.value
        raise KeyError(f"{self.experiment}: no metric {key!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment, "kind": self.kind, "quick": self.quick,
            "claim": self.claim, "passed": bool(self.passed),
            "metrics": {m.key: float(m.value) for m in self.metrics},
            "design": self.design, "seconds": round(self.seconds, 3),
        }
