"""5. Structural plasticity: a target that needs inputs outside the initial neighbourhoods.

Each output unit starts connected to the inputs within `radius` of it. Its target
uses two of those inputs and two inputs farther away (but within the regrowth
radius, radius * widen), which no fixed-wiring unit can see. With structural
plasticity, every `every` steps a synapse whose weight stayed small is pruned and
its slot regrows to a random compatible input not yet connected; slots that land
on a needed input grow a large weight and stay.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..config import LPNConfig
from ..topology import build_topology
from . import models
from .result import ExperimentResult, Metric

NAME = "structural"
TITLE = "Structural plasticity"
CLAIM = ("rewiring connects >= 50% of the needed inputs outside the initial neighbourhoods "
         "and cuts the test MSE by at least half against fixed wiring")
MIN_REACHED = 0.5
MAX_MSE_FRACTION = 0.5
RADIUS, WIDEN = 3.0, 2.5
NOISE = 0.05


@dataclass(frozen=True)
class Size:
    inputs: int
    units: int
    train: int
    test: int


FULL = Size(inputs=48, units=6, train=4000, test=4000)
QUICK = Size(inputs=32, units=4, train=1500, test=1000)


def config(size: Size, rewiring: bool) -> LPNConfig:
    return LPNConfig.from_dict(dict(
        name="structural", seed=6,
        input=dict(shape=[size.inputs], range=[-1.0, 1.0]),
        layers=[dict(shape=[size.units], radius=RADIUS, fan_in=6, init=0.0)],
        learning=dict(eta=0.05),
        budget=dict(initial=0.5, min=0.1),
        # While a unit cannot reach its target its error stays large, and every synapse
        # it updates, useful or not, collects a long-term trail near the trail's ceiling
        # (255/64). A g_min below that level would protect the useless synapses exactly
        # when rewiring is needed, so g_min sits at the ceiling and |w| < w_min decides.
        structural=dict(enabled=rewiring, every=25, w_min=0.1, g_min=4.0, widen=WIDEN)))


@dataclass
class FarTarget:
    needed: list[list[int]]   # per unit: the inputs its target uses
    outside: list[list[int]]  # per unit: those beyond its initial neighbourhood
    coef: np.ndarray          # (units, 4)

    @classmethod
    def make(cls, cfg: LPNConfig, rng: np.random.Generator) -> "FarTarget":
        topo = build_topology(cfg)
        layer = topo.layers[0]
        inputs = topo.positions[0][:, 0] / 256.0
        needed, outside = [], []
        for j in range(layer.units):
            near = layer.src[j, : layer.count[j]]
            d = np.abs(inputs - topo.positions[1][j, 0] / 256.0)
            far = np.flatnonzero((d > RADIUS) & (d <= RADIUS * WIDEN))
            picked_far = sorted(int(i) for i in rng.choice(far, 2, replace=False))
            needed.append(sorted(int(i) for i in rng.choice(near, 2, replace=False)) + picked_far)
            outside.append(picked_far)
        coef = rng.choice([-1.0, 1.0], (layer.units, 4)) * rng.uniform(0.5, 1.0, (layer.units, 4))
        return cls(needed, outside, coef)

    def sample(self, n: int, n_inputs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        X = rng.uniform(-1, 1, (n, n_inputs))
        Y = np.stack([X[:, idx] @ c for idx, c in zip(self.needed, self.coef)], axis=1)
        return X, Y + NOISE * rng.standard_normal(Y.shape)

    def connected(self, model, which: list[list[int]]) -> float:
        src, count = model.L(1, "src"), model.L(1, "count")
        hits = [i in src[j, : count[j]] for j, idx in enumerate(which) for i in idx]
        return float(np.mean(hits))


def train(kind: str, cfg: LPNConfig, task: FarTarget, data) -> tuple[float, float, float]:
    (Xtr, Ytr), (Xte, Yte) = data
    model = models.build(kind, cfg)
    model.partial_fit(Xtr, Ytr)
    mse = float(((model.predict(Xte) - Yte) ** 2).mean())
    return mse, task.connected(model, task.outside), task.connected(model, task.needed)


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    rng = np.random.default_rng(31)
    task = FarTarget.make(config(size, True), rng)
    data = (task.sample(size.train, size.inputs, rng), task.sample(size.test, size.inputs, rng))
    fixed_mse, _, fixed_needed = train(kind, config(size, False), task, data)
    mse, reach, needed = train(kind, config(size, True), task, data)
    fraction = mse / fixed_mse
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM,
        passed=reach >= MIN_REACHED and fraction <= MAX_MSE_FRACTION,
        metrics=[
            Metric("mse_fixed_wiring", "test MSE, fixed wiring", fixed_mse),
            Metric("mse_rewiring", "test MSE, structural plasticity", mse),
            Metric("mse_fraction", "MSE, rewiring / fixed wiring", fraction, "ratio"),
            Metric("outside_reached", "needed outside inputs connected (rewiring)", reach, "percent"),
            Metric("needed_connected", "all needed inputs connected (rewiring)", needed, "percent"),
            Metric("needed_connected_fixed", "all needed inputs connected (fixed wiring)", fixed_needed,
                   "percent"),
            Metric("noise_variance", "noise variance (floor)", NOISE ** 2),
        ],
        design=dict(asdict(size), radius=RADIUS, widen=WIDEN, noise=NOISE),
        seconds=time.perf_counter() - start)
