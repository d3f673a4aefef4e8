"""Float-to-fixed conversion: formats from calibration data, state carried over, small gap."""
import numpy as np

from conftest import small_config, stream
from lpn.convert import choose_formats, convert
from lpn.float_model import FloatLPN
from test_models import digits_like


def test_conversion_gap_on_digits_is_small(digits):
    X, y = digits
    model = FloatLPN(digits_like())
    model.partial_fit(X[:800], y[:800], classes=list(range(10)))
    fixed, report = convert(model, X[800:1200], y[800:1200])
    assert abs(report["gap"]) <= 0.02
    assert report["max_output_diff"] < 0.01
    assert abs(model.score(X[1400:], y[1400:]) - fixed.score(X[1400:], y[1400:])) <= 0.02
    assert list(fixed.predict(X[:3])) == list(model.predict(X[:3]))


def test_conversion_keeps_the_whole_state(small_cfg):
    model = FloatLPN(small_cfg)
    for x, label, task in stream(small_cfg, 120):
        model.partial_fit(x[None, :], [label], classes=[0, 1, 2, 3], task=task)
    fixed, _ = convert(model, np.random.default_rng(0).uniform(0, 1, (40, 36)))
    for key in ("step", "prng", "task", "seen", "L1.src", "L2.budget", "L1.boost", "replay.task"):
        assert np.array_equal(fixed.state[key], model.state[key]), key
    w = fixed.L(2, "w") / 2 ** fixed.formats.fw[1]
    assert np.abs(w - model.L(2, "w")).max() <= 2.0 ** -fixed.formats.fw[1]
    x_back = fixed.state["replay.x"] / 2 ** fixed.formats.fa[0]
    assert np.abs(x_back - model.state["replay.x"]).max() <= 2.0 ** -fixed.formats.fa[0]


def test_formats_follow_the_observed_ranges():
    cfg = small_config(consolidation__enabled=False)
    model = FloatLPN(cfg)
    small = choose_formats(model, np.full((4, 36), 0.5))
    model.L(2, "w")[model.L(2, "w") != 0] *= 40  # much larger weights need fewer fraction bits
    big = choose_formats(model, np.full((4, 36), 0.5))
    assert big.fw[1] < small.fw[1]
    for li in (1, 2):  # the forward pass only shifts right
        assert big.fa[li] <= big.fw[li - 1] + big.fa[li - 1]
