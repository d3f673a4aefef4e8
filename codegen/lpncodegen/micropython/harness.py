"""Drive a generated MicroPython learner and the host's FixedLPN with the same operations.

An operation stream is a list of `Op`s (learn, contrast, consolidate, replay,
structural, predict). `encode` writes it as a binary file that `driver.py` reads
under MicroPython; `run_reference` applies it to a FixedLPN; `run_emulated` to a
generated module executed in CPython (see `viper32`). Each records an 8-byte
SHA-256 prefix of the state after every operation and the outputs of every
predict, so two runs can be compared step by step and the first divergence named.
"""
from __future__ import annotations

import copy
import hashlib
import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .toolchain import micropython_command

DRIVER = Path(__file__).with_name("driver.py")
DIGEST = 8

LEARN, CONTRAST, CONSOLIDATE, REPLAY, STRUCTURAL, PREDICT = b"L", b"C", b"K", b"R", b"S", b"P"


@dataclass
class Op:
    code: bytes
    x: np.ndarray | None = None      # int16 input
    t: np.ndarray | None = None      # int16 target
    task: int = 0
    n: int = 0                       # replay count


@dataclass
class Trace:
    digests: list[bytes] = field(default_factory=list)   # after every op
    outputs: list[list[int]] = field(default_factory=list)  # of every predict
    state: bytes = b""                                   # at the end


def random_ops(model: Any, n_learn: int, seed: int = 0, *, contrast_every: int = 0,
               consolidate_every: int = 0, replay_every: int = 0, structural_every: int = 0,
               predict_every: int = 0, task_every: int = 50, saturate_every: int = 0) -> list[Op]:
    """A reproducible stream: `n_learn` labelled steps on uniform [0, 1) inputs, one-hot
    targets from the current task's outputs, tasks switching every `task_every` steps,
    and the other operations interleaved every so many learning steps (0: never).
    Every `saturate_every`-th input is scaled far outside the input format."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    masks = [np.flatnonzero(cfg.task_mask(t)) for t in range(cfg.tasks.count)]
    ops: list[Op] = []
    for i in range(1, n_learn + 1):
        task = ((i - 1) // task_every) % cfg.tasks.count
        x = rng.uniform(0, 1, cfg.sizes[0])
        if saturate_every and i % saturate_every == 0:
            x = x * 40 - 20
        t = np.zeros(cfg.sizes[-1])
        t[int(rng.choice(masks[task]))] = 1.0
        x_q = model.quantise_input(x[None, :])[0]
        t_q = model.quantise_target(t[None, :])[0]
        ops.append(Op(LEARN, x_q, t_q, task))
        if contrast_every and i % contrast_every == 0:
            ops.append(Op(CONTRAST, model.quantise_input(rng.uniform(0, 1, cfg.sizes[0])[None, :])[0]))
        if consolidate_every and i % consolidate_every == 0:
            ops.append(Op(CONSOLIDATE))
        if replay_every and i % replay_every == 0:
            ops.append(Op(REPLAY, n=int(rng.integers(1, 4))))
        if structural_every and i % structural_every == 0:
            ops.append(Op(STRUCTURAL))
        if predict_every and i % predict_every == 0:
            ops.append(Op(PREDICT, x_q))
    return ops


def encode(ops: Iterable[Op], n_in: int, n_out: int) -> bytes:
    parts = []
    for op in ops:
        parts.append(op.code)
        if op.code == LEARN:
            parts += [_i16(op.x, n_in), _i16(op.t, n_out), bytes([op.task])]
        elif op.code in (CONTRAST, PREDICT):
            parts.append(_i16(op.x, n_in))
        elif op.code == REPLAY:
            parts.append(bytes([op.n]))
    return b"".join(parts)


def _i16(v: Any, n: int) -> bytes:
    arr = np.asarray(v, dtype=np.int64)
    if arr.shape != (n,):
        raise ValueError(f"expected {n} values, got shape {arr.shape}")
    return arr.astype("<i2").tobytes()


def digest(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()[:DIGEST]


def _ints(v: np.ndarray | None) -> list[int]:
    assert v is not None, "this op needs a vector"
    return [int(e) for e in v]


def apply(learner: Any, op: Op, host: bool) -> list[int] | None:
    """One op on a FixedLPN (host=True) or a generated module's LPN."""
    if op.code == LEARN:
        if host:
            learner.learn_q(op.x, op.t, op.task)
        else:
            learner.learn(_ints(op.x), _ints(op.t), op.task)
    elif op.code == CONTRAST:
        if host:
            learner.contrast_q(op.x)
        else:
            learner.contrast(_ints(op.x))
    elif op.code == CONSOLIDATE:
        learner.consolidate()
    elif op.code == REPLAY:
        learner.replay(op.n)
    elif op.code == STRUCTURAL:
        learner.structural()
    elif op.code == PREDICT:
        y = learner.predict_q(op.x) if host else learner.predict(_ints(op.x))
        return [int(v) for v in y]
    else:
        raise ValueError(f"unknown op {op.code!r}")
    return None


def run_reference(model: Any, ops: Iterable[Op]) -> Trace:
    """The ops on a copy of the FixedLPN (the model itself is left as it is)."""
    m = copy.deepcopy(model)
    trace = Trace()
    for op in ops:
        y = apply(m, op, host=True)
        if y is not None:
            trace.outputs.append(y)
        trace.digests.append(digest(m.state_bytes()))
    trace.state = m.state_bytes()
    return trace


def run_emulated(module: Any, ops: Iterable[Op], state: bytes) -> Trace:
    """The ops on a generated module loaded in CPython (`viper32.load_module`)."""
    net = module.LPN(state)
    trace = Trace()
    for op in ops:
        y = apply(net, op, host=False)
        if y is not None:
            trace.outputs.append(y)
        trace.digests.append(digest(net.state_bytes()))
    trace.state = net.state_bytes()
    return trace


def run_micropython(out_dir: str | os.PathLike, module: str, ops: list[Op], n_in: int, n_out: int,
                    work: str | os.PathLike, timeout: float = 600) -> Trace:
    """The ops under the MicroPython unix port, on the module generated in out_dir."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    ops_file, trace_file, state_file = work / "ops.bin", work / "trace.bin", work / "final.state"
    ops_file.write_bytes(encode(ops, n_in, n_out))
    cmd = micropython_command() + [str(DRIVER), "trace", module, str(ops_file.resolve()),
                                   str(trace_file.resolve()), str(state_file.resolve())]
    env = dict(os.environ, MICROPYPATH=str(Path(out_dir).resolve()))
    proc = subprocess.run(cmd, cwd=out_dir, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"MicroPython failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return _parse_trace(trace_file.read_bytes(), ops, n_out, state_file.read_bytes())


def _parse_trace(data: bytes, ops: list[Op], n_out: int, state: bytes) -> Trace:
    trace = Trace(state=state)
    pos = 0
    for op in ops:
        if op.code == PREDICT:
            trace.outputs.append(list(struct.unpack_from("<%dh" % n_out, data, pos)))
            pos += 2 * n_out
        trace.digests.append(data[pos:pos + DIGEST])
        pos += DIGEST
    if pos != len(data):
        raise RuntimeError(f"trace is {len(data)} bytes, {pos} expected for {len(ops)} ops")
    return trace


def first_divergence(ops: list[Op], ref: Trace, got: Trace) -> str | None:
    """None if the traces agree; else which op first differs and how."""
    for i, (da, db) in enumerate(zip(ref.digests, got.digests)):
        if da != db:
            return f"state differs after op {i} ({ops[i].code.decode()}) of {len(ops)}"
    if len(ref.digests) != len(got.digests):
        return f"{len(got.digests)} ops ran, {len(ref.digests)} expected"
    for i, (ya, yb) in enumerate(zip(ref.outputs, got.outputs)):
        if ya != yb:
            return f"predict {i} gave {yb}, the host model {ya}"
    if ref.state != got.state:
        return "final state bytes differ"
    return None
