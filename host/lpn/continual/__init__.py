"""Continual learning: a stream of tasks, learners behind one interface, and the metrics.

The protocol (`run_method`) is the same for every learner: learn task 0, evaluate on
task 0; learn task 1, evaluate on tasks 0 and 1; and so on. That gives the accuracy
matrix R[i][j] (after task i, on task j) from which average accuracy and forgetting
are computed. Learners are `Backend`s: the LPN float and fixed models, scikit-learn
baselines, and whatever `register_backend` adds (the C harness, a device).
"""
from __future__ import annotations

from .backends import (Backend, BackendSpec, LPNBackend, backend_names, make_backend,
                       register_backend)
from .data import SCENARIOS, Stream, Task, csv_stream, digits_stream
from .metrics import average_accuracy, backward_transfer, forgetting, per_task_forgetting
from .protocol import MethodResult, run_joint, run_method

__all__ = [
    "Backend", "BackendSpec", "LPNBackend", "backend_names", "make_backend", "register_backend",
    "SCENARIOS", "Stream", "Task", "csv_stream", "digits_stream",
    "average_accuracy", "backward_transfer", "forgetting", "per_task_forgetting",
    "MethodResult", "run_joint", "run_method",
]
