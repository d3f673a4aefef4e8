"""3. Conflicting memory: task B re-labels inputs that drive the same synapses as A.

Each of P key pairs owns a group of inputs: `shared` inputs present in both its
task-A key and its task-B key, plus `unique` inputs private to each. The A key
maps to one class and the B key to a different one. Samples are keys with each
active input dropped with probability `drop`. Most of a key's drive comes from
the shared synapses, so learning B (sequentially, after A) re-labels them and A
is forgotten, although one set of weights that serves both tasks exists (the
unique inputs tell the keys apart); this is what consolidation (experiment 4) and
replay (experiment 6) can exploit.

Experiments 4 and 6 reuse `sequential_conflict` with their mechanism switched on.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import LPNConfig
from . import models
from .result import ExperimentResult, Metric

NAME = "conflicting"
TITLE = "Conflicting memory"
CLAIM = "B is learned (>= 90%) and the forgetting of A it causes is measured (>= 30 points)"
MIN_B_ACCURACY = 0.90
MIN_FORGETTING = 0.30
CLASSES = 8


@dataclass(frozen=True)
class Size:
    pairs: int            # key pairs; the input has pairs * (shared + 2 * unique) units
    samples_per_task: int
    test_per_task: int


FULL = Size(pairs=16, samples_per_task=1600, test_per_task=2000)
QUICK = Size(pairs=8, samples_per_task=400, test_per_task=1000)
SHARED, UNIQUE, DROP = 6, 2, 0.2


def base_config(size: Size) -> LPNConfig:
    n_inputs = size.pairs * (SHARED + 2 * UNIQUE)
    return LPNConfig.from_dict(dict(
        name="conflict", seed=4,
        input=dict(shape=[n_inputs]),
        layers=[dict(shape=[CLASSES], position="center", fan_in=n_inputs, init=0.0)],
        # The long-term trail evaporates over thousands of steps, so after a task
        # it still records which synapses that task used (what consolidation reads).
        learning=dict(eta=0.05, evap_g_shift=6, evap_g_period=64),
        budget=dict(initial=0.5),
        tasks=dict(count=2)))


CONSOLIDATION = {"consolidation.enabled": True, "consolidation.kappa": 40.0,
                 "consolidation.lam": 0.05, "consolidation.on_task_switch": True}
REPLAY = {"replay.enabled": True, "replay.capacity": 64, "replay.every": 1, "replay.count": 2,
          "replay.conflict_count": 2}


@dataclass
class ConflictTask:
    keys_a: np.ndarray
    keys_b: np.ndarray
    labels_a: np.ndarray
    labels_b: np.ndarray

    @classmethod
    def make(cls, size: Size, rng: np.random.Generator) -> "ConflictTask":
        width = SHARED + 2 * UNIQUE
        n = size.pairs * width
        keys_a, keys_b = np.zeros((size.pairs, n)), np.zeros((size.pairs, n))
        for i in range(size.pairs):
            g = i * width
            keys_a[i, g: g + SHARED + UNIQUE] = 1
            keys_b[i, g: g + SHARED] = 1
            keys_b[i, g + SHARED + UNIQUE: g + width] = 1
        labels_a = np.arange(size.pairs) % CLASSES
        labels_b = (labels_a + 1 + rng.integers(0, CLASSES - 1, size.pairs)) % CLASSES
        return cls(keys_a, keys_b, labels_a, labels_b)

    def samples(self, task: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        keys, labels = (self.keys_a, self.labels_a) if task == 0 else (self.keys_b, self.labels_b)
        which = rng.integers(0, len(keys), n)
        return keys[which] * (rng.random((n, keys.shape[1])) >= DROP), labels[which]


def sequential_conflict(kind: str, size: Size, mechanism: dict[str, Any] | None = None) -> dict[str, float]:
    """Learn A (task 0), then B (task 1); accuracies on fresh samples of both."""
    cfg = base_config(size)
    if mechanism:
        cfg = cfg.replace(**mechanism)
    rng = np.random.default_rng(21)
    task = ConflictTask.make(size, rng)
    train_a = task.samples(0, size.samples_per_task, rng)
    train_b = task.samples(1, size.samples_per_task, rng)
    test_a = task.samples(0, size.test_per_task, rng)
    test_b = task.samples(1, size.test_per_task, rng)
    model = models.build(kind, cfg)
    model.partial_fit(*train_a, classes=list(range(CLASSES)), task=0)
    before = model.score(*test_a)
    model.partial_fit(*train_b, task=1)
    after = model.score(*test_a)
    return dict(a_before=before, a_after=after, forgetting=before - after, b_after=model.score(*test_b))


def conflict_metrics(outcome: dict[str, float], label: str = "") -> list[Metric]:
    tail = f" ({label})" if label else ""
    return [
        Metric("a_before", "task A accuracy after learning A" + tail, outcome["a_before"],
               "percent"),
        Metric("a_after", "task A accuracy after learning B" + tail, outcome["a_after"],
               "percent"),
        Metric("forgetting", "forgetting of A" + tail, outcome["forgetting"], "points"),
        Metric("b_after", "task B accuracy" + tail, outcome["b_after"], "percent"),
    ]


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    plain = sequential_conflict(kind, size)
    passed = plain["b_after"] >= MIN_B_ACCURACY and plain["forgetting"] >= MIN_FORGETTING
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM, passed=passed,
        metrics=conflict_metrics(plain),
        design=dict(asdict(size), shared=SHARED, unique=UNIQUE, drop=DROP),
        seconds=time.perf_counter() - start)
