"""The order of operations of an LPN step, shared by the float and fixed models.

`docs/fixed-point.md` sections 6-9 are written once here: when to consolidate,
replay, evaporate, adapt budgets and rewire, which PRNG draw happens when, and how
the top-B synapses are chosen. The subclasses supply only the arithmetic
(`FloatLPN` in real numbers, `FixedLPN` in integers), so the two models cannot
drift apart in anything but precision.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from . import layout
from .config import LPNConfig
from .prng import xorshift32
from .topology import Topology, build_topology, compatible

SEEN_MAX = 2**32 - 2


class LPNEngine(ABC):
    kind: str = "?"

    def __init__(self, config: LPNConfig, topology: Topology | None = None):
        self.config = config
        self.topology = topology if topology is not None else build_topology(config)
        self.n_layers = len(config.layers)
        self._used = [np.arange(lt.fan_in)[None, :] < lt.count[:, None] for lt in self.topology.layers]
        self._masks = np.array([config.task_mask(t) for t in range(config.tasks.count)], dtype=bool)
        self.state: dict[str, Any] = {}
        self.synapse_updates = 0  # a counter for benchmarks, not part of the state

    # ------------------------------------------------------------------ state
    @property
    def fields(self) -> list[layout.Field]:
        return layout.state_fields(self.config, self.topology, self.kind)

    def state_bytes(self) -> bytes:
        return layout.pack_state(self.fields, self.state)

    def load_state_bytes(self, data: bytes) -> None:
        """Replace the whole state; on any error the model is left unchanged."""
        values = layout.unpack_state(self.fields, data)
        self._check_state(values)
        self.state = self._canonical_state(values)

    def _canonical_state(self, values: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            v = np.asarray(values[f.name])
            if f.shape == ():
                out[f.name] = float(v) if v.dtype.kind == "f" else int(v)
            else:
                out[f.name] = v.astype(np.float64 if np.dtype(f.dtype).kind == "f" else np.int64).copy()
        return out

    def _check_state(self, values: dict[str, np.ndarray]) -> None:
        """Reject a state that no sequence of steps could produce from this config."""
        if int(values["prng"]) == 0:
            raise ValueError("state field prng: 0 is not a valid xorshift32 state")
        if int(values["task"]) >= self.config.tasks.count:
            raise ValueError(f"state field task: {int(values['task'])} >= tasks.count")
        for li, lt in enumerate(self.topology.layers, start=1):
            count = np.asarray(values[f"L{li}.count"])
            if not np.array_equal(count, lt.count):
                raise ValueError(f"state field L{li}.count does not match the config's topology")
            src = np.asarray(values[f"L{li}.src"])
            below = self.config.sizes[li - 1]
            used = self._used[li - 1]
            if np.any(src[used] >= below):
                raise ValueError(f"state field L{li}.src points past the {below} units below")
            if not self.config.structural.enabled and not np.array_equal(src[used], lt.src[used]):
                raise ValueError(f"state field L{li}.src differs from the config's fixed connectivity")
            if np.any((np.asarray(values[f"L{li}.boost"]) != 0) & (np.asarray(values[f"L{li}.boost"]) != 1)):
                raise ValueError(f"state field L{li}.boost: every flag must be 0 or 1")
            if values[f"L{li}.loss_fast"] < 0 or values[f"L{li}.loss_slow"] < 0:
                raise ValueError(f"state fields L{li}.loss_fast/loss_slow: a loss average is never negative")
            budget = int(values[f"L{li}.budget"])
            if not lt.budget_min <= budget <= lt.budget_max:
                raise ValueError(f"state field L{li}.budget {budget} outside [{lt.budget_min}, {lt.budget_max}]")
            for name in ("w", "s", "g", "a", "c", "src"):
                key = f"L{li}.{name}"
                if key in values and np.any(np.asarray(values[key])[~used] != 0):
                    raise ValueError(f"state field {key}: unused slots must hold 0")

    def _fresh_state(self, weights: list[np.ndarray], dtype: type) -> dict[str, Any]:
        cfg = self.config
        zero = dtype(0)
        st: dict[str, Any] = {"step": 0, "prng": cfg.seed, "task": 0, "saturations": 0, "seen": 0}
        for li, lt in enumerate(self.topology.layers, start=1):
            n, k = lt.units, lt.fan_in
            p = f"L{li}."
            st[p + "budget"] = lt.budget_initial
            st[p + "loss_fast"] = zero
            st[p + "loss_slow"] = zero
            st[p + "boost"] = np.zeros(n, dtype=np.int64)
            st[p + "b"] = np.zeros(n, dtype=dtype)
            st[p + "count"] = lt.count.astype(np.int64)
            st[p + "src"] = lt.src.astype(np.int64)
            st[p + "w"] = np.where(self._used[li - 1], weights[li - 1], 0).astype(dtype)
            for name in ("s", "g") + (("a", "c") if cfg.consolidation.enabled else ()):
                st[p + name] = np.zeros((n, k), dtype=dtype)
        if cfg.replay.enabled:
            m = cfg.replay.capacity
            st["replay.x"] = np.zeros((m, cfg.sizes[0]), dtype=dtype)
            st["replay.t"] = np.zeros((m, cfg.sizes[-1]), dtype=dtype)
            st["replay.task"] = np.zeros(m, dtype=np.int64)
        return st

    def L(self, li: int, name: str) -> Any:
        return self.state[f"L{li}.{name}"]

    # ------------------------------------------------------------------ PRNG
    def _next(self) -> int:
        self.state["prng"] = xorshift32(self.state["prng"])
        return self.state["prng"]

    def _below(self, n: int) -> int:
        return self._next() % n

    # ------------------------------------------------------------------ arithmetic hooks
    @abstractmethod
    def _forward(self, x: np.ndarray) -> tuple[list, list]: ...
    @abstractmethod
    def _output_error(self, y: np.ndarray, t: np.ndarray, mask: np.ndarray) -> np.ndarray: ...
    @abstractmethod
    def _feedback_error(self, li: int, e_above: np.ndarray, z: np.ndarray) -> np.ndarray: ...
    @abstractmethod
    def _contrast_errors(self, y: np.ndarray, yp: np.ndarray, yo: np.ndarray | None) -> tuple: ...
    @abstractmethod
    def _perturb(self, x: np.ndarray) -> np.ndarray: ...
    @abstractmethod
    def _loss(self, e: np.ndarray) -> Any: ...
    @abstractmethod
    def _scores(self, li: int, e: np.ndarray, x: np.ndarray) -> np.ndarray: ...
    @abstractmethod
    def _learn_selected(self, li: int, rows: np.ndarray, cols: np.ndarray, e: np.ndarray, x: np.ndarray) -> None: ...
    @abstractmethod
    def _evaporate(self) -> None: ...
    @abstractmethod
    def _average(self, avg: Any, value: Any, shift: int) -> Any: ...
    @abstractmethod
    def _conflict(self) -> bool: ...
    @abstractmethod
    def _consolidate_slots(self) -> None: ...
    @abstractmethod
    def _prunable(self, li: int) -> np.ndarray: ...

    # ------------------------------------------------------------------ public steps
    def _learn(self, x: np.ndarray, t: np.ndarray, task: int) -> None:
        cfg = self.config
        con = cfg.consolidation
        if con.enabled and con.on_task_switch and task != self.state["task"] and self.state["step"] > 0:
            self._consolidate_slots()
        self.state["task"] = task
        self._core(x, t, task)
        if cfg.replay.enabled:
            self._insert(x, t, task)
            n = cfg.replay.count if self.state["seen"] % cfg.replay.every == 0 else 0
            if self._conflict():
                n += cfg.replay.conflict_count
            self._replay_loop(n)

    def _contrast(self, x: np.ndarray) -> None:
        if self.config.hidden_error != "contrastive" or self.n_layers < 2:
            raise ValueError("a contrastive step needs hidden_error = 'contrastive' and a hidden layer")
        self._core(x, None, self.state["task"])

    def consolidate(self) -> None:
        """Anchor every synapse at its weight and strengthen it by its long-term trail."""
        if not self.config.consolidation.enabled:
            raise ValueError("consolidation is disabled in this model's config")
        self._consolidate_slots()

    def replay(self, n: int = 1) -> None:
        """Learn `n` samples drawn (with the model's PRNG) from the replay buffer again."""
        if not self.config.replay.enabled:
            raise ValueError("replay is disabled in this model's config")
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"replay count must be a non-negative integer, got {n!r}")
        if self.filled == 0:
            raise ValueError("the replay buffer is empty")
        self._replay_loop(int(n))

    def structural(self) -> None:
        """Prune weak, unused synapses and regrow them to compatible unconnected inputs."""
        if not self.config.structural.enabled:
            raise ValueError("structural plasticity is disabled in this model's config")
        self._structural()

    @property
    def filled(self) -> int:
        return min(self.state["seen"], self.config.replay.capacity) if self.config.replay.enabled else 0

    # ------------------------------------------------------------------ the step
    def _core(self, x: np.ndarray, t: np.ndarray | None, task: int) -> None:
        cfg = self.config
        n = self.n_layers
        zs, ys = self._forward(x)
        errors: dict[int, np.ndarray] = {}
        passes: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        if t is not None:
            errors[n] = self._output_error(ys[n], t, self._masks[task])
            passes[n] = [(errors[n], ys[n - 1])]
        mode = cfg.hidden_error
        if mode == "contrastive" and n > 1:
            xp = self._perturb(x)
            xo = None
            if cfg.replay.enabled and self.filled > 0:
                xo = self.state["replay.x"][self._below(self.filled)]
            _, yps = self._forward(xp)
            yos = self._forward(xo)[1] if xo is not None else None
            for li in range(1, n):
                ep, en = self._contrast_errors(ys[li], yps[li], yos[li] if yos is not None else None)
                errors[li] = ep
                passes[li] = [(ep, yps[li - 1])] + ([(en, yos[li - 1])] if en is not None else [])
        elif mode == "feedback" and t is not None:
            for li in range(n - 1, 0, -1):
                errors[li] = self._feedback_error(li, errors[li + 1], zs[li])
                passes[li] = [(errors[li], ys[li - 1])]
        losses = {li: self._loss(e) for li, e in errors.items()}
        for li in sorted(passes):
            for e, xin in passes[li]:
                self._update(li, e, xin)
        self.state["step"] = (self.state["step"] + 1) & 0xFFFFFFFF  # u32, wraps as in C
        self._evaporate()
        for li in sorted(losses):
            self._adapt(li, losses[li])
        step = self.state["step"]
        if cfg.consolidation.enabled and cfg.consolidation.every and step % cfg.consolidation.every == 0:
            self._consolidate_slots()
        if cfg.structural.enabled and step % cfg.structural.every == 0:
            self._structural()

    def _update(self, li: int, e: np.ndarray, x: np.ndarray) -> None:
        score = self._scores(li, e, x)
        flat = select_top(score.ravel(), self.L(li, "budget"))
        self.synapse_updates += len(flat)
        if len(flat):
            k = self.topology.layers[li - 1].fan_in
            self._learn_selected(li, flat // k, flat % k, e, x)

    def _adapt(self, li: int, loss: Any) -> None:
        p = f"L{li}."
        fast, slow = self.state[p + "loss_fast"], self.state[p + "loss_slow"]
        if fast == 0 and slow == 0:
            self.state[p + "loss_fast"] = self.state[p + "loss_slow"] = loss
            return
        b = self.config.budget
        fast = self._average(fast, loss, b.fast_shift)
        slow = self._average(slow, loss, b.slow_shift)
        self.state[p + "loss_fast"], self.state[p + "loss_slow"] = fast, slow
        if not b.adapt:
            return
        lt = self.topology.layers[li - 1]
        boost = self.state[p + "boost"]
        boost[:] = 0
        if fast < slow:
            self.state[p + "budget"] = max(lt.budget_min, self.state[p + "budget"] - lt.budget_step_down)
        elif fast > slow:
            self.state[p + "budget"] = min(lt.budget_max, self.state[p + "budget"] + lt.budget_step_up)
            if b.boost_units:
                sums = self.state[p + "s"].sum(axis=1)
                order = np.lexsort((np.arange(len(sums)), -sums))
                top = [j for j in order[: b.boost_units] if sums[j] > 0]
                boost[top] = 1

    def _insert(self, x: np.ndarray, t: np.ndarray, task: int) -> None:
        seen, m = self.state["seen"], self.config.replay.capacity
        if seen < m:
            slot: int | None = seen
        else:
            r = self._next() % (seen + 1)
            slot = r if r < m else None
        if slot is not None:
            self.state["replay.x"][slot] = x
            self.state["replay.t"][slot] = t
            self.state["replay.task"][slot] = task
        self.state["seen"] = min(seen + 1, SEEN_MAX)

    def _replay_loop(self, n: int) -> None:
        for _ in range(n):
            i = self._below(self.filled)
            self._core(self.state["replay.x"][i].copy(), self.state["replay.t"][i].copy(),
                        int(self.state["replay.task"][i]))

    def _structural(self) -> None:
        topo = self.topology
        for li, lt in enumerate(topo.layers, start=1):
            prunable = self._prunable(li) & self._used[li - 1]
            if not prunable.any():
                continue
            src = self.L(li, "src")
            pos_below, tags_below = topo.positions[li - 1], topo.tags[li - 1]
            for j, k in zip(*np.nonzero(prunable)):  # row-major: j, then k, ascending
                cand, _ = compatible(pos_below, tags_below, topo.positions[li][j],
                                     int(topo.tags[li][j]), lt.regrow_radius_sq, lt.tag_min)
                cand = cand[~np.isin(cand, src[j, : lt.count[j]])]
                if len(cand) == 0:
                    continue
                src[j, k] = cand[self._below(len(cand))]
                for name in ("w", "s", "g", "a", "c"):
                    key = f"L{li}.{name}"
                    if key in self.state:
                        self.state[key][j, k] = 0


def select_top(score: np.ndarray, budget: int) -> np.ndarray:
    """Flat indices of the `budget` largest positive scores; ties go to the lower index."""
    positive = np.flatnonzero(score > 0)
    if len(positive) <= budget:
        return positive
    s = score[positive]
    # Sort by score descending, then index ascending (lexsort: last key is primary).
    key = ~s if s.dtype == np.uint64 else -s
    order = np.lexsort((positive, key))
    return np.sort(positive[order[:budget]])


def initial_weights(cfg: LPNConfig, topo: Topology) -> list[np.ndarray]:
    """Uniform(-init, init) float weights per layer; a stream separate from the topology's."""
    rng = np.random.default_rng([cfg.seed, 1])
    return [rng.uniform(-layer.init, layer.init, size=(lt.units, lt.fan_in))
            for layer, lt in zip(cfg.layers, topo.layers)]
