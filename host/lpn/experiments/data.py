"""Data shared by several experiments: scikit-learn's digits, split once."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

DIGITS_TRAIN = 1300  # the remaining ~500 samples are the test set


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.data))
    return d.data[order] / 16.0, d.target[order]


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test), pixels scaled to [0, 1], in a fixed shuffled order."""
    X, y = _digits()
    n = DIGITS_TRAIN
    return X[:n], y[:n], X[n:], y[n:]
