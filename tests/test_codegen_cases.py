"""The models the code generator is tested on: between them, every mechanism and format path.

Other codegen test modules import CASES from here; the tests below check that the
cases really switch on what they claim to cover.
"""
from __future__ import annotations

import math

import pytest

from conftest import small_config
from lpn.config import LPNConfig
from lpn.configs import named
from lpn.fixed import FixedLPN


def wide_config() -> LPNConfig:
    """17x17 inputs (more than 256, so 16-bit sources), two hardtanh feedback hidden
    layers, structural regrowth limited by radius and tags, a large learning rate
    that saturates weights, periodic consolidation without task switches."""
    return LPNConfig.from_dict(dict(
        name="wide", seed=11, hidden_error="feedback",
        input=dict(shape=[17, 17], tags=[0x00FF, 0xFF00, 0x0FF0, 0xF00F]),
        layers=[
            dict(shape=[3, 3], channels=2, radius=4.0, tag_min=2, fan_in=12, activation="hardtanh",
                 init=0.5),
            dict(shape=[5], position="center", radius=math.inf, fan_in=10, activation="hardtanh",
                 init=0.5, tags=[0x00FF, 0xFF00]),
            dict(shape=[3], position="center", fan_in=5, activation="identity", init=0.2)],
        learning=dict(eta=1.0, alpha_s=2.0, gamma_g=3.0, deposit_s=4.0, deposit_g=0.5,
                      evap_s_shift=1, evap_g_shift=3, evap_g_period=5),
        budget=dict(initial=0.5, min=0.02, max=0.9, step_down=0.1, step_up=0.3, boost_units=3,
                    fast_shift=1, slow_shift=3),
        consolidation=dict(enabled=True, every=23, on_task_switch=False, kappa=4.0, lam=0.3),
        replay=dict(enabled=True, capacity=5, every=3, count=1, conflict_margin=0.25, conflict_count=1),
        structural=dict(enabled=True, every=25, w_min=0.1, g_min=0.5, widen=1.5),
        tasks=dict(count=3, masks=[[0], [1, 2], [0, 1, 2]]),
        fixed=dict(trail_s_frac=3, trail_g_frac=8, consolidation_frac=0)))


def frozen_config() -> LPNConfig:
    """Three layers, frozen hidden errors, hardtanh and relu, no bias learning, fixed budget."""
    return small_config(
        hidden_error="frozen", consolidation__enabled=False, replay__enabled=False,
        structural__enabled=False, budget__adapt=False, learning__bias=False,
        layers=[dict(shape=[3, 3], channels=2, radius=2.0, tag_min=2, fan_in=8, activation="hardtanh",
                     init=0.5),
                dict(shape=[6], position="center", fan_in=18, activation="relu", init=0.3),
                dict(shape=[4], position="center", fan_in=6, init=0.05)])


def contrastive_config() -> LPNConfig:
    """Target-free contrastive hidden layer (hardtanh), replayed negatives, masks."""
    return small_config(
        hidden_error="contrastive", contrastive__noise=0.2, contrastive__neg_shift=2,
        layers=[dict(shape=[3, 3], channels=2, radius=2.0, tag_min=2, fan_in=8, activation="hardtanh",
                     init=0.3),
                dict(shape=[4], position="center", fan_in=18, activation="identity", init=0.05)])


CASES = {
    "digits": lambda: named("digits"),         # the shipped config: masks, replay, consolidation on switch
    "small_all": small_config,                 # every mechanism, relu feedback, short periods
    "contrastive": contrastive_config,
    "frozen3": frozen_config,
    "wide": wide_config,
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
