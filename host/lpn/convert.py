"""Float model to fixed model: formats from calibration data, then every state field quantised.

Headroom is asymmetric on purpose: activations get one spare bit over the largest
value seen in calibration, weights get two, because a device keeps learning after
conversion and weights grow while it does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .fixed import FixedLPN, Formats
from .fixedpoint import frac_bits_for, quantise, u8
from .float_model import FloatLPN

ACT_HEADROOM = 2.0
WEIGHT_HEADROOM = 4.0


def choose_formats(model: FloatLPN, X: np.ndarray) -> Formats:
    """Fraction bits for every tensor from the ranges observed on calibration data."""
    cfg = model.config
    X = model._check_X(X)
    peaks = np.zeros(model.n_layers + 1)
    peaks[0] = np.abs(X).max(initial=0.0)
    for x in X:
        zs, ys = model._forward(x)
        for li in range(1, model.n_layers + 1):
            peaks[li] = max(peaks[li], np.abs(zs[li]).max(initial=0.0), np.abs(ys[li]).max(initial=0.0))
    lo, hi = cfg.input.range
    peaks[0] = max(peaks[0], abs(lo), abs(hi))
    peaks[-1] = max(peaks[-1], 1.0)  # class targets are 1.0
    fa = [frac_bits_for(peaks[0])] + [frac_bits_for(p * ACT_HEADROOM) for p in peaks[1:]]
    fw = []
    for li in range(1, model.n_layers + 1):
        tensors = [model.L(li, "w"), model.L(li, "b")]
        if cfg.consolidation.enabled:
            tensors.append(model.L(li, "a"))
        fw.append(frac_bits_for(max(np.abs(t).max(initial=0.0) for t in tensors) * WEIGHT_HEADROOM))
    for li in range(1, model.n_layers + 1):  # the forward pass and feedback only shift right
        fa[li] = min(fa[li], fw[li - 1] + fa[li - 1])
    if cfg.hidden_error == "feedback":
        for li in range(model.n_layers - 1, 0, -1):
            fa[li] = min(fa[li], fw[li] + fa[li + 1])
    return Formats.build(cfg, fa, fw)


def quantise_model(model: FloatLPN, formats: Formats) -> FixedLPN:
    """The fixed model holding `model`'s state in `formats` (same step, PRNG, buffer)."""
    cfg = model.config
    fixed = FixedLPN(cfg, formats, topology=model.topology)
    f = formats
    st: dict[str, Any] = {}
    for key, value in model.state.items():
        name = key.split(".")[-1]
        li = int(key[1:key.index(".")]) if key.startswith("L") else None
        if name in ("w", "b", "a"):
            st[key] = quantise(value, f.fw[li - 1])
        elif name in ("s", "g", "c"):
            frac = {"s": f.fs, "g": f.fg, "c": f.fc}[name]
            st[key] = u8(np.floor(np.asarray(value) * (1 << frac) + 0.5)).astype(np.int64)
        elif name in ("loss_fast", "loss_slow"):
            st[key] = int(min(2**31 - 1, np.floor(value * (1 << f.fa[li]) + 0.5)))
        elif key == "replay.x":
            st[key] = quantise(value, f.fa[0])
        elif key == "replay.t":
            st[key] = quantise(value, f.fa[-1])
        elif key == "saturations":
            st[key] = 0
        else:
            st[key] = value
    fixed.load_state_bytes(fixed_state_bytes(fixed, st))
    fixed.classes_ = model.classes_
    return fixed


def fixed_state_bytes(fixed: FixedLPN, state: dict[str, Any]) -> bytes:
    from .layout import pack_state
    return pack_state(fixed.fields, state)


def convert(model: FloatLPN, X_calib: Any, y_calib: Any = None) -> tuple[FixedLPN, dict[str, Any]]:
    """Convert with calibration; the report gives the float-to-fixed gap on the data."""
    X = model._check_X(X_calib)
    formats = choose_formats(model, X)
    fixed = quantise_model(model, formats)
    report: dict[str, Any] = {"fa": formats.fa, "fw": formats.fw, "samples": len(X)}
    out_f, out_q = model.decision_function(X), fixed.decision_function(X)
    report["max_output_diff"] = float(np.abs(out_f - out_q).max(initial=0.0))
    if y_calib is not None and model.classes_ is not None:
        report["float_accuracy"] = model.score(X, y_calib)
        report["fixed_accuracy"] = fixed.score(X, y_calib)
        report["gap"] = report["float_accuracy"] - report["fixed_accuracy"]
    elif y_calib is not None:
        Y = np.asarray(y_calib, dtype=np.float64).reshape(out_f.shape)
        report["float_mse"] = float(((out_f - Y) ** 2).mean())
        report["fixed_mse"] = float(((out_q - Y) ** 2).mean())
        report["gap"] = report["fixed_mse"] - report["float_mse"]
    return fixed, report
