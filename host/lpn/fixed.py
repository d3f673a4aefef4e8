"""The fixed-point LPN: the executable form of docs/fixed-point.md.

Every other backend (generated C, firmware, MicroPython) is tested for
bit-identical state against this model, step by step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import layout
from .config import LPNConfig
from .engine import LPNEngine, initial_weights
from .estimator import EstimatorMixin
from .fixedpoint import (I16_MAX, I16_MIN, I31_MAX, U32_MAX, frac_bits_for, mulq, q16, quantise,
                         recip_table, rshr, s16, u8)
from .topology import Topology

HEBB_LIMIT = 1 << 20


@dataclass
class Formats:
    """Fraction bits of every tensor and the hyper-parameters as integers."""
    fa: list[int]                  # activations, layer 0 (input) .. L
    fw: list[int]                  # weights/biases of layers 1 .. L
    fs: int
    fg: int
    fc: int
    consts: dict[str, int] = field(default_factory=dict)
    WMIN: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, cfg: LPNConfig, fa: list[int], fw: list[int]) -> "Formats":
        """Formats with the constants derived from the config (docs/fixed-point.md sec. 2)."""
        fx = cfg.fixed
        lr, con, rep = cfg.learning, cfg.consolidation, cfg.replay
        consts = {
            "ETA": q16(lr.eta), "AS": q16(lr.alpha_s), "AG": q16(lr.alpha_g),
            "GS": q16(lr.gamma_s), "GG": q16(lr.gamma_g), "DS": q16(lr.deposit_s),
            "DG": q16(lr.deposit_g), "KAPPA": q16(con.kappa), "LAM": q16(con.lam),
            "MARGIN": q16(rep.conflict_margin),
            "GMIN": int(u8(int(np.floor(cfg.structural.g_min * (1 << fx.trail_g_frac) + 0.5)))),
            "NOISE": int(s16(int(np.floor(cfg.contrastive.noise * (1 << fa[0]) + 0.5)))),
        }
        wmin = [int(s16(int(np.floor(cfg.structural.w_min * (1 << f) + 0.5)))) for f in fw]
        out = cls(fa=list(fa), fw=list(fw), fs=fx.trail_s_frac, fg=fx.trail_g_frac,
                  fc=fx.consolidation_frac, consts=consts, WMIN=wmin)
        out.validate(cfg)
        return out

    @classmethod
    def default(cls, cfg: LPNConfig) -> "Formats":
        """Formats from the config alone: the input range, and headroom of 8 elsewhere."""
        lo, hi = cfg.input.range
        fa = [frac_bits_for(max(abs(lo), abs(hi)))]
        for layer in cfg.layers:
            fa.append(14 if layer.activation == "hardtanh" else 12)
        fw = [12] * len(cfg.layers)
        for i in range(len(cfg.layers)):  # the forward pass may only shift right
            fa[i + 1] = min(fa[i + 1], fw[i] + fa[i])
        return cls.build(cfg, fa, fw)

    def validate(self, cfg: LPNConfig) -> None:
        n = len(cfg.layers)
        if len(self.fa) != n + 1 or len(self.fw) != n or len(self.WMIN) != n:
            raise ValueError(f"formats: need {n + 1} activation and {n} weight formats")
        for name, values, hi in (("fa", self.fa, 15), ("fw", self.fw, 15),
                                 ("fs", [self.fs], 8), ("fg", [self.fg], 8), ("fc", [self.fc], 8)):
            for v in values:
                if not 0 <= int(v) <= hi:
                    raise ValueError(f"formats.{name}: fraction bits must be in 0..{hi}, got {v}")
        for li in range(1, n + 1):
            if self.fw[li - 1] + self.fa[li - 1] - self.fa[li] < 0:
                raise ValueError(f"formats: layer {li} needs fw + fa[below] >= fa (the forward pass "
                                 f"only shifts right), got fw={self.fw[li - 1]}, "
                                 f"fa[{li - 1}]={self.fa[li - 1]}, fa[{li}]={self.fa[li]}")
            if cfg.hidden_error == "feedback" and li < n and self.fw[li] + self.fa[li + 1] - self.fa[li] < 0:
                raise ValueError(f"formats: feedback into layer {li} needs fw[{li + 1}] + fa[{li + 1}] >= fa[{li}]")
        missing = set(layout.CONSTANTS) - set(self.consts)
        if missing:
            raise ValueError(f"formats: constants missing: {sorted(missing)}")
        for k, v in self.consts.items():
            if not 0 <= int(v) <= I31_MAX and k != "NOISE":
                raise ValueError(f"formats.{k}: must be in 0..2^31-1, got {v}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"fa": np.array(self.fa), "fw": np.array(self.fw),
                             "fs": self.fs, "fg": self.fg, "fc": self.fc,
                             "WMIN": np.array(self.WMIN)}
        d.update(self.consts)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Formats":
        return cls(fa=[int(v) for v in np.ravel(d["fa"])], fw=[int(v) for v in np.ravel(d["fw"])],
                   fs=int(d["fs"]), fg=int(d["fg"]), fc=int(d["fc"]),
                   consts={k: int(d[k]) for k in layout.CONSTANTS},
                   WMIN=[int(v) for v in np.ravel(d["WMIN"])])


def _resolve(config: LPNConfig | str) -> LPNConfig:
    if isinstance(config, LPNConfig):
        return config
    from .configs import named
    return named(config)


class FixedLPN(LPNEngine, EstimatorMixin):
    """Integer LPN. Construct with a config (or a shipped config's name)."""
    kind = "fixed"

    def __init__(self, config: LPNConfig | str = "digits", formats: Formats | None = None,
                 topology: Topology | None = None):
        super().__init__(_resolve(config), topology)
        self.formats = formats if formats is not None else Formats.default(self.config)
        self.formats.validate(self.config)
        self._recip = recip_table(self.formats.fc)
        self.classes_ = None
        self._reset()

    @classmethod
    def new(cls, config: LPNConfig | str, formats: Formats | None = None) -> "FixedLPN":
        return cls(config, formats)

    @classmethod
    def from_parts(cls, config: LPNConfig, formats: Formats, state: dict[str, Any]) -> "FixedLPN":
        model = cls(config, formats)
        model.load_state_bytes(layout.pack_state(model.fields, state))
        return model

    def _reset(self) -> None:
        weights = [quantise(w, f) for w, f in zip(initial_weights(self.config, self.topology), self.formats.fw)]
        self.state = self._fresh_state(weights, np.int64)

    # ------------------------------------------------------------------ boundary
    def _encode_x(self, X: np.ndarray) -> np.ndarray:
        return quantise(X, self.formats.fa[0])

    def _encode_t(self, T: np.ndarray) -> np.ndarray:
        return quantise(T, self.formats.fa[-1])

    def quantise_input(self, X: Any) -> np.ndarray:
        """Float inputs (n, inputs) to int16 in the input format; rejects NaN, inf, bad shapes."""
        return self._encode_x(self._check_X(X))

    def quantise_target(self, T: Any) -> np.ndarray:
        """Float target vectors (n, outputs) to int16 in the output format."""
        T = np.asarray(T, dtype=np.float64)
        if T.ndim != 2 or T.shape[1] != self.n_outputs:
            raise ValueError(f"targets must have shape (n, {self.n_outputs}), got {T.shape}")
        return self._encode_t(T)

    def _decode_y(self, Y: np.ndarray) -> np.ndarray:
        return np.asarray(Y, dtype=np.float64) / (1 << self.formats.fa[-1])

    def _predict_raw(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x)[1][-1]

    def _check_q(self, v: Any, n: int, what: str) -> np.ndarray:
        arr = np.asarray(v)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{what} must be integers (already quantised), got {arr.dtype}")
        if arr.shape != (n,):
            raise ValueError(f"{what} must have shape ({n},), got {arr.shape}")
        if arr.size and (arr.min() < I16_MIN or arr.max() > I16_MAX):
            raise ValueError(f"{what} has values outside int16")
        return arr.astype(np.int64)

    # Integer-level API: inputs and targets already quantised (what a device receives).
    def predict_q(self, x_q: Any) -> np.ndarray:
        return self._predict_raw(self._check_q(x_q, self.n_inputs, "x"))

    def learn_q(self, x_q: Any, t_q: Any, task: int = 0) -> None:
        x = self._check_q(x_q, self.n_inputs, "x")
        t = self._check_q(t_q, self.n_outputs, "target")
        self._learn(x, t, int(self._check_task(task, 1)[0]))

    def contrast_q(self, x_q: Any) -> None:
        self._contrast(self._check_q(x_q, self.n_inputs, "x"))

    def learn_unlabelled(self, X: Any) -> None:
        """Target-free contrastive steps on float samples."""
        for x in self._encode_x(self._check_X(X)):
            self._contrast(x)

    # ------------------------------------------------------------------ arithmetic
    def _act(self, li: int, z: np.ndarray) -> np.ndarray:
        act = self.config.layers[li - 1].activation
        if act == "relu":
            return np.maximum(z, 0)
        if act == "hardtanh":
            one = 1 << self.formats.fa[li]
            return np.clip(z, -one, one)
        return z

    def _forward(self, x: np.ndarray) -> tuple[list, list]:
        fa, fw = self.formats.fa, self.formats.fw
        zs: list = [None]
        ys: list = [x]
        for li in range(1, self.n_layers + 1):
            w, src, b = self.L(li, "w"), self.L(li, "src"), self.L(li, "b")
            acc = b * (1 << fa[li - 1]) + (w * ys[-1][src]).sum(axis=1)
            z = s16(rshr(acc, fw[li - 1] + fa[li - 1] - fa[li]))
            zs.append(z)
            ys.append(self._act(li, z))
        return zs, ys

    def _output_error(self, y, t, mask):
        return np.where(mask, s16(t - y), 0)

    def _feedback_error(self, li, e_above, z):
        fa, fw = self.formats.fa, self.formats.fw
        used = self._used[li]
        w, src = self.L(li + 1, "w"), self.L(li + 1, "src")
        fb = np.zeros(self.config.sizes[li], dtype=np.int64)
        np.add.at(fb, src[used], (w * e_above[:, None])[used])
        e = s16(rshr(fb, fw[li] + fa[li + 1] - fa[li]))
        act = self.config.layers[li - 1].activation
        if act == "relu":
            e = np.where(z > 0, e, 0)
        elif act == "hardtanh":
            one = 1 << fa[li]
            e = np.where((z > -one) & (z < one), e, 0)
        return e

    def _contrast_errors(self, y, yp, yo):
        ep = s16(y - yp)
        en = s16(rshr(yo - y, self.config.contrastive.neg_shift)) if yo is not None else None
        return ep, en

    def _perturb(self, x):
        noise = self.formats.consts["NOISE"]
        if noise <= 0:
            return x.copy()
        d = np.array([self._below(2 * noise + 1) - noise for _ in range(len(x))], dtype=np.int64)
        return s16(x + d)

    def _loss(self, e):
        return int(min(I31_MAX, int(np.abs(e).sum())))

    def _trail_factor(self, li: int, ka: int, kb: int) -> np.ndarray:
        f = self.formats
        return np.minimum(U32_MAX, 65536 + mulq(ka, self.L(li, "s"), f.fs) + mulq(kb, self.L(li, "g"), f.fg))

    def _scores(self, li, e, x):
        c = self.formats.consts
        T = self._trail_factor(li, c["GS"], c["GG"]).astype(np.uint64)
        ex = (np.abs(e)[:, None] * np.abs(x[self.L(li, "src")])).astype(np.uint64)
        score = ex * T
        score <<= self.L(li, "boost").astype(np.uint64)[:, None]
        score[~self._used[li - 1]] = 0
        return score

    def _learn_selected(self, li, rows, cols, e, x):
        f, c = self.formats, self.formats.consts
        fe, fx, fw = f.fa[li], f.fa[li - 1], f.fw[li - 1]
        W, S, G = self.L(li, "w"), self.L(li, "s"), self.L(li, "g")
        ex = e[rows] * x[self.L(li, "src")[rows, cols]]
        s, g, w = S[rows, cols], G[rows, cols], W[rows, cols]
        gain = np.minimum(U32_MAX, 65536 + mulq(c["AS"], s, f.fs) + mulq(c["AG"], g, f.fg))
        lr = np.minimum(I31_MAX, mulq(c["ETA"], gain, 16))
        hebb = np.clip(rshr(lr * ex, 16 + fe + fx - fw), -HEBB_LIMIT, HEBB_LIMIT)
        if self.config.consolidation.enabled:
            cc, a = self.L(li, "c")[rows, cols], self.L(li, "a")[rows, cols]
            hebb = rshr(hebb * self._recip[cc], 15)
            pull = rshr(mulq(c["LAM"], cc, f.fc) * (w - a), 16)
        else:
            pull = 0
        wide = w + hebb - pull
        W[rows, cols] = s16(wide)
        self._count_saturations(wide)
        s_new = u8(s + rshr(c["DS"] * np.abs(ex), 16 + fe + fx - f.fs))
        S[rows, cols] = s_new
        G[rows, cols] = u8(g + rshr(c["DG"] * s_new, 16 + f.fs - f.fg))
        if self.config.learning.bias:
            units = np.unique(rows)
            b = self.L(li, "b")
            wide_b = b[units] + rshr(c["ETA"] * e[units], 16 + fe - fw)
            b[units] = s16(wide_b)
            self._count_saturations(wide_b)

    def _count_saturations(self, wide: np.ndarray) -> None:
        clipped = int(np.count_nonzero((wide < I16_MIN) | (wide > I16_MAX)))
        self.state["saturations"] = min(U32_MAX, self.state["saturations"] + clipped)

    def _evaporate(self):
        lr = self.config.learning
        slow = self.state["step"] % lr.evap_g_period == 0
        for li in range(1, self.n_layers + 1):
            S = self.L(li, "s")
            S -= S >> lr.evap_s_shift
            if slow:
                G = self.L(li, "g")
                G -= G >> lr.evap_g_shift

    def _average(self, avg, value, shift):
        return int(avg + ((value - avg) >> shift))

    def _conflict(self):
        n = self.n_layers
        fast, slow = self.L(n, "loss_fast"), self.L(n, "loss_slow")
        return fast * 65536 > slow * (65536 + self.formats.consts["MARGIN"])

    def _consolidate_slots(self):
        f = self.formats
        for li in range(1, self.n_layers + 1):
            C = self.L(li, "c")
            C[:] = u8(C + rshr(f.consts["KAPPA"] * self.L(li, "g"), 16 + f.fg - f.fc))
            self.L(li, "a")[:] = self.L(li, "w")

    def _prunable(self, li):
        return (np.abs(self.L(li, "w")) < self.formats.WMIN[li - 1]) & (self.L(li, "g") < self.formats.consts["GMIN"])

    def __repr__(self) -> str:
        return f"FixedLPN({self.config.name!r}, step={self.state.get('step')})"
