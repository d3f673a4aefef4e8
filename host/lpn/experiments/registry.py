"""The seven experiments of lpn-spec section 15, by name, in the paper's order."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import (conflicting, consolidated, hybrid_memory, partitioned, regression, replay,
               structural)
from .models import KINDS
from .result import ExperimentResult


@dataclass(frozen=True)
class Experiment:
    number: int
    name: str
    title: str
    claim: str
    run: Callable[..., ExperimentResult]   # run(kind, quick=False)


def _entry(number: int, module: ModuleType) -> Experiment:
    return Experiment(number, module.NAME, module.TITLE, module.CLAIM, module.run)


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    _entry(1, regression), _entry(2, partitioned), _entry(3, conflicting), _entry(4, consolidated),
    _entry(5, structural), _entry(6, replay), _entry(7, hybrid_memory))}


def names() -> list[str]:
    return list(EXPERIMENTS)


def run(name: str, kind: str, quick: bool = False) -> ExperimentResult:
    """Run experiment `name` on backend `kind` ("float" or "fixed")."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")
    return EXPERIMENTS[name].run(kind, quick=quick)
