"""scikit-learn learners run on the same stream as the LPN, behind the same interface.

- fine-tuned MLP and linear SGD: `partial_fit` on each task in turn, nothing else;
- the MLP with experience replay in a buffer of the LPN's replay size in bytes;
- joint training (every task's data at once, shuffled): the upper bound.

Every baseline declares the stream's classes on its first `partial_fit`, as the LPN
has an output for every class from the start. With a task id (task-incremental),
a prediction is the best-scoring class among that task's classes.
"""
from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from ..fixedpoint import frac_bits_for, quantise

# The MLP matches the LPN's hidden width (4x4 fields x 8 channels). Adam with small
# batches and a rate of 1e-2 learns each two-class task to high accuracy in one or
# two passes, so the baselines are not handicapped in plasticity.
MLP_HIDDEN = 128
MLP_LEARNING_RATE = 1e-2
MLP_BATCH = 16
SGD_ALPHA = 1e-4
LABEL_BYTES = 1  # a class label stored in the replay buffer (uint8; uint16 above 255)


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=(MLP_HIDDEN,), learning_rate_init=MLP_LEARNING_RATE,
                         batch_size=MLP_BATCH, random_state=seed)


def _sgd(seed: int) -> Any:
    from sklearn.linear_model import SGDClassifier
    return SGDClassifier(alpha=SGD_ALPHA, random_state=seed)


class ReplayBuffer:
    """Reservoir sampling into a fixed number of int16-quantised samples with uint8 labels.

    The capacity is whatever fits in `budget_bytes`; `nbytes` counts every stored
    byte (inputs and labels), so the buffer never holds more than its budget.
    """

    def __init__(self, budget_bytes: int, n_features: int, max_abs_input: float, max_label: int,
                 rng: np.random.Generator):
        self.frac = frac_bits_for(max_abs_input)
        self.label_bytes = LABEL_BYTES if max_label < 256 else 2
        self.sample_bytes = 2 * n_features + self.label_bytes
        self.capacity = budget_bytes // self.sample_bytes
        self.x = np.zeros((self.capacity, n_features), dtype=np.int16)
        self.y = np.zeros(self.capacity, dtype=np.uint8 if self.label_bytes == 1 else np.uint16)
        self.seen = 0
        self.rng = rng

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes

    @property
    def filled(self) -> int:
        return min(self.seen, self.capacity)

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        xq = quantise(X, self.frac).astype(np.int16)
        for xi, yi in zip(xq, y):
            if self.seen < self.capacity:
                slot = self.seen
            else:
                slot = int(self.rng.integers(self.seen + 1))
            if slot < self.capacity:
                self.x[slot], self.y[slot] = xi, yi
            self.seen += 1

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.rng.integers(self.filled, size=min(n, self.filled)) if self.filled else np.zeros(0, int)
        return self.x[idx].astype(np.float64) / (1 << self.frac), self.y[idx].astype(np.int64)


class SklearnBackend:
    uses_task_id = False  # learning ignores the task id; only task-incremental prediction uses it

    def __init__(self, estimator: Any, name: str, classes: list[int], task_classes: list[list[int]],
                 replay: ReplayBuffer | None = None):
        self.estimator = estimator
        self.name = name
        self.classes = np.asarray(classes)
        self.task_classes = task_classes
        self.replay = replay

    def learn(self, X: np.ndarray, y: np.ndarray, task: int) -> None:
        Xb, yb = X, y
        if self.replay is not None:
            # Experience replay: each chunk of new samples is learnt together with as
            # many samples drawn from the buffer, then offered to the buffer.
            Xr, yr = self.replay.sample(len(y))
            Xb, yb = np.concatenate([X, Xr]), np.concatenate([y, yr])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings of a single pass
            self.estimator.partial_fit(Xb, yb, classes=self.classes)
        if self.replay is not None:
            self.replay.add(X, y)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        est = self.estimator
        s = est.predict_proba(X) if hasattr(est, "predict_proba") else est.decision_function(X)
        if s.ndim == 1:  # a two-class linear model returns one margin
            s = np.stack([-s, s], axis=1)
        return s

    def predict(self, X: np.ndarray, task: int | None) -> np.ndarray:
        s = self._scores(X)
        if task is not None:
            allowed = np.isin(self.estimator.classes_, self.task_classes[task])
            s = np.where(allowed[None, :], s, -np.inf)
        return self.estimator.classes_[np.argmax(s, axis=1)]

    def consolidate(self) -> None:
        pass

    def state_bytes(self) -> bytes:
        """Parameters as float32, the form a device would hold them in."""
        est = self.estimator
        arrays = (est.coefs_ + est.intercepts_) if hasattr(est, "coefs_") else [est.coef_, est.intercept_]
        out = io.BytesIO()
        for a in arrays:
            out.write(np.asarray(a, dtype="<f4").tobytes())
        return out.getvalue()

    def replay_bytes(self) -> int:
        return self.replay.nbytes if self.replay is not None else 0


def mlp(classes: list[int], task_classes: list[list[int]], seed: int) -> SklearnBackend:
    return SklearnBackend(_mlp(seed), "MLP fine-tune", classes, task_classes)


def sgd(classes: list[int], task_classes: list[list[int]], seed: int) -> SklearnBackend:
    return SklearnBackend(_sgd(seed), "SGD fine-tune", classes, task_classes)


def mlp_replay(classes: list[int], task_classes: list[list[int]], seed: int, budget_bytes: int,
               n_features: int, max_abs_input: float) -> SklearnBackend:
    buffer = ReplayBuffer(budget_bytes, n_features, max_abs_input, max(classes),
                          np.random.default_rng([seed, 7]))
    return SklearnBackend(_mlp(seed), "MLP + replay", classes, task_classes, buffer)


def mlp_joint(classes: list[int], task_classes: list[list[int]], seed: int) -> SklearnBackend:
    return SklearnBackend(_mlp(seed), "MLP joint", classes, task_classes)
