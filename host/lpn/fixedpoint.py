"""Integer helpers of docs/fixed-point.md section 1, on numpy int64 arrays or ints.

numpy's `>>` on signed integers is an arithmetic shift (floor), which is what
`rshr` and `asr` are defined as; the C core spells the same operations without
relying on implementation-defined shifts of negative values.
"""
from __future__ import annotations

import math

import numpy as np

I16_MIN, I16_MAX = -32768, 32767
U8_MAX = 255
I31_MAX = 2**31 - 1
U32_MAX = 2**32 - 1


def rshr(v, n: int):
    """Round half up: (v + 2^(n-1)) >> n for n > 0; v for n == 0."""
    if n < 0:
        raise ValueError(f"rshr shift must be >= 0, got {n}")
    if n == 0:
        return v
    return (v + (1 << (n - 1))) >> n


def sat(v, lo: int, hi: int):
    if isinstance(v, np.ndarray):
        return np.clip(v, lo, hi)
    return min(hi, max(lo, v))


def s16(v):
    return sat(v, I16_MIN, I16_MAX)


def u8(v):
    return sat(v, 0, U8_MAX)


def mulq(a, b, n: int):
    return rshr(a * b, n)


def q16(x: float) -> int:
    """A hyper-parameter as a Q16 integer (round half up, capped at int32)."""
    return min(I31_MAX, int(math.floor(x * 65536 + 0.5)))


def quantise(values, frac: int) -> np.ndarray:
    """Floats to int16 in Q(frac): round half up, saturate. Rejects NaN and inf."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("cannot quantise a NaN or infinite value")
    return s16(np.floor(arr * (1 << frac) + 0.5)).astype(np.int64)


def frac_bits_for(max_abs: float, lo: int = 0, hi: int = 15) -> int:
    """The most fraction bits such that +-max_abs still fits in int16."""
    if max_abs <= 0:
        return hi
    f = hi
    while f > lo and max_abs * (1 << f) > I16_MAX:
        f -= 1
    return f


def recip_table(fc: int) -> np.ndarray:
    """RECIP[c] = 2^15 / (1 + c / 2^fc), rounded half up: the divide by (1 + c)."""
    d = (1 << fc) + np.arange(256, dtype=np.int64)
    return ((1 << (16 + fc)) + d) // (2 * d)
