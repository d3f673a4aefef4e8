"""Terminal renderings of continual-learning results, shared by `lpn continual` and `lpn demo`."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from rich.table import Table

from .protocol import MethodResult


def pct(v: Any) -> str:
    """An accuracy in [0, 1] as a percentage; blank where there is none (NaN, None)."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def pts(v: Any) -> str:
    """A difference of accuracies in points, signed; "n/a" where there is none."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:+.1f}"


def matrix_table(r: MethodResult) -> Table:
    """R[i][j], accuracy after task i on task j, with each row's mean and each task's forgetting."""
    T = r.matrix.shape[0]
    table = Table(title=f"{r.name}: accuracy (%) after learning task i (rows) on task j (columns)",
                  title_justify="left")
    table.add_column("after", justify="right")
    for j in range(T):
        table.add_column(f"task {j}", justify="right")
    table.add_column("mean", justify="right")
    for i in range(T):
        row = r.matrix[i]
        table.add_row(f"task {i}", *[pct(v) for v in row], pct(float(np.nanmean(row))))
    per_task = r.per_task_forgetting
    table.add_row("forgetting", *[pts(per_task[j]) if j < T - 1 else "" for j in range(T)], pts(r.forgetting),
                  style="dim")
    return table
