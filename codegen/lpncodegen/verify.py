"""Step-by-step bit-exactness of the generated C against the Python fixed model.

`op_stream` builds a deterministic stream of operations for a config: labelled
steps whose task changes every few dozen samples, inputs that saturate the input
format, and explicit consolidation, replay, structural and contrastive steps,
including calls the model must refuse (an empty replay buffer, a disabled
mechanism). `compare` runs the stream through both backends and checks the
CRC-32 of the state bytes after every operation, plus the return status; at the
first difference it names the state fields that differ.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from lpn import layout
from lpn.fixed import FixedLPN
from lpn.fixedpoint import I16_MAX, I16_MIN, quantise

from .harness import OPS, CompiledLearner, OpStream


def op_stream(model: FixedLPN, n: int, seed: int = 0, task_every: int = 40,
              saturate_every: int = 7, extras_every: int = 13) -> OpStream:
    """n operations for `model`'s config (see the module docstring)."""
    cfg, fmt = model.config, model.formats
    rng = np.random.default_rng(seed)
    n_in, n_out = cfg.sizes[0], cfg.sizes[-1]
    lo, hi = cfg.input.range
    op = np.zeros(n, dtype=np.uint8)
    task = np.zeros(n, dtype=np.uint8)
    arg = np.zeros(n, dtype=np.uint32)
    x = np.zeros((n, n_in), dtype=np.int16)
    t = np.zeros((n, n_out), dtype=np.int16)
    masks = [np.flatnonzero(cfg.task_mask(k)) for k in range(cfg.tasks.count)]
    one = min(1 << fmt.fa[-1], I16_MAX)  # 1.0 saturates when the output format has 15 fraction bits
    extras = ["consolidate", "replay", "structural", "contrast"]
    for i in range(n):
        k = (i // task_every) % cfg.tasks.count
        xi = rng.uniform(lo, hi, n_in)
        if saturate_every and i % saturate_every == saturate_every - 1:
            xi = xi * 64 - 32 * (hi - lo)  # far outside the input format
        x[i] = quantise(xi, fmt.fa[0])
        if rng.random() < 0.15:  # some raw integer extremes too
            x[i, rng.integers(0, n_in)] = rng.choice([I16_MIN, I16_MAX])
        task[i] = k
        if extras_every and i % extras_every == extras_every - 1:
            name = extras[(i // extras_every) % len(extras)]
            op[i] = OPS[name]
            arg[i] = rng.integers(0, 4)
            continue
        op[i] = OPS["learn"]
        label = int(rng.choice(masks[k]))
        if rng.random() < 0.2:  # regression-style targets, occasionally extreme
            t[i] = rng.integers(-2 * one, 2 * one + 1, n_out).clip(I16_MIN, I16_MAX)
        else:
            t[i, label] = one
    return OpStream(op=op, task=task, arg=arg, x=x, t=t)


@dataclass
class Comparison:
    steps: int
    first_difference: int | None      # index of the first op after which the states differ
    detail: str
    python_errors: int                # ops the Python model refused (and so must the C)

    @property
    def equal(self) -> bool:
        return self.first_difference is None


def field_differences(fields: list[layout.Field], a: bytes, b: bytes, limit: int = 6) -> str:
    """Which fields differ between two state byte strings, with a few example elements."""
    if len(a) != len(b):
        return f"lengths differ: {len(a)} vs {len(b)}"
    A, B = layout.unpack_state(fields, a), layout.unpack_state(fields, b)
    lines = []
    for f in fields:
        va, vb = np.atleast_1d(A[f.name]), np.atleast_1d(B[f.name])
        if not np.array_equal(va, vb):
            where = np.argwhere(va != vb)[:limit]
            samples = ", ".join(f"{tuple(int(v) for v in w)}: {va[tuple(w)]} vs {vb[tuple(w)]}"
                                for w in where)
            lines.append(f"{f.name} ({int((va != vb).sum())} elements) {samples}")
    return "; ".join(lines) or "no field differs"


def _state_bytes(model: FixedLPN, fields: list[layout.Field]) -> bytes:
    """model.state_bytes() without its range checks (a state that fails them fails the last check)."""
    return b"".join(np.asarray(model.state[f.name]).astype(f.dtype).tobytes() for f in fields)


def compare(model: FixedLPN, learner: CompiledLearner, ops: OpStream) -> Comparison:
    """Run `ops` through both, from their current (equal) states; compare after every op."""
    start_py = model.state_bytes()
    start_c = learner.state_bytes()
    if start_py != start_c:
        return Comparison(0, -1, "initial states differ: " +
                          field_differences(model.fields, start_py, start_c), 0)
    status, crc = learner.run_ops(ops)
    fields = model.fields
    refused = 0
    for i in range(len(ops)):
        py_status = ops.apply(model, i)
        refused += py_status != 0
        py_bytes = _state_bytes(model, fields)
        c_failed = int(status[i]) < 0
        if (py_status != 0) != c_failed or zlib.crc32(py_bytes) != int(crc[i]):
            # Rebuild the C state at this op for a field-level report.
            learner.load_state_bytes(start_c)
            learner.run_ops(_prefix(ops, i + 1))
            detail = (f"op {i} ({_op_name(int(ops.op[i]))}, task {int(ops.task[i])}): "
                      f"python status {py_status}, C status {int(status[i])}; "
                      + field_differences(model.fields, py_bytes, learner.state_bytes()))
            return Comparison(i + 1, i, detail, refused)
    if model.state_bytes() != learner.state_bytes():
        return Comparison(len(ops), len(ops) - 1, "final states differ: " + field_differences(
            fields, model.state_bytes(), learner.state_bytes()), refused)
    return Comparison(len(ops), None, "", refused)


def _prefix(ops: OpStream, n: int) -> OpStream:
    return OpStream(op=ops.op[:n], task=ops.task[:n], arg=ops.arg[:n], x=ops.x[:n], t=ops.t[:n])


def _op_name(code: int) -> str:
    return {v: k for k, v in OPS.items()}.get(code, str(code))
