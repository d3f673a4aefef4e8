"""The connectivity rule of lpn-spec section 2, checked against a brute-force reading of it."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import small_config
from lpn import configs
from lpn.topology import build_topology


def reference_sources(pos_prev, tags_prev, pos_j, tag_j, radius_sq, tag_min, k):
    """Candidates one by one in plain Python: within the radius, enough shared tag bits;
    the k nearest, ties to the lower index; returned in index order."""
    candidates = []
    for i, (p, t) in enumerate(zip(pos_prev.tolist(), tags_prev.tolist())):
        d2 = sum((a - b) ** 2 for a, b in zip(p, pos_j.tolist()))
        if radius_sq >= 0 and d2 > radius_sq:
            continue
        if bin(t & int(tag_j)).count("1") < tag_min:
            continue
        candidates.append((d2, i))
    return sorted(i for _, i in sorted(candidates)[:k])


def assert_follows_the_rule(cfg):
    topo = build_topology(cfg)
    for li, lt in enumerate(topo.layers, start=1):
        for j in range(lt.units):
            want = reference_sources(topo.positions[li - 1], topo.tags[li - 1], topo.positions[li][j],
                                     topo.tags[li][j], lt.radius_sq, lt.tag_min, lt.fan_in)
            got = lt.src[j, :lt.count[j]].tolist()
            assert got == want, (li, j)
            assert (lt.src[j, lt.count[j]:] == 0).all()  # padding slots


@pytest.mark.parametrize("name", configs.names())
def test_shipped_configs_follow_the_rule(name):
    assert_follows_the_rule(configs.named(name))


@settings(max_examples=25, deadline=None)
@given(radius=st.sampled_from([1.0, 1.5, 2.0, 3.0, math.inf]), fan_in=st.integers(1, 12),
       tag_min=st.integers(0, 3), seed=st.integers(0, 100), channels=st.integers(1, 3))
def test_random_configs_follow_the_rule(radius, fan_in, tag_min, seed, channels):
    try:
        cfg = small_config(seed=seed, input__tags="random:6", layers=[
            dict(shape=[3, 3], channels=channels, radius=radius, tag_min=tag_min, fan_in=fan_in,
                 activation="relu", tags="random:6"),
            dict(shape=[4], position="center", fan_in=fan_in, activation="identity")])
    except ValueError:
        return  # the config itself is refused
    try:
        build_topology(cfg)
    except ValueError as exc:
        assert "has no compatible input" in str(exc)  # refused, naming the unit
        return
    assert_follows_the_rule(cfg)


def test_same_config_and_seed_same_wiring_other_seed_other_wiring():
    def wiring(seed):
        cfg = small_config(seed=seed, input__tags="random:6",
                           layers=[dict(shape=[3, 3], channels=2, radius=2.0, tag_min=2, fan_in=8,
                                        activation="relu", tags="random:6"),
                                   dict(shape=[4], position="center", fan_in=18)])
        return [lt.src.copy() for lt in build_topology(cfg).layers]

    a, b, c = wiring(3), wiring(3), wiring(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_nearest_k_ties_go_to_the_lower_index():
    # One output at the centre of a 3x3 input: the four edge pixels tie at distance 1.
    cfg = small_config(input__shape=[3, 3], input__tags=0xFFFF, tasks__count=1, tasks__masks=[],
                       structural__enabled=False,
                       layers=[dict(shape=[1], position="center", fan_in=3, radius=math.inf,
                                    activation="identity")])
    lt = build_topology(cfg).layers[0]
    # Centre pixel 4 (distance 0), then the two lowest of the tied edge pixels 1, 3, 5, 7.
    assert lt.src[0].tolist() == [1, 3, 4]
