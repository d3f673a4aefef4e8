"""1. Synthetic regression: each output is a linear function of its own neighbourhood.

Output unit j reads the inputs within `radius` of it (its source set). Its target
is a random linear function of exactly those inputs plus Gaussian noise, so the
best any model restricted to the same neighbourhoods can do is the per-unit
least-squares fit. The LPN, learning one sample at a time through its budgeted
pheromone-weighted delta rule, should come close to that fit.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..config import LPNConfig
from ..topology import build_topology
from . import models
from .result import ExperimentResult, Metric

NAME = "regression"
TITLE = "Synthetic regression"
CLAIM = "LPN test MSE within 2x of the least-squares fit on the same neighbourhoods"
MAX_RATIO = 2.0


@dataclass(frozen=True)
class Size:
    inputs: int
    units: int
    train: int
    epochs: int
    test: int


FULL = Size(inputs=48, units=12, train=3000, epochs=2, test=4000)
QUICK = Size(inputs=32, units=8, train=600, epochs=2, test=1000)
NOISE = 0.1


def config(size: Size) -> LPNConfig:
    return LPNConfig.from_dict(dict(
        name="regression", seed=3,
        input=dict(shape=[size.inputs], range=[-1.0, 1.0]),
        layers=[dict(shape=[size.units], radius=2.5, fan_in=6, init=0.0)],
        learning=dict(eta=0.05),
        budget=dict(initial=0.5, min=0.1)))


def local_linear_task(cfg: LPNConfig, rng: np.random.Generator):
    """A sampler of (X, Y) whose unit-j target uses only unit j's source inputs."""
    layer = build_topology(cfg).layers[0]
    used = np.arange(layer.fan_in)[None, :] < layer.count[:, None]
    coef = np.where(used, rng.uniform(-1, 1, layer.src.shape), 0.0)
    offset = rng.uniform(-0.5, 0.5, layer.units)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.uniform(-1, 1, (n, cfg.sizes[0]))
        Y = (coef * X[:, layer.src]).sum(axis=2) + offset + NOISE * rng.standard_normal((n, layer.units))
        return X, Y
    return sample, layer


def least_squares_mse(layer, Xtr, Ytr, Xte, Yte) -> float:
    """Test MSE of the per-unit least-squares fit (with intercept) on each source set."""
    errors = []
    for j in range(layer.units):
        cols = layer.src[j, : layer.count[j]]
        A = np.c_[Xtr[:, cols], np.ones(len(Xtr))]
        w = np.linalg.lstsq(A, Ytr[:, j], rcond=None)[0]
        errors.append(((np.c_[Xte[:, cols], np.ones(len(Xte))] @ w - Yte[:, j]) ** 2).mean())
    return float(np.mean(errors))


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    cfg = config(size)
    sample, layer = local_linear_task(cfg, np.random.default_rng(11))
    Xtr, Ytr = sample(size.train)
    Xte, Yte = sample(size.test)
    model = models.build(kind, cfg)
    for _ in range(size.epochs):
        model.partial_fit(Xtr, Ytr)
    lpn = float(((model.predict(Xte) - Yte) ** 2).mean())
    ls = least_squares_mse(layer, Xtr, Ytr, Xte, Yte)
    mean_only = float(((Yte - Ytr.mean(axis=0)) ** 2).mean())
    ratio = lpn / ls
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM, passed=ratio <= MAX_RATIO,
        metrics=[
            Metric("lpn_mse", "LPN test MSE", lpn),
            Metric("least_squares_mse", "least-squares test MSE (same neighbourhoods)", ls),
            Metric("ratio", "LPN / least squares", ratio, "ratio"),
            Metric("noise_variance", "noise variance (floor)", NOISE ** 2),
            Metric("mean_predictor_mse", "MSE of predicting the mean", mean_only),
        ],
        design=dict(asdict(size), noise=NOISE, synapses=int(layer.count.sum())),
        seconds=time.perf_counter() - start)
