"""Continual-learning metrics on an accuracy matrix.

`R[i][j]` is the accuracy on task j's test set after learning tasks 0..i. Entries
with j > i (tasks not yet learnt) are NaN and never enter a metric. Accuracies are
fractions in [0, 1]; forgetting is a difference of fractions (0.01 = 1 point).
"""
from __future__ import annotations

import numpy as np


def _square(R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"an accuracy matrix is square (tasks x tasks), got shape {R.shape}")
    lower = np.tril(np.ones_like(R, dtype=bool))
    if np.isnan(R[lower]).any():
        raise ValueError("the accuracy matrix has a missing entry R[i][j] with j <= i")
    return R


def average_accuracy(R) -> float:
    """Mean accuracy over every task after the last one was learnt (the last row)."""
    R = _square(R)
    return float(R[-1].mean())


def per_task_forgetting(R) -> np.ndarray:
    """For each task j but the last: its best accuracy before the end minus its final one.

    The best is taken over i = j .. T-2 (Chaudhry et al., 2018), so a task that only got
    better has negative forgetting (it was helped by what came later).
    """
    R = _square(R)
    T = len(R)
    return np.array([R[j:T - 1, j].max() - R[T - 1, j] for j in range(T - 1)])


def forgetting(R) -> float:
    """Mean of `per_task_forgetting`; NaN for a single task, where nothing can be forgotten."""
    f = per_task_forgetting(R)
    return float(f.mean()) if len(f) else float("nan")


def backward_transfer(R) -> float:
    """Mean over tasks j < T-1 of R[T-1][j] - R[j][j] (negative when learning later tasks hurt)."""
    R = _square(R)
    T = len(R)
    if T < 2:
        return float("nan")
    return float(np.mean([R[T - 1, j] - R[j, j] for j in range(T - 1)]))


def just_learnt_accuracy(R) -> float:
    """Mean of the diagonal: how well each task was learnt right after learning it (plasticity)."""
    R = _square(R)
    return float(np.diag(R).mean())
