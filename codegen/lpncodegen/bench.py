"""`lpn bench codegen MODEL`: footprint of the generated learner and its speed against numpy.

Prints, for a fixed-point model file: flash and RAM of the learner alone on
Cortex-M0+, Cortex-M4 (arm-none-eabi-size) and the ATmega328P (avr-size) at -Os,
RAM bytes per synapse, and learning throughput of the desktop C (through the
cffi harness) and of the numpy fixed model, measured in the same run on the
same samples, with their ratio. Rounds alternate between the two backends and
the best round of each counts, so a busy machine skews the ratio less.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from .footprint import measure, per_slot_bytes
from .toolchains import TARGETS, ToolchainError

FOOTPRINT_TARGETS = ("cortex-m0plus", "cortex-m4", "atmega328p")


@dataclass
class Throughput:
    numpy_per_s: float
    c_call_per_s: float      # one Python call per sample (learn_q), as the numpy model is driven
    c_batch_per_s: float     # the C learning step alone (one call for a batch)
    identical: bool          # both backends ended in the same state

    @property
    def ratio_call(self) -> float:
        return self.c_call_per_s / self.numpy_per_s

    @property
    def ratio_batch(self) -> float:
        return self.c_batch_per_s / self.numpy_per_s


def samples(model: Any, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n labelled samples in the model's formats: inputs across its range, one-hot targets."""
    cfg, fmt = model.config, model.formats
    rng = np.random.default_rng(seed)
    lo, hi = cfg.input.range
    from lpn.fixedpoint import quantise
    X = quantise(rng.uniform(lo, hi, (n, cfg.sizes[0])), fmt.fa[0])
    tasks = rng.integers(0, cfg.tasks.count, n)
    T = np.zeros((n, cfg.sizes[-1]), dtype=np.int64)
    for i, k in enumerate(tasks):
        T[i, rng.choice(np.flatnonzero(cfg.task_mask(int(k))))] = 1 << fmt.fa[-1]
    return X, T, tasks


def throughput(model: Any, rounds: int = 4, per_round: int = 60, seed: int = 0) -> Throughput:
    """Samples per second of both backends, learning the same samples from the same state."""
    from lpn.fixed import FixedLPN

    from .harness import CompiledLearner

    py = FixedLPN(model.config, model.formats)
    py.load_state_bytes(model.state_bytes())
    c_call = CompiledLearner(model)
    c_batch = CompiledLearner(model)
    X, T, K = samples(model, rounds * per_round, seed)
    best = {"numpy": np.inf, "call": np.inf, "batch": np.inf}
    for r in range(rounds):
        rows = slice(r * per_round, (r + 1) * per_round)
        t0 = time.perf_counter()
        for x, t, k in zip(X[rows], T[rows], K[rows]):
            py.learn_q(x, t, int(k))
        best["numpy"] = min(best["numpy"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        for x, t, k in zip(X[rows], T[rows], K[rows]):
            c_call.learn_q(x, t, int(k))
        best["call"] = min(best["call"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        c_batch.learn_many_q(X[rows], T[rows], K[rows])
        best["batch"] = min(best["batch"], time.perf_counter() - t0)
    same = py.state_bytes() == c_call.state_bytes() == c_batch.state_bytes()
    return Throughput(per_round / best["numpy"], per_round / best["call"], per_round / best["batch"], same)


@click.command("codegen")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--rounds", default=4, show_default=True, help="Alternating timing rounds per backend.")
@click.option("--per-round", default=60, show_default=True, help="Samples per round.")
def bench_codegen(model: str, rounds: int, per_round: int) -> None:
    """Footprint and learning speed of the C generated from MODEL (a fixed-point model file)."""
    from lpn.modelfile import ModelFileError, load

    from .model_view import CodegenError

    try:
        fixed = load(model)
        if getattr(fixed, "kind", None) != "fixed":
            raise CodegenError("the benchmark needs a fixed-point model (convert it first: lpn convert)")
        cfg = fixed.config
        click.echo(f"model {cfg.name}: {fixed.topology.synapses} synapses, sizes {cfg.sizes}")
        click.echo(f"{'target':<15}{'flash B':>10}{'state B':>10}{'work B':>9}{'static B':>10}"
                   f"{'state B/syn':>13}")
        for name in FOOTPRINT_TARGETS:
            fp = measure(fixed, name)
            note = "  (does not fit the part)" if fp.fits is False else ""
            click.echo(f"{name:<15}{fp.flash:>10}{fp.state_ram:>10}{fp.work_ram:>9}{fp.static_ram:>10}"
                       f"{fp.state_per_synapse:>13.2f}{note}")
        click.echo(f"synapse slot fields: {per_slot_bytes(fixed)} B of RAM per synapse "
                   "(the rest of the state is per unit, per layer and the replay buffer)")
        tp = throughput(fixed, rounds, per_round)
    except (ModelFileError, CodegenError, ToolchainError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"numpy fixed model : {tp.numpy_per_s:10.1f} samples/s")
    click.echo(f"C, call per sample: {tp.c_call_per_s:10.1f} samples/s  ({tp.ratio_call:.1f}x numpy)")
    click.echo(f"C learning step   : {tp.c_batch_per_s:10.1f} samples/s  ({tp.ratio_batch:.1f}x numpy)")
    click.echo(f"bit-identical after the run: {'yes' if tp.identical else 'NO'}")
    if not tp.identical:
        raise click.ClickException("the C and numpy models diverged during the benchmark")


__all__ = ["bench_codegen", "throughput", "samples", "TARGETS"]
