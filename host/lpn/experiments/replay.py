"""6. Replay: experiment 3 with a replay buffer.

Every new sample enters a reservoir-sampled buffer; after each one, buffered
samples are learned again, and more of them while the loss jumps (a conflict).
While B is learnt the buffer still holds many A samples, so the two tasks are
interleaved and the weights settle where both are served.
"""
from __future__ import annotations

import time
from dataclasses import asdict

from .conflicting import FULL, QUICK, REPLAY, conflict_metrics, sequential_conflict
from .result import ExperimentResult, Metric

NAME = "replay"
TITLE = "Replay"
CLAIM = "replay cuts the forgetting of experiment 3 by at least half"
MAX_FRACTION = 0.5


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    plain = sequential_conflict(kind, size)
    replayed = sequential_conflict(kind, size, REPLAY)
    fraction = replayed["forgetting"] / plain["forgetting"] if plain["forgetting"] > 0 else float("inf")
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM, passed=fraction <= MAX_FRACTION,
        metrics=conflict_metrics(replayed, label="replay") + [
            Metric("forgetting_plain", "forgetting of A without replay", plain["forgetting"], "points"),
            Metric("forgetting_fraction", "forgetting, replay / plain", fraction, "ratio")],
        design=dict(asdict(size), **{k.split(".", 1)[1]: v for k, v in REPLAY.items()}),
        seconds=time.perf_counter() - start)
