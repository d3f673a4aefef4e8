"""scikit-learn and river style methods shared by every LPN backend.

A backend supplies four things: `_encode_x` / `_encode_t` (floats to its number
domain), `_decode_y` (its outputs back to floats), and `_learn` / `_predict_raw`.
Validation happens here, for a whole batch, before anything is learnt, so a bad
sample anywhere in a batch leaves the model exactly as it was.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class EstimatorMixin:
    config: Any
    classes_: np.ndarray | None = None

    # -- hooks a backend provides ---------------------------------------------
    def _encode_x(self, X: np.ndarray) -> np.ndarray: raise NotImplementedError
    def _encode_t(self, T: np.ndarray) -> np.ndarray: raise NotImplementedError
    def _decode_y(self, Y: np.ndarray) -> np.ndarray: raise NotImplementedError
    def _learn(self, x: np.ndarray, t: np.ndarray, task: int) -> None: raise NotImplementedError
    def _predict_raw(self, x: np.ndarray) -> np.ndarray: raise NotImplementedError
    def _reset(self) -> None: raise NotImplementedError

    # -- validation -------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.config.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.config.sizes[-1]

    def _check_X(self, X: Any) -> np.ndarray:
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X must be numeric: {exc}") from None
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim > 2:  # images: flatten everything after the sample axis
            X = X.reshape(len(X), -1)
        if X.shape[1] != self.n_inputs:
            raise ValueError(f"X has {X.shape[1]} features per sample, the model takes {self.n_inputs}")
        bad = ~np.isfinite(X)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(f"X[{i}, {j}] is {X[i, j]}: inputs must be finite")
        return X

    def _check_task(self, task: Any, n: int) -> np.ndarray:
        tasks = np.broadcast_to(np.asarray(task), (n,)) if np.ndim(task) == 0 else np.asarray(task)
        if tasks.shape != (n,):
            raise ValueError(f"task must be one id or one per sample ({n}), got shape {tasks.shape}")
        if tasks.dtype.kind not in "iu" and not all(float(t).is_integer() for t in tasks):
            raise ValueError(f"task ids must be integers, got {tasks!r}")
        tasks = tasks.astype(np.int64)
        count = self.config.tasks.count
        bad = (tasks < 0) | (tasks >= count)
        if bad.any():
            raise ValueError(f"unknown task id {int(tasks[bad][0])}: the model has {count} task(s), 0..{count - 1}")
        return tasks

    def _targets(self, y: Any, n: int, classes: Any = None) -> np.ndarray:
        """Float target vectors (n, outputs), from class labels or regression targets."""
        if classes is not None:
            classes = np.asarray(classes)
            if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
                raise ValueError("classes must be a 1-D list of distinct labels")
            if len(classes) > self.n_outputs:
                raise ValueError(f"{len(classes)} classes but the model has {self.n_outputs} outputs")
            if self.classes_ is not None and not np.array_equal(self.classes_, classes):
                raise ValueError(f"classes {classes.tolist()} differ from the classes already "
                                 f"learnt {self.classes_.tolist()}")
        known = classes if classes is not None else self.classes_
        y = np.asarray(y)
        if known is not None:
            if y.shape != (n,):
                raise ValueError(f"y must hold one label per sample ({n}), got shape {y.shape}")
            index = {c: i for i, c in enumerate(known.tolist())}
            labels = y.tolist()
            for i, label in enumerate(labels):
                if label not in index:
                    raise ValueError(f"y[{i}] = {label!r} is not one of the declared classes {known.tolist()}")
            T = np.zeros((n, self.n_outputs))
            T[np.arange(n), [index[v] for v in labels]] = 1.0
            return T
        if y.ndim == 1 and self.n_outputs == 1:
            y = y[:, None]
        if y.shape != (n, self.n_outputs):
            raise ValueError(f"y must be labels (pass classes=...) or targets of shape "
                             f"({n}, {self.n_outputs}), got {y.shape}")
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("targets must be finite")
        return y

    # -- scikit-learn ----------------------------------------------------------
    def partial_fit(self, X: Any, y: Any, classes: Any = None, task: Any = 0) -> "EstimatorMixin":
        """Learn each sample once, in order (task: one id or one per sample)."""
        X = self._check_X(X)
        n = len(X)
        T = self._targets(y, n, classes)
        tasks = self._check_task(task, n)
        xq, tq = self._encode_x(X), self._encode_t(T)
        if classes is not None and self.classes_ is None:
            self.classes_ = np.asarray(classes)
        for i in range(n):
            self._learn(xq[i], tq[i], int(tasks[i]))
        return self

    def fit(self, X: Any, y: Any, classes: Any = None, task: Any = 0, epochs: int = 1) -> "EstimatorMixin":
        """Start from a fresh model and learn the data `epochs` times."""
        y_arr = np.asarray(y)
        if classes is None and y_arr.ndim == 1 and (y_arr.dtype.kind in "iub" or y_arr.dtype.kind in "OUS"):
            classes = np.unique(y_arr)
        # Every check runs before the reset: bad input must leave the model as it was.
        n = len(self._check_X(X))
        learnt, self.classes_ = self.classes_, None
        try:
            self._encode_t(self._targets(y, n, classes))
            self._check_task(task, n)
        finally:
            self.classes_ = learnt
        self._reset()
        self.classes_ = None
        for _ in range(epochs):
            self.partial_fit(X, y, classes=classes, task=task)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = self._check_X(X)
        xq = self._encode_x(X)
        return self._decode_y(np.array([self._predict_raw(x) for x in xq]))

    def predict(self, X: Any, task: Any = None) -> np.ndarray:
        """Class labels (argmax over the task's outputs) or regression outputs."""
        out = self.decision_function(X)
        if self.classes_ is None:
            return out[:, 0] if self.n_outputs == 1 and out.ndim == 2 else out
        allowed = np.zeros((len(out), self.n_outputs), dtype=bool)
        allowed[:, : len(self.classes_)] = True
        if task is not None:
            tasks = self._check_task(task, len(out))
            allowed &= np.array([self.config.task_mask(int(t)) for t in tasks])
        scores = np.where(allowed, out, -np.inf)
        return self.classes_[np.argmax(scores, axis=1)]  # argmax: ties to the lower index

    def score(self, X: Any, y: Any, task: Any = None) -> float:
        """Accuracy for a classifier, R^2 for a regressor (as scikit-learn)."""
        pred = self.predict(X, task=task)
        y = np.asarray(y)
        if self.classes_ is not None:
            return float(np.mean(pred == y))
        y = y.reshape(pred.shape)
        ss_res = float(((y - pred) ** 2).sum())
        ss_tot = float(((y - y.mean(axis=0)) ** 2).sum())
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"config": self.config}

    def set_params(self, **params: Any) -> "EstimatorMixin":
        """Change hyper-parameters ('config' or dotted fields such as learning__eta).

        Like scikit-learn's set_params followed by fit, this starts from a fresh model.
        """
        from .config import LPNConfig
        config = params.pop("config", self.config)
        if not isinstance(config, LPNConfig):
            raise ValueError(f"config must be an LPNConfig, got {type(config).__name__}")
        if params:
            config = config.replace(**{k.replace("__", "."): v for k, v in params.items()})
        self.__init__(config)  # type: ignore[misc]
        return self

    # -- river ------------------------------------------------------------------
    def _one(self, x: Any) -> np.ndarray:
        if isinstance(x, dict):
            x = list(x.values())
        return self._check_X(np.asarray(x, dtype=np.float64).reshape(1, -1))

    def learn_one(self, x: Any, y: Any, task: int = 0, classes: Any = None) -> "EstimatorMixin":
        """Learn one sample: a label (declare `classes` on the first call) or a target vector."""
        X = self._one(x)
        labelled = classes is not None or self.classes_ is not None
        yy = np.asarray([y]) if labelled or np.ndim(y) == 0 else np.asarray(y)[None, :]
        return self.partial_fit(X, yy, classes=classes, task=task)

    def predict_one(self, x: Any, task: int | None = None) -> Any:
        out = self.predict(self._one(x), task=task)
        return out[0]
