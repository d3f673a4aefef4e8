"""The models the code generator is tested on: between them, every mechanism and format path.

Other codegen test modules import CASES from here; the tests below check that the
cases really switch on what they claim to cover.
"""
from __future__ import annotations

import pytest

from lpn.configs import named
from lpn.fixed import FixedLPN


# Shipped configs (lpn/configs/*.toml), so users can run exactly what is tested.
CASES = {
    "digits": lambda: named("digits"),           # masks, replay, consolidation on task switch
    "small_all": lambda: named("mechanisms"),    # every mechanism, relu feedback, short periods
    "contrastive": lambda: named("contrastive"), # target-free contrastive hardtanh hidden layer
    "frozen3": lambda: named("frozen_deep"),     # three layers, frozen hidden errors, no bias learning
    "wide": lambda: named("wide"),               # 16-bit sources, saturation, radius-limited regrowth
    "tiny": lambda: named("tiny"),               # the smallest shipped learner
    "uno": lambda: named("uno"),                 # the one that learns on an ATmega328P
}


def case_model(name: str) -> FixedLPN:
    return FixedLPN(CASES[name]())


def test_cases_cover_every_mechanism():
    cfgs = {name: make() for name, make in CASES.items()}
    errors = {c.hidden_error for c in cfgs.values()}
    acts = {layer.activation for c in cfgs.values() for layer in c.layers}
    assert errors == {"feedback", "contrastive", "frozen"}
    assert acts == {"relu", "hardtanh", "identity"}
    assert any(c.consolidation.enabled and c.consolidation.on_task_switch for c in cfgs.values())
    assert any(c.consolidation.enabled and c.consolidation.every for c in cfgs.values())
    assert any(c.replay.enabled and c.replay.conflict_count for c in cfgs.values())
    assert any(c.structural.enabled for c in cfgs.values())
    assert any(c.tasks.masks for c in cfgs.values())
    assert any(c.budget.adapt and c.budget.boost_units for c in cfgs.values())
    assert any(not c.budget.adapt for c in cfgs.values())
    assert any(not c.learning.bias for c in cfgs.values())
    assert any(max(c.sizes[:-1]) > 256 for c in cfgs.values()), "16-bit source indices"


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_builds(name):
    model = case_model(name)
    assert model.topology.synapses > 0


def test_cases_are_shipped_configs():
    from lpn import configs
    for name, make in CASES.items():
        assert make().name in configs.names(), name
