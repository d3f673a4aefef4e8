"""4. Consolidated conflict: experiment 3 with consolidation when the task changes.

When learning switches from task A to task B the model consolidates: each synapse
is anchored at its weight and strengthened in proportion to its long-term trail,
which marks the synapses A used. B then learns mostly through its own unique,
unconsolidated inputs instead of re-labelling the shared ones.
"""
from __future__ import annotations

import time
from dataclasses import asdict

from .conflicting import CONSOLIDATION, FULL, QUICK, conflict_metrics, sequential_conflict
from .result import ExperimentResult, Metric

NAME = "consolidated"
TITLE = "Consolidated conflict"
CLAIM = "consolidation at the task switch cuts the forgetting of experiment 3 by at least half"
MAX_FRACTION = 0.5


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    plain = sequential_conflict(kind, size)
    kept = sequential_conflict(kind, size, CONSOLIDATION)
    fraction = kept["forgetting"] / plain["forgetting"] if plain["forgetting"] > 0 else float("inf")
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM, passed=fraction <= MAX_FRACTION,
        metrics=conflict_metrics(kept, label="consolidated") + [
            Metric("forgetting_plain", "forgetting of A without consolidation", plain["forgetting"],
                   "points"),
            Metric("forgetting_fraction", "forgetting, consolidated / plain", fraction, "ratio")],
        design=dict(asdict(size), **{k.split(".", 1)[1]: v for k, v in CONSOLIDATION.items()}),
        seconds=time.perf_counter() - start)
