"""Positions, tags and the local connectivity of an LPN, built from a config.

Distances are compared in integers (positions in 1/256ths of an input pixel) so
that the device, when structural plasticity regrows a synapse, applies exactly
the rule used here to build the table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import TAG_BITS, LPNConfig, LayerConfig

POS_FRAC = 8  # positions are stored as int32 multiples of 2^-POS_FRAC
UNLIMITED = -1  # radius_sq value meaning "no distance limit"


def quantise_position(p: float) -> int:
    return int(math.floor(p * (1 << POS_FRAC) + 0.5))


def radius_sq(radius: float) -> int:
    """Squared radius in position units, or UNLIMITED."""
    if math.isinf(radius):
        return UNLIMITED
    r = quantise_position(radius)
    return r * r


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def popcount16(v: np.ndarray | int) -> np.ndarray | int:
    if isinstance(v, (int, np.integer)):
        return bin(int(v)).count("1")
    v = np.asarray(v).astype(np.int64)
    return _POPCOUNT8[v & 0xFF] + _POPCOUNT8[(v >> 8) & 0xFF]


def _grid_positions(shape: list[int], extent: list[int], channels: int) -> np.ndarray:
    """Unit centres of a grid layer spread over the input's extent, one row per unit."""
    axes = [(np.arange(n) + 0.5) * (e / n) - 0.5 for n, e in zip(shape, extent)]
    mesh = np.meshgrid(*axes, indexing="ij")
    cells = np.stack([m.ravel() for m in mesh], axis=1)
    return np.repeat(cells, channels, axis=0)


def _tags(spec, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(spec, str):  # "random:K": K distinct random bits out of TAG_BITS
        k = int(spec.split(":", 1)[1])
        out = np.zeros(n, dtype=np.uint16)
        for i in range(n):
            bits = rng.choice(TAG_BITS, size=k, replace=False)
            out[i] = sum(1 << int(b) for b in bits)
        return out
    items = spec if isinstance(spec, list) else [spec]
    return np.array([items[i % len(items)] for i in range(n)], dtype=np.uint16)


@dataclass
class LayerTopology:
    """Connectivity of one layer to the layer below it."""
    units: int
    fan_in: int                 # K: slots per unit
    src: np.ndarray             # (units, K) int32 source index; padding slots hold 0
    count: np.ndarray           # (units,) number of used slots
    radius_sq: int              # build radius, squared (or UNLIMITED)
    regrow_radius_sq: int       # structural regrowth radius, squared (or UNLIMITED)
    tag_min: int
    budget_initial: int
    budget_min: int
    budget_max: int
    budget_step_down: int
    budget_step_up: int

    @property
    def synapses(self) -> int:
        return int(self.count.sum())

    @property
    def slots(self) -> int:
        return self.units * self.fan_in


@dataclass
class Topology:
    positions: list[np.ndarray]  # per layer (input first): (units, dims) int32
    tags: list[np.ndarray]       # per layer: (units,) uint16
    layers: list[LayerTopology]  # per learning layer (layer 1 ..)

    @property
    def synapses(self) -> int:
        return sum(layer.synapses for layer in self.layers)


def compatible(pos_prev: np.ndarray, tags_prev: np.ndarray, pos_j: np.ndarray, tag_j: int,
               r_sq: int, tag_min: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate sources of one unit: (indices, squared distances), in index order."""
    d = pos_prev.astype(np.int64) - pos_j.astype(np.int64)
    dist_sq = (d * d).sum(axis=1)
    ok = popcount16(tags_prev & np.uint16(tag_j)) >= tag_min
    if r_sq != UNLIMITED:
        ok &= dist_sq <= r_sq
    idx = np.nonzero(ok)[0]
    return idx, dist_sq[idx]


def _budget(frac: float, synapses: int) -> int:
    return max(1, int(math.ceil(frac * synapses)))


def build_topology(cfg: LPNConfig) -> Topology:
    """Positions, tags and connectivity; deterministic in (config, seed)."""
    rng = np.random.default_rng(cfg.seed)
    extent = cfg.input.shape
    positions = [np.array([[quantise_position(v) for v in row] for row in
                           _grid_positions(extent, extent, 1)], dtype=np.int32)]
    tags = [_tags(cfg.input.tags, cfg.input.units, rng)]
    layers: list[LayerTopology] = []
    for li, layer in enumerate(cfg.layers):
        pos = _layer_positions(layer, extent)
        tg = _tags(layer.tags, layer.units, rng)
        r_sq = radius_sq(layer.radius)
        widen = cfg.structural.widen if cfg.structural.enabled else 1.0
        rr_sq = radius_sq(layer.radius * widen)
        k = layer.fan_in
        src = np.zeros((layer.units, k), dtype=np.int32)
        count = np.zeros(layer.units, dtype=np.int32)
        for j in range(layer.units):
            idx, dist = compatible(positions[-1], tags[-1], pos[j], int(tg[j]), r_sq, layer.tag_min)
            if len(idx) == 0:
                raise ValueError(f"layers[{li}]: unit {j} has no compatible input within radius "
                                 f"{layer.radius} and tag_min {layer.tag_min}")
            order = np.lexsort((idx, dist))[:k]  # nearest first, ties to the lower index
            chosen = np.sort(idx[order])
            src[j, :len(chosen)] = chosen
            count[j] = len(chosen)
        n_syn = int(count.sum())
        b = cfg.budget
        layers.append(LayerTopology(
            units=layer.units, fan_in=k, src=src, count=count, radius_sq=r_sq,
            regrow_radius_sq=rr_sq, tag_min=layer.tag_min,
            budget_initial=_budget(b.initial, n_syn), budget_min=_budget(b.min, n_syn),
            budget_max=_budget(b.max, n_syn), budget_step_down=_budget(b.step_down, n_syn),
            budget_step_up=_budget(b.step_up, n_syn)))
        positions.append(pos)
        tags.append(tg)
    return Topology(positions=positions, tags=tags, layers=layers)


def _layer_positions(layer: LayerConfig, extent: list[int]) -> np.ndarray:
    if layer.position == "center":
        centre = [quantise_position((e - 1) / 2) for e in extent]
        return np.tile(np.array(centre, dtype=np.int32), (layer.units, 1))
    raw = _grid_positions(layer.shape, extent, layer.channels)
    return np.array([[quantise_position(v) for v in row] for row in raw], dtype=np.int32)
