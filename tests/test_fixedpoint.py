"""The integer helpers and the PRNG against their definitions in docs/fixed-point.md."""
from __future__ import annotations

from fractions import Fraction
import math

import numpy as np
from hypothesis import given, strategies as st

from lpn.fixedpoint import frac_bits_for, quantise, recip_table, rshr, s16, u8
from lpn.prng import below, xorshift32


@given(st.integers(-2**61, 2**61), st.integers(0, 40))
def test_rshr_rounds_half_up(v, n):
    expected = v if n == 0 else math.floor(Fraction(v, 2**n) + Fraction(1, 2))
    assert rshr(v, n) == expected
    assert int(rshr(np.array([v], dtype=np.int64), n)[0]) == expected


def test_rshr_negative_halves_go_up():
    assert rshr(-5, 1) == -2  # -2.5 -> -2
    assert rshr(5, 1) == 3    # 2.5 -> 3
    assert rshr(-6, 2) == -1  # -1.5 -> -1


def test_saturation():
    assert s16(40000) == 32767 and s16(-40000) == -32768
    assert u8(-3) == 0 and u8(300) == 255


def test_quantise_rejects_nan_and_saturates():
    assert list(quantise([0.5, -0.5, 100.0], 14)) == [8192, -8192, 32767]
    try:
        quantise([float("nan")], 8)
    except ValueError as exc:
        assert "NaN" in str(exc)
    else:
        raise AssertionError("NaN was quantised")


def test_recip_table_is_rounded_reciprocal():
    for fc in (0, 4, 8):
        table = recip_table(fc)
        for c in (0, 1, 17, 255):
            exact = Fraction(2**15) / (1 + Fraction(c, 2**fc))
            assert table[c] == math.floor(exact + Fraction(1, 2))
        assert table.max() <= 32768


def test_frac_bits_for():
    assert frac_bits_for(1.0) == 14
    assert frac_bits_for(7.9) == 12
    assert frac_bits_for(0.0) == 15


def test_xorshift32_known_values():
    # Marsaglia's xorshift32 (13, 17, 5) from state 1.
    seq = []
    x = 1
    for _ in range(3):
        x = xorshift32(x)
        seq.append(x)
    assert seq == [270369, 67634689, 2647435461]
    state, v = below(1, 10)
    assert state == 270369 and v == 270369 % 10
