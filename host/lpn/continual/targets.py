"""How a class label becomes the target vector an LPN learns, in the model's own numbers.

- ``onehot``: the label's output is taught 1 and every other output 0 (what
  `partial_fit` does). Under class-incremental learning this pushes the old
  classes' outputs towards 0 on every new sample, and the last task wins.
- ``soft[:CAP]``: the label's output is taught 1; every other output is taught
  its *own current value*, capped at CAP (default 0.5). An output at or below the
  cap gets no error at all, so old classes are pushed down only where they would
  compete. The targets are what the replay buffer stores, so a replayed sample
  also asks the other outputs to stay where they were when it was stored: replay
  doubles as distillation of the model's earlier outputs.

Soft targets need the model's outputs before each learning step (a predict, then
a learn with an explicit target vector); any backend that can do both, a device
included, codes targets with `code_targets` on the outputs it reads back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("onehot", "soft")
DEFAULT_CAP = 0.5


@dataclass(frozen=True)
class TargetCoding:
    kind: str = "onehot"
    cap: float = DEFAULT_CAP

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown target coding {self.kind!r} (expected one of {', '.join(KINDS)})")
        if not np.isfinite(self.cap) or not -1.0 <= self.cap <= 1.0:
            raise ValueError(f"the soft-target cap must be a number in [-1, 1], got {self.cap}")

    @classmethod
    def parse(cls, text: str) -> "TargetCoding":
        """'onehot', 'soft' or 'soft:0.4'."""
        kind, _, arg = text.partition(":")
        if not arg:
            return cls(kind)
        if kind != "soft":
            raise ValueError(f"target coding {kind!r} takes no argument, got {text!r}")
        try:
            cap = float(arg)
        except ValueError:
            raise ValueError(f"soft-target cap must be a number, got {arg!r}") from None
        return cls(kind, cap)

    def __str__(self) -> str:
        return self.kind if self.kind == "onehot" else f"soft:{self.cap:g}"

    @property
    def needs_outputs(self) -> bool:
        return self.kind == "soft"


def code_targets(outputs: np.ndarray, label: int, one: int | float, cap: int | float) -> np.ndarray:
    """Soft targets from one sample's outputs, in the outputs' own number domain.

    `one` and `cap` are 1.0 and the cap in that domain: floats for the float model,
    integers in the output format (1.0 = 2^fa[L]) for a fixed-point one.
    """
    t = np.minimum(np.asarray(outputs), cap)
    t[label] = one
    return t
