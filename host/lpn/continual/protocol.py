"""The continual-learning protocol: learn the tasks in order, evaluate after each.

Every learner gets the same samples in the same order: within a task, each epoch
is a fresh permutation drawn from a generator seeded by the run's seed alone, so
two learners (or two backends that must agree bit for bit) see identical streams.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import metrics
from .backends import Backend
from .data import Stream

# Samples per `learn` call: the granularity of progress bars and, for the
# scikit-learn baselines, of experience-replay mixing.
LEARN_CHUNK = 32
# Samples per `predict` call when testing is watched by a progress callback. A
# device answers one sample at a time, so a whole test set per call would leave
# the bar still for seconds.
TEST_CHUNK = 32

Progress = Callable[[int], None]


@dataclass
class MethodResult:
    name: str
    role: str                          # "lpn", "baseline" or "upper bound"
    matrix: np.ndarray                 # R[i][j]; NaN where j > i. Joint training: one row.
    replay_bytes: int
    state_bytes: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def sequential(self) -> bool:
        return self.matrix.shape[0] == self.matrix.shape[1]

    @property
    def final(self) -> np.ndarray:
        return self.matrix[-1]

    @property
    def average_accuracy(self) -> float:
        return float(self.final.mean())

    @property
    def forgetting(self) -> float:
        return metrics.forgetting(self.matrix) if self.sequential else math.nan

    @property
    def per_task_forgetting(self) -> list[float]:
        return metrics.per_task_forgetting(self.matrix).tolist() if self.sequential else []

    @property
    def backward_transfer(self) -> float:
        return metrics.backward_transfer(self.matrix) if self.sequential else math.nan

    @property
    def just_learnt(self) -> float:
        return metrics.just_learnt_accuracy(self.matrix) if self.sequential else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "role": self.role,
            "accuracy_matrix": _nan_to_none(self.matrix.tolist()),
            "final_accuracy": _nan_to_none(self.final.tolist()),
            "average_accuracy": _nan_to_none(self.average_accuracy),
            "forgetting": _nan_to_none(self.forgetting),
            "per_task_forgetting": _nan_to_none(self.per_task_forgetting),
            "backward_transfer": _nan_to_none(self.backward_transfer),
            "just_learnt_accuracy": _nan_to_none(self.just_learnt),
            "replay_bytes": self.replay_bytes, "state_bytes": self.state_bytes,
            "seconds": round(self.seconds, 3), **self.details,
        }


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    return None if isinstance(v, float) and math.isnan(v) else v


def accuracy(backend: Backend, stream: Stream, j: int, progress: Progress | None = None) -> float:
    """Accuracy on task j's test set. With `progress`, the set is predicted in chunks
    and the callback gets each chunk's size; `predict` changes no state, so the
    answer is the same either way."""
    task = stream.tasks[j]
    task_id = j if stream.task_id_at_test else None
    if progress is None:
        pred = np.asarray(backend.predict(task.X_test, task_id))
    else:
        parts = []
        for part in _chunks(len(task.y_test), TEST_CHUNK):
            parts.append(np.asarray(backend.predict(task.X_test[part], task_id)))
            progress(part.stop - part.start)
        pred = np.concatenate(parts) if parts else np.empty(0, dtype=task.y_test.dtype)
    return float(np.mean(pred == task.y_test))


def tested_samples(stream: Stream, sequential: bool = True) -> int:
    """How many test samples a run predicts: after each task i, those of tasks 0..i
    (`run_method`); or every task's once (`run_joint`)."""
    sizes = [len(t.y_test) for t in stream.tasks]
    return sum(sum(sizes[:i + 1]) for i in range(len(sizes))) if sequential else sum(sizes)


def _chunks(n: int, size: int = LEARN_CHUNK) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def run_method(backend: Backend, stream: Stream, epochs: int = 1, seed: int = 0, role: str = "lpn",
               progress: Progress | None = None,
               after_task: Callable[[int, Backend], None] | None = None,
               test_progress: Progress | None = None) -> MethodResult:
    """Learn the tasks one after another; after each, test on every task seen so far.

    `progress` gets the number of samples of each `learn` call; `test_progress`, the
    number of test samples of each `predict` call (`tested_samples` in all)."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    start = time.perf_counter()
    T = len(stream.tasks)
    R = np.full((T, T), np.nan)
    rng = np.random.default_rng([seed, 11])
    for i, task in enumerate(stream.tasks):
        for _ in range(epochs):
            order = rng.permutation(len(task.y_train))
            for part in _chunks(len(order)):
                idx = order[part]
                backend.learn(task.X_train[idx], task.y_train[idx], i)
                if progress:
                    progress(len(idx))
        backend.consolidate()
        if after_task:
            after_task(i, backend)
        for j in range(i + 1):
            R[i, j] = accuracy(backend, stream, j, test_progress)
    return MethodResult(backend.name, role, R, backend.replay_bytes(), len(backend.state_bytes()),
                        time.perf_counter() - start)


def run_joint(backend: Backend, stream: Stream, epochs: int = 1, seed: int = 0,
              progress: Progress | None = None, test_progress: Progress | None = None) -> MethodResult:
    """The upper bound: every task's training data at once, shuffled; each sample is
    learnt under its own task id. One row of accuracies, no forgetting."""
    start = time.perf_counter()
    X = np.concatenate([t.X_train for t in stream.tasks])
    y = np.concatenate([t.y_train for t in stream.tasks])
    tasks = np.concatenate([np.full(len(t.y_train), i) for i, t in enumerate(stream.tasks)])
    rng = np.random.default_rng([seed, 13])
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for part in _chunks(len(order)):
            idx = order[part]
            # Runs of samples of the same task, so each run is learnt under its task id
            # (a learner that ignores the id takes the chunk in one call).
            cuts = np.flatnonzero(np.diff(tasks[idx])) + 1 if getattr(backend, "uses_task_id", True) else []
            for run in np.split(idx, cuts):
                backend.learn(X[run], y[run], int(tasks[run[0]]))
            if progress:
                progress(len(idx))
    row = np.array([[accuracy(backend, stream, j, test_progress) for j in range(len(stream.tasks))]])
    return MethodResult(backend.name, "upper bound", row, backend.replay_bytes(),
                        len(backend.state_bytes()), time.perf_counter() - start)
