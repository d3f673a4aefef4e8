"""Shared fixtures: small configs that exercise every mechanism, and the digits data."""
from __future__ import annotations

import numpy as np
import pytest

from lpn.config import LPNConfig


def small_config(**overrides) -> LPNConfig:
    """A 6x6-input, two-layer net with every mechanism switched on and short periods."""
    data = dict(
        name="small", seed=7, hidden_error="feedback",
        input=dict(shape=[6, 6], tags=[0x00FF, 0xFF00, 0x0FF0]),
        layers=[
            dict(shape=[3, 3], channels=2, radius=2.0, tag_min=2, fan_in=8, activation="relu", init=0.3),
            dict(shape=[4], position="center", fan_in=18, activation="identity", init=0.05),
        ],
        learning=dict(eta=0.1, evap_g_period=4),
        budget=dict(initial=0.3, min=0.1, max=0.8, boost_units=2),
        consolidation=dict(enabled=True, every=37, lam=0.05),
        replay=dict(enabled=True, capacity=8, every=3, count=1, conflict_count=1),
        structural=dict(enabled=True, every=11, w_min=0.05, g_min=0.5, widen=2.0),
        tasks=dict(count=2, masks=[[0, 1], [2, 3]]),
    )
    for dotted, value in overrides.items():
        target = data
        parts = dotted.split("__")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = value
    return LPNConfig.from_dict(data)


@pytest.fixture
def small_cfg() -> LPNConfig:
    return small_config()


def stream(cfg: LPNConfig, n: int, seed: int = 0, saturate: bool = False):
    """A deterministic stream of (x, label, task) samples for `cfg`'s input size."""
    rng = np.random.default_rng(seed)
    n_in = cfg.sizes[0]
    masks = [np.flatnonzero(cfg.task_mask(t)) for t in range(cfg.tasks.count)]
    for i in range(n):
        task = (i // 50) % cfg.tasks.count
        x = rng.uniform(0, 1, n_in)
        if saturate and i % 7 == 0:
            x = x * 40 - 20  # far outside the input format: exercises saturation
        label = int(rng.choice(masks[task]))
        yield x, label, task


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(d.data))
    return d.data[idx] / 16.0, d.target[idx]
