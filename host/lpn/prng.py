"""xorshift32: the one PRNG that drives every random choice after construction.

Every backend (Python, C, MicroPython) implements exactly this, so a replayed
sample, a regrown synapse or a contrastive perturbation is the same everywhere.
"""
from __future__ import annotations

MASK32 = 0xFFFFFFFF


def xorshift32(x: int) -> int:
    x ^= (x << 13) & MASK32
    x ^= x >> 17
    x ^= (x << 5) & MASK32
    return x & MASK32


def below(state: int, n: int) -> tuple[int, int]:
    """Advance `state`; return (new state, a value in [0, n))."""
    if n < 1:
        raise ValueError(f"below() needs n >= 1, got {n}")
    state = xorshift32(state)
    return state, state % n
