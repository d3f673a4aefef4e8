"""Task streams: what a continual learner sees, one task after another.

A `Stream` is a list of `Task`s, each with its own training and test samples. The
scenario says what the learner is told at test time:

- ``task``: task-incremental. Each task has its own classes and the task id is
  given at test, so a prediction is chosen among that task's classes.
- ``class``: class-incremental. Each task has its own classes, but no task id is
  given at test: a prediction is chosen among every output.
- ``domain``: domain-incremental. Every task has the same classes with a different
  input distribution (for digits: a fixed pixel permutation per task); no task id
  at test.

Every learner is told the task id while it *learns* (the boundaries are known),
in every scenario.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import datasets

SCENARIOS = ("task", "class", "domain")
DIGITS_CLASSES_PER_TASK = 2
DEFAULT_TEST_FRACTION = 0.3
DEFAULT_DOMAIN_TASKS = 5


@dataclass(frozen=True)
class Task:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self) -> list[int]:
        """The labels this task's training samples carry, sorted."""
        return sorted(int(v) for v in np.unique(self.y_train))


@dataclass(frozen=True)
class Stream:
    scenario: str
    source: str                      # "digits", or the CSV files' names
    tasks: list[Task]
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r} (expected one of {', '.join(SCENARIOS)})")
        if not self.tasks:
            raise ValueError("a stream needs at least one task")
        widths = {t.X_train.shape[1] for t in self.tasks} | {t.X_test.shape[1] for t in self.tasks}
        if len(widths) != 1:
            raise ValueError(f"the tasks have different numbers of features: {sorted(widths)}")

    @property
    def n_features(self) -> int:
        return int(self.tasks[0].X_train.shape[1])

    @property
    def classes(self) -> list[int]:
        """Every label of every task, sorted: the outputs a learner must provide."""
        return sorted(set().union(*(t.classes for t in self.tasks)))

    @property
    def task_classes(self) -> list[list[int]]:
        return [t.classes for t in self.tasks]

    @property
    def task_id_at_test(self) -> bool:
        return self.scenario == "task"

    def summary(self) -> list[dict]:
        return [dict(name=t.name, classes=t.classes, train=len(t.y_train), test=len(t.y_test))
                for t in self.tasks]


def split_train_test(X: np.ndarray, y: np.ndarray, test_fraction: float, rng: np.random.Generator,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified split: each class gives round(n * test_fraction) samples to the test set.

    A class with a single sample stays in training. Both parts are shuffled.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction must be between 0 and 1, got {test_fraction}")
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = min(len(idx) - 1, int(round(len(idx) * test_fraction)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    tr = rng.permutation(np.concatenate(train))
    te = rng.permutation(np.concatenate(test))
    return X[tr], y[tr], X[te], y[te]


def _cap(task: Task, max_train: int | None, max_test: int | None) -> Task:
    """The first samples of each part (both are already shuffled): for reduced-size runs."""
    return Task(task.name, task.X_train[:max_train], task.y_train[:max_train],
                task.X_test[:max_test], task.y_test[:max_test])


def digits_stream(scenario: str, seed: int = 0, test_fraction: float = DEFAULT_TEST_FRACTION,
                  n_tasks: int | None = None, max_train: int | None = None,
                  max_test: int | None = None) -> Stream:
    """scikit-learn's 8x8 digits as a stream.

    task / class: five tasks of two classes, (0, 1), (2, 3), ... (8, 9).
    domain: `n_tasks` (default 5) tasks of all ten classes; task 0 is the plain
    images and every later task applies its own fixed random pixel permutation
    to the same train/test split.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (expected one of {', '.join(SCENARIOS)})")
    X, y = datasets.digits()
    rng = np.random.default_rng([seed, 5])
    Xtr, ytr, Xte, yte = split_train_test(X, y, test_fraction, rng)
    tasks: list[Task] = []
    details: dict = {"test_fraction": test_fraction}
    if scenario == "domain":
        count = DEFAULT_DOMAIN_TASKS if n_tasks is None else n_tasks
        if count < 1:
            raise ValueError(f"need at least one task, got {count}")
        perms = [np.arange(X.shape[1])] + [rng.permutation(X.shape[1]) for _ in range(count - 1)]
        for t, p in enumerate(perms):
            tasks.append(Task(f"perm{t}" if t else "plain", Xtr[:, p], ytr, Xte[:, p], yte))
        details["permutations"] = [p.tolist() for p in perms]
    else:
        if n_tasks not in (None, 10 // DIGITS_CLASSES_PER_TASK):
            raise ValueError("split digits has exactly 5 tasks of 2 classes")
        for t in range(10 // DIGITS_CLASSES_PER_TASK):
            pair = list(range(DIGITS_CLASSES_PER_TASK * t, DIGITS_CLASSES_PER_TASK * (t + 1)))
            tr, te = np.isin(ytr, pair), np.isin(yte, pair)
            tasks.append(Task("digits " + "/".join(map(str, pair)), Xtr[tr], ytr[tr], Xte[te], yte[te]))
    tasks = [_cap(t, max_train, max_test) for t in tasks]
    return Stream(scenario, "digits", tasks, details)


def csv_stream(paths: Sequence[str | os.PathLike], label: str, scenario: str, seed: int = 0,
               test_fraction: float = DEFAULT_TEST_FRACTION, max_train: int | None = None,
               max_test: int | None = None) -> Stream:
    """One task per CSV file (in the order given), each split into train and test.

    Every file must have the label column and the same number of features. The
    scenario decides only what is told at test time; the labels are taken as they
    are (a domain-incremental stream gives the same labels in every file).
    """
    if len(paths) < 2:
        raise datasets.DatasetError(f"a continual stream needs at least 2 task files (one per task), "
                                    f"got {len(paths)}")
    rng = np.random.default_rng([seed, 5])
    tasks: list[Task] = []
    width: tuple[Path, int] | None = None
    for path in map(Path, paths):
        X, y, _ = datasets.load_csv(path, label=label)
        if width is not None and X.shape[1] != width[1]:
            raise datasets.DatasetError(f"{path}: {X.shape[1]} feature columns, but {width[0]} has {width[1]}; "
                                        "every task file needs the same features")
        width = width or (path, X.shape[1])
        Xtr, ytr, Xte, yte = split_train_test(X, y, test_fraction, rng)
        if len(yte) == 0:
            raise datasets.DatasetError(f"{path}: {len(y)} rows are too few to hold out a test set "
                                        f"(test fraction {test_fraction})")
        tasks.append(_cap(Task(path.stem, Xtr, ytr, Xte, yte), max_train, max_test))
    return Stream(scenario, ", ".join(Path(p).name for p in paths), tasks,
                  {"test_fraction": test_fraction, "files": [str(p) for p in paths]})
