"""The one definition of how a model's state is laid out as bytes.

The state section of a model file, the bytes a device exports and imports, and the
C struct serialisation all follow the field order listed here; the C generator
and `docs/model-file.md` are derived from or checked against `state_fields`.
Everything is little-endian and packed (no padding).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .config import LPNConfig
from .topology import Topology

KINDS = ("float", "fixed")


@dataclass(frozen=True)
class Field:
    name: str            # "step", "L1.w", "replay.x", ...
    dtype: str           # numpy dtype string, little-endian
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.shape, dtype=np.int64)))

    @property
    def count(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def src_dtype(units_below: int) -> str:
    return "u1" if units_below <= 256 else "<u2"


def state_fields(cfg: LPNConfig, topo: Topology, kind: str) -> list[Field]:
    """Every field of the learnable state, in file order, for a float or fixed model."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    fixed = kind == "fixed"
    real = "<f8"
    wt = "<i2" if fixed else real          # weights, biases, anchors
    trail = "u1" if fixed else real        # s, g, c
    loss = "<i4" if fixed else real
    sample = "<i2" if fixed else real
    out = [
        Field("step", "<u4", ()),
        Field("prng", "<u4", ()),
        Field("task", "u1", ()),
        Field("saturations", "<u4", ()),
        Field("seen", "<u4", ()),
    ]
    sizes = cfg.sizes
    for li, lt in enumerate(topo.layers, start=1):
        n, k = lt.units, lt.fan_in
        p = f"L{li}."
        out += [
            Field(p + "budget", "<u2", ()),
            Field(p + "loss_fast", loss, ()),
            Field(p + "loss_slow", loss, ()),
            Field(p + "boost", "u1", (n,)),
            Field(p + "b", wt, (n,)),
            Field(p + "count", "u1", (n,)),
            Field(p + "src", src_dtype(sizes[li - 1]), (n, k)),
            Field(p + "w", wt, (n, k)),
            Field(p + "s", trail, (n, k)),
            Field(p + "g", trail, (n, k)),
        ]
        if cfg.consolidation.enabled:
            out += [Field(p + "a", wt, (n, k)), Field(p + "c", trail, (n, k))]
    if cfg.replay.enabled:
        m = cfg.replay.capacity
        out += [
            Field("replay.x", sample, (m, sizes[0])),
            Field("replay.t", sample, (m, sizes[-1])),
            Field("replay.task", "u1", (m,)),
        ]
    return out


def state_nbytes(fields: Iterable[Field]) -> int:
    return sum(f.nbytes for f in fields)


def pack_state(fields: list[Field], values: dict[str, np.ndarray]) -> bytes:
    """Serialise `values` (name -> array) in field order; every field must be present."""
    parts = []
    for f in fields:
        if f.name not in values:
            raise KeyError(f"state has no field {f.name!r}")
        arr = np.asarray(values[f.name])
        if arr.shape != f.shape:
            raise ValueError(f"state field {f.name}: shape {arr.shape}, layout says {f.shape}")
        want = np.dtype(f.dtype)
        if want.kind in "iu":
            info = np.iinfo(want)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"state field {f.name}: value outside {want}")
        parts.append(np.ascontiguousarray(arr, dtype=want).tobytes())
    return b"".join(parts)


def unpack_state(fields: list[Field], data: bytes) -> dict[str, np.ndarray]:
    """Parse bytes made by `pack_state`; the length must match exactly."""
    need = state_nbytes(fields)
    if len(data) != need:
        raise ValueError(f"state is {len(data)} bytes, the layout needs {need}")
    out: dict[str, np.ndarray] = {}
    pos = 0
    for f in fields:
        arr = np.frombuffer(data, dtype=f.dtype, count=f.count, offset=pos).reshape(f.shape)
        out[f.name] = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
        pos += f.nbytes
    return out


# ---------------------------------------------------------------------------
# Formats and constants of a fixed model (also stored in the model file).
FORMAT_SCALARS = ("fs", "fg", "fc")
CONSTANTS = ("ETA", "AS", "AG", "GS", "GG", "DS", "DG", "KAPPA", "LAM", "MARGIN", "GMIN", "NOISE")


def format_fields(cfg: LPNConfig) -> list[Field]:
    n_layers = len(cfg.layers)
    return (
        [Field("fa", "u1", (n_layers + 1,)), Field("fw", "u1", (n_layers,))]
        + [Field(name, "u1", ()) for name in FORMAT_SCALARS]
        + [Field(name, "<i4", ()) for name in CONSTANTS]
        + [Field("WMIN", "<i2", (n_layers,))]
    )
