"""The float LPN: the research reference, in real numbers.

It follows the fixed model's order of operations exactly (both inherit it from
`LPNEngine`) and draws the same PRNG values at the same moments; only the
arithmetic differs. Trails and consolidation strengths are clipped at the
largest value their fixed-point type can hold, so the two models saturate alike.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import layout
from .config import LPNConfig
from .engine import LPNEngine, initial_weights
from .estimator import EstimatorMixin
from .fixed import _resolve
from .topology import Topology


class FloatLPN(LPNEngine, EstimatorMixin):
    """Float LPN. Construct with a config (or a shipped config's name)."""
    kind = "float"

    def __init__(self, config: LPNConfig | str = "digits", topology: Topology | None = None):
        super().__init__(_resolve(config), topology)
        fx = self.config.fixed
        self._s_max = 255 / (1 << fx.trail_s_frac)
        self._g_max = 255 / (1 << fx.trail_g_frac)
        self._c_max = 255 / (1 << fx.consolidation_frac)
        self.classes_ = None
        self._reset()

    @classmethod
    def new(cls, config: LPNConfig | str) -> "FloatLPN":
        return cls(config)

    @classmethod
    def from_parts(cls, config: LPNConfig, state: dict[str, Any]) -> "FloatLPN":
        model = cls(config)
        model.load_state_bytes(layout.pack_state(model.fields, state))
        return model

    def _reset(self) -> None:
        self.state = self._fresh_state(initial_weights(self.config, self.topology), np.float64)

    # ------------------------------------------------------------------ boundary
    def _encode_x(self, X):
        return np.asarray(X, dtype=np.float64)

    _encode_t = _encode_x

    def _decode_y(self, Y):
        return np.asarray(Y, dtype=np.float64)

    def _predict_raw(self, x):
        return self._forward(x)[1][-1]

    def predict_vec(self, x: Any) -> np.ndarray:
        return self._predict_raw(self._check_X(x)[0])

    def learn_vec(self, x: Any, t: Any, task: int = 0) -> None:
        xx = self._check_X(x)[0]
        tt = np.asarray(t, dtype=np.float64)
        if tt.shape != (self.n_outputs,) or not np.isfinite(tt).all():
            raise ValueError(f"target must be {self.n_outputs} finite values, got shape {tt.shape}")
        self._learn(xx, tt, int(self._check_task(task, 1)[0]))

    def contrast_vec(self, x: Any) -> None:
        self._contrast(self._check_X(x)[0])

    def learn_unlabelled(self, X: Any) -> None:
        for x in self._check_X(X):
            self._contrast(x)

    # ------------------------------------------------------------------ arithmetic
    def _act(self, li, z):
        act = self.config.layers[li - 1].activation
        if act == "relu":
            return np.maximum(z, 0.0)
        if act == "hardtanh":
            return np.clip(z, -1.0, 1.0)
        return z

    def _forward(self, x):
        zs: list = [None]
        ys: list = [x]
        for li in range(1, self.n_layers + 1):
            z = self.L(li, "b") + (self.L(li, "w") * ys[-1][self.L(li, "src")]).sum(axis=1)
            zs.append(z)
            ys.append(self._act(li, z))
        return zs, ys

    def _output_error(self, y, t, mask):
        return np.where(mask, t - y, 0.0)

    def _feedback_error(self, li, e_above, z):
        used = self._used[li]
        fb = np.zeros(self.config.sizes[li])
        np.add.at(fb, self.L(li + 1, "src")[used], (self.L(li + 1, "w") * e_above[:, None])[used])
        act = self.config.layers[li - 1].activation
        if act == "relu":
            fb = np.where(z > 0, fb, 0.0)
        elif act == "hardtanh":
            fb = np.where((z > -1) & (z < 1), fb, 0.0)
        return fb

    def _contrast_errors(self, y, yp, yo):
        en = (yo - y) / (1 << self.config.contrastive.neg_shift) if yo is not None else None
        return y - yp, en

    def _perturb(self, x):
        noise = self.config.contrastive.noise
        if noise <= 0:
            return x.copy()
        u = np.array([self._next() / 2**32 for _ in range(len(x))])
        return x + noise * (2 * u - 1)

    def _loss(self, e):
        return float(np.abs(e).sum())

    def _scores(self, li, e, x):
        lr = self.config.learning
        T = 1 + lr.gamma_s * self.L(li, "s") + lr.gamma_g * self.L(li, "g")
        score = np.abs(e)[:, None] * np.abs(x[self.L(li, "src")]) * T
        score *= 1 + self.L(li, "boost")[:, None]
        score[~self._used[li - 1]] = 0
        return score

    def _learn_selected(self, li, rows, cols, e, x):
        cfg = self.config
        lr = cfg.learning
        W, S, G = self.L(li, "w"), self.L(li, "s"), self.L(li, "g")
        ex = e[rows] * x[self.L(li, "src")[rows, cols]]
        s, g, w = S[rows, cols], G[rows, cols], W[rows, cols]
        hebb = lr.eta * (1 + lr.alpha_s * s + lr.alpha_g * g) * ex
        if cfg.consolidation.enabled:
            c, a = self.L(li, "c")[rows, cols], self.L(li, "a")[rows, cols]
            hebb = hebb / (1 + c) - cfg.consolidation.lam * c * (w - a)
        W[rows, cols] = w + hebb
        s_new = np.minimum(self._s_max, s + lr.deposit_s * np.abs(ex))
        S[rows, cols] = s_new
        G[rows, cols] = np.minimum(self._g_max, g + lr.deposit_g * s_new)
        if lr.bias:
            units = np.unique(rows)
            self.L(li, "b")[units] += lr.eta * e[units]

    def _evaporate(self):
        lr = self.config.learning
        slow = self.state["step"] % lr.evap_g_period == 0
        for li in range(1, self.n_layers + 1):
            self.L(li, "s")[:] *= 1 - 2.0 ** -lr.evap_s_shift
            if slow:
                self.L(li, "g")[:] *= 1 - 2.0 ** -lr.evap_g_shift

    def _average(self, avg, value, shift):
        return float(avg + (value - avg) / (1 << shift))

    def _conflict(self):
        n = self.n_layers
        return self.L(n, "loss_fast") > self.L(n, "loss_slow") * (1 + self.config.replay.conflict_margin)

    def _consolidate_slots(self):
        kappa = self.config.consolidation.kappa
        for li in range(1, self.n_layers + 1):
            C = self.L(li, "c")
            C[:] = np.minimum(self._c_max, C + kappa * self.L(li, "g"))
            self.L(li, "a")[:] = self.L(li, "w")

    def _prunable(self, li):
        st = self.config.structural
        return (np.abs(self.L(li, "w")) < st.w_min) & (self.L(li, "g") < st.g_min)

    def __repr__(self) -> str:
        return f"FloatLPN({self.config.name!r}, step={self.state.get('step')})"
