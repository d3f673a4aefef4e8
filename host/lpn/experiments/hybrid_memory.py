"""7. Long-context hybrid memory: old associations in consolidated weights, recent
ones through the short-term trail.

Each association maps a key (a private group of KEY_INPUTS inputs, all 1) to a
class. The stream is:

1. old keys, each learned many times, then `consolidate()`;
2. many intervening samples: random patterns over all inputs with random labels,
   which slowly overwrite whatever the synapses they touch remember;
3. recent keys, each seen only `presentations` times in a row;
4. a few more intervening samples; then every key is recalled (argmax).

The learning rate is small, so a key seen three times is learned only because the
short-term trail that the first presentation deposits multiplies the learning
rate of the next ones (alpha_s). That same boosted plasticity lets the
intervening samples wipe out the old keys, unless consolidation has anchored
their synapses. The trail affects learning, never the forward pass.

Ablations: no trails (every alpha, gamma and deposit 0, which also leaves the long-term
trail, hence consolidation, empty), no short-term boost (alpha_s = gamma_s = 0),
and no consolidation.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..config import LPNConfig
from . import models
from .result import ExperimentResult, Metric

NAME = "hybrid"
TITLE = "Long-context hybrid memory"
CLAIM = ("old and recent associations both recalled >= 90%; without trails, and without "
         "consolidation, one of them falls below 90%")
MIN_RECALL = 0.90
CLASSES = 8
KEY_INPUTS = 5
DENSITY = 0.1  # fraction of inputs active in an intervening sample


@dataclass(frozen=True)
class Size:
    keys: int             # per set (old, recent); the input has 2 * keys * KEY_INPUTS units
    old_epochs: int
    intervening: int      # samples between the old and the recent keys
    presentations: int    # times each recent key is seen, consecutively
    tail: int             # intervening samples after the last recent key


FULL = Size(keys=24, old_epochs=20, intervening=4000, presentations=3, tail=20)
QUICK = Size(keys=16, old_epochs=20, intervening=3000, presentations=3, tail=20)

TRAILS = ("alpha_s", "alpha_g", "gamma_s", "gamma_g", "deposit_s", "deposit_g")
VARIANTS = {
    "full": {},
    "no_trails": {f"learning.{name}": 0.0 for name in TRAILS},
    "no_boost": {"learning.alpha_s": 0.0, "learning.gamma_s": 0.0},
    "no_consolidation": {"consolidation.enabled": False},
}
LABELS = {"full": "full model", "no_trails": "no trails", "no_boost": "no short-term boost",
          "no_consolidation": "no consolidation"}


def config(size: Size) -> LPNConfig:
    n = 2 * size.keys * KEY_INPUTS
    return LPNConfig.from_dict(dict(
        name="hybrid", seed=9,
        input=dict(shape=[n]),
        layers=[dict(shape=[CLASSES], position="center", fan_in=n, init=0.0)],
        learning=dict(eta=0.005, alpha_s=16.0, alpha_g=0.0, gamma_s=1.0, gamma_g=0.0,
                      deposit_s=1.0, deposit_g=0.25, evap_s_shift=2,
                      # a long-term trail that outlives the old phase, for consolidation
                      evap_g_shift=6, evap_g_period=64),
        # Every active synapse learns: the budget is not what this experiment tests.
        budget=dict(initial=1.0, max=1.0, adapt=False),
        consolidation=dict(enabled=True, kappa=20.0, lam=0.05, every=0, on_task_switch=False)))


@dataclass
class Stream:
    old_keys: np.ndarray
    old_labels: np.ndarray
    recent_keys: np.ndarray
    recent_labels: np.ndarray
    old_order: np.ndarray
    intervening: tuple[np.ndarray, np.ndarray]
    tail: tuple[np.ndarray, np.ndarray]

    @classmethod
    def make(cls, size: Size, rng: np.random.Generator) -> "Stream":
        half = size.keys * KEY_INPUTS
        n = 2 * half

        def keys(first: int) -> np.ndarray:
            out = np.zeros((size.keys, n))
            groups = (first + rng.permutation(half)).reshape(size.keys, KEY_INPUTS)
            for i, g in enumerate(groups):
                out[i, g] = 1
            return out

        def noise(count: int) -> tuple[np.ndarray, np.ndarray]:
            X = np.zeros((count, n))
            active = round(DENSITY * n)
            for row in X:
                row[rng.choice(n, active, replace=False)] = 1
            return X, rng.integers(0, CLASSES, count)

        old, recent = keys(0), keys(half)
        return cls(old, rng.integers(0, CLASSES, size.keys), recent, rng.integers(0, CLASSES, size.keys),
                   np.concatenate([rng.permutation(size.keys) for _ in range(size.old_epochs)]),
                   noise(size.intervening), noise(size.tail))


def recall(kind: str, cfg: LPNConfig, size: Size, s: Stream) -> tuple[float, float]:
    model = models.build(kind, cfg)
    model.partial_fit(s.old_keys[s.old_order], s.old_labels[s.old_order], classes=list(range(CLASSES)))
    if cfg.consolidation.enabled:
        model.consolidate()
    model.partial_fit(*s.intervening)
    repeat = np.repeat(np.arange(size.keys), size.presentations)
    model.partial_fit(s.recent_keys[repeat], s.recent_labels[repeat])
    model.partial_fit(*s.tail)
    old = float(np.mean(model.predict(s.old_keys) == s.old_labels))
    recent = float(np.mean(model.predict(s.recent_keys) == s.recent_labels))
    return old, recent


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    stream = Stream.make(size, np.random.default_rng(41))
    base = config(size)
    outcome = {name: recall(kind, base.replace(**change) if change else base, size, stream)
               for name, change in VARIANTS.items()}
    full_ok = min(outcome["full"]) >= MIN_RECALL
    ablations_fail = all(min(outcome[v]) < MIN_RECALL for v in ("no_trails", "no_consolidation"))
    metrics = []
    for name, (old, recent) in outcome.items():
        metrics += [Metric(f"old_{name}", f"old recall, {LABELS[name]}", old, "percent"),
                    Metric(f"recent_{name}", f"recent recall, {LABELS[name]}", recent, "percent")]
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM, passed=full_ok and ablations_fail,
        metrics=metrics,
        design=dict(asdict(size), key_inputs=KEY_INPUTS, density=DENSITY, classes=CLASSES),
        seconds=time.perf_counter() - start)
