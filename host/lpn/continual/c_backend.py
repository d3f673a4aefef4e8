"""The generated C learner, compiled for this machine and run through the cffi harness.

It is the fixed-point model's arithmetic in C: after the same stream its state
bytes equal the `fixed` backend's, which the tests check. Imported only when
`--backend c` is asked for, since it needs a C compiler.
"""
from __future__ import annotations

from ..fixed import FixedLPN
from .backends import Backend, BackendSpec, LPNBackend


def c_backend(spec: BackendSpec) -> Backend:
    from lpncodegen.harness import CompiledLearner
    from lpncodegen.toolchains import ToolchainError

    if spec.arg:
        raise ValueError(f"backend 'c' takes no argument, got {spec.arg!r}")
    try:
        learner = CompiledLearner(FixedLPN(spec.config))
    except ToolchainError as exc:
        raise ValueError(f"backend 'c': cannot build the generated C ({exc})") from exc
    return LPNBackend(learner, "LPN c", spec.targets)
