"""The cases whose per-step state hashes are pinned in tests/golden/ (see scripts/make-golden.py)."""
from __future__ import annotations

import hashlib

import numpy as np

from conftest import small_config, stream
from lpn.fixed import FixedLPN

STEPS = 300

CASES = {
    # Every mechanism on, one-hop feedback into a relu layer, saturating inputs.
    "feedback_all": lambda: small_config(),
    # Target-free contrastive hidden layer with noise and replayed negatives.
    "contrastive": lambda: small_config(hidden_error="contrastive", contrastive__noise=0.1),
    # Frozen hardtanh hidden layer, no consolidation, no replay, fixed budget.
    "frozen_hardtanh": lambda: small_config(
        hidden_error="frozen", consolidation__enabled=False, replay__enabled=False,
        structural__enabled=False, budget__adapt=False,
        layers=[dict(shape=[3, 3], channels=2, radius=2.0, tag_min=2, fan_in=8,
                     activation="hardtanh", init=0.5),
                dict(shape=[4], position="center", fan_in=18, init=0.05)]),
}


def run_case(name: str) -> list[str]:
    """Short hashes of the state after every step of the case's stream."""
    cfg = CASES[name]()
    model = FixedLPN(cfg)
    hashes = []
    for i, (x, label, task) in enumerate(stream(cfg, STEPS, seed=3, saturate=True)):
        x_q = model.quantise_input(x[None, :])[0]
        t = np.zeros(cfg.outputs)
        t[label] = 1.0
        model.learn_q(x_q, model.quantise_target(t[None, :])[0], task)
        if cfg.hidden_error == "contrastive" and i % 5 == 4:
            model.contrast_q(x_q)
        hashes.append(hashlib.sha256(model.state_bytes()).hexdigest()[:16])
    return hashes
