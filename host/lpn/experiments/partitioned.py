"""2. Partitioned memory: two tasks kept apart by molecular tags and output masks.

Digits 0-4 are task A, digits 5-9 task B. Task A's outputs are masked to units
0-4, task B's to 5-9. Half the hidden channels carry tag A and half tag B, and
each output unit connects (tag_min = 1) only to hidden units sharing its tag, so
the whole path from the pixels to an A output is disjoint from B's: learning B
sends no error into A's synapses. Two ablations are reported: masks without tags
(the hidden layer is shared, so learning B disturbs A's features), and neither
(B's training also pushes A's outputs down).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ..config import LPNConfig
from . import models
from .data import digits
from .result import ExperimentResult, Metric

NAME = "partitioned"
TITLE = "Partitioned memory"
CLAIM = "accuracy on task A drops by at most 1 point after learning task B"
MAX_DROP = 0.01
TAG_A, TAG_B = 0x00FF, 0xFF00
CLASSES = list(range(10))


@dataclass(frozen=True)
class Size:
    train_per_task: int   # training samples of each task (at most ~650 exist)
    epochs: int


FULL = Size(train_per_task=650, epochs=2)
QUICK = Size(train_per_task=300, epochs=1)


def config(tagged: bool = True, masked: bool = True) -> LPNConfig:
    hidden_tags = [TAG_A] * 4 + [TAG_B] * 4 if tagged else 0xFFFF
    output_tags = [TAG_A] * 5 + [TAG_B] * 5 if tagged else 0xFFFF
    return LPNConfig.from_dict(dict(
        name="partitioned", seed=5,
        input=dict(shape=[8, 8]),
        layers=[
            dict(shape=[4, 4], channels=8, radius=3.0, fan_in=16, activation="relu", init=0.3,
                 tags=hidden_tags),
            dict(shape=[10], position="center", fan_in=128, tag_min=1, init=0.01, tags=output_tags)],
        learning=dict(eta=0.02),
        budget=dict(initial=0.3),
        tasks=dict(count=2, masks=[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] if masked else [])))


def sequential(kind: str, cfg: LPNConfig, size: Size, data) -> dict[str, float]:
    """Learn A, then B; accuracies on held-out samples of each task."""
    (Xa, ya), (Xb, yb), (Ta, ta), (Tb, tb) = data
    model = models.build(kind, cfg)
    for _ in range(size.epochs):
        model.partial_fit(Xa, ya, classes=CLASSES, task=0)
    before = model.score(Ta, ta, task=0)
    for _ in range(size.epochs):
        model.partial_fit(Xb, yb, classes=CLASSES, task=1)
    return dict(before=before, after=model.score(Ta, ta, task=0), b=model.score(Tb, tb, task=1))


def split(size: Size):
    X, y, Xt, yt = digits()
    a, b = y < 5, y >= 5
    n = size.train_per_task
    return (X[a][:n], y[a][:n]), (X[b][:n], y[b][:n]), (Xt[yt < 5], yt[yt < 5]), (Xt[yt >= 5], yt[yt >= 5])


def run(kind: str, quick: bool = False) -> ExperimentResult:
    start = time.perf_counter()
    size = QUICK if quick else FULL
    data = split(size)
    tagged = sequential(kind, config(), size, data)
    shared = sequential(kind, config(tagged=False), size, data)
    unpartitioned = sequential(kind, config(tagged=False, masked=False), size, data)
    drop = tagged["before"] - tagged["after"]
    return ExperimentResult(
        experiment=NAME, kind=kind, quick=quick, claim=CLAIM, passed=drop <= MAX_DROP,
        metrics=[
            Metric("a_before", "task A accuracy after learning A", tagged["before"], "percent"),
            Metric("a_after", "task A accuracy after learning B", tagged["after"], "percent"),
            Metric("drop", "drop on task A", drop, "points"),
            Metric("b_after", "task B accuracy", tagged["b"], "percent"),
            Metric("shared_drop", "drop on task A, masks only (shared hidden layer)",
                   shared["before"] - shared["after"], "points"),
            Metric("unpartitioned_drop", "drop on task A, neither tags nor masks",
                   unpartitioned["before"] - unpartitioned["after"], "points"),
        ],
        design=dict(asdict(size), test_a=int(len(data[2][1])), test_b=int(len(data[3][1]))),
        seconds=time.perf_counter() - start)
