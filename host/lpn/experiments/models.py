"""The two backends every experiment runs on, built from one config."""
from __future__ import annotations

from ..config import LPNConfig
from ..fixed import FixedLPN
from ..float_model import FloatLPN

KINDS = ("float", "fixed")


def build(kind: str, config: LPNConfig) -> FloatLPN | FixedLPN:
    """A fresh model: the float reference, or the fixed model with the config's default formats."""
    if kind == "float":
        return FloatLPN(config)
    if kind == "fixed":
        return FixedLPN(config)
    raise ValueError(f"unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")
