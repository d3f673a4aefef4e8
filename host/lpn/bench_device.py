"""`lpn bench device`: exact cost of a predict and a learn step on the emulated MCUs.

The bench firmware (firmware/src/bench/, environments bench_m4, bench_m3 and
bench_avr in firmware/envs/bench.ini) runs the generated learner and a dense
fixed-point backprop network of the same parameter count (lpn_dense.h) on the
same samples, each step between markers, in one run:

- Cortex-M4 and Cortex-M3 in QEMU (mps2-an386, mps2-an385): executed instructions
  between the markers, counted by the project's TCG plugin (lpn.icount);
- ATmega328P in simavr: cycles between the edges of the marker pin (lpn.avr).

Each run is made twice and the two must agree exactly. The markers' own cost,
measured by an empty pair in the same run, is subtracted. Flash and RAM come from
the binutils size tools: of each bench firmware, of the production firmware of
the same board, of the learner alone (lpncodegen.footprint) and of the dense
module alone (its object file).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from . import build_firmware, pio
from .bench_host import mlp_hidden_for, parameter_count

# Order of the spans in each round of the bench firmware (src/bench/bench_main.c).
SPANS = ("empty", "lpn_predict", "lpn_learn", "dense_predict", "dense_learn")
DEFAULT_REPS = 16


@dataclass(frozen=True)
class Target:
    name: str          # as shown
    env: str           # the bench environment
    production: str    # the production environment of the same board, for its size
    unit: str          # "instructions" or "cycles"
    kind: str          # "qemu" or "simavr"


TARGETS = {
    "m4": Target("Cortex-M4", "bench_m4", "qemu_m4", "instructions", "qemu"),
    "m3": Target("Cortex-M3", "bench_m3", "qemu_m3", "instructions", "qemu"),
    "avr": Target("ATmega328P", "bench_avr", "simavr_uno", "cycles", "simavr"),
}


@dataclass
class StepCost:
    per_step: list[int]            # every measured step, markers' cost subtracted

    @property
    def mean(self) -> float:
        return statistics.fmean(self.per_step)

    def summary(self) -> dict[str, Any]:
        return {"mean": self.mean, "min": min(self.per_step), "max": max(self.per_step),
                "per_step": self.per_step}


@dataclass
class TargetResult:
    target: str
    env: str
    unit: str
    model: str
    synapses: int
    params: int
    dense_hidden: int
    dense_params: int
    reps: int
    repeatable: bool
    marker_cost: int
    steps: dict[str, StepCost]
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def predict_per_synapse(self) -> float:
        return self.steps["lpn_predict"].mean / self.synapses

    @property
    def learn_ratio(self) -> float:
        return self.steps["lpn_learn"].mean / self.steps["dense_learn"].mean

    @property
    def predict_ratio(self) -> float:
        return self.steps["lpn_predict"].mean / self.steps["dense_predict"].mean

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "steps"}
        out["steps"] = {name: cost.summary() for name, cost in self.steps.items()}
        out["predict_per_synapse"] = self.predict_per_synapse
        out["lpn_over_dense_learn"] = self.learn_ratio
        out["lpn_over_dense_predict"] = self.predict_ratio
        return out


class BenchError(RuntimeError):
    """A bench run did not give usable figures; the message says why."""


def _io(model: Any) -> tuple[int, int]:
    positions = model.topology.positions
    return len(positions[0]), len(positions[-1])


def dense_hidden_for(model: Any) -> tuple[int, int, int]:
    """(LPN parameters, dense hidden width, dense parameters) for `model`'s config."""
    cfg = model.config
    n_in, n_out = _io(model)
    params = parameter_count(cfg)
    hidden = mlp_hidden_for(params, n_in, n_out)
    return params, hidden, hidden * (n_in + n_out + 1) + n_out


def _model_spec(target: Target, model: str | None) -> str:
    return model if model is not None else build_firmware.default_model_spec(target.env)


def build_bench(target: Target, reps: int, model: str | None, build_root: Path) -> tuple[Any, Any, int, int]:
    """Build the bench firmware; returns (build, model, LPN params, dense hidden width)."""
    spec = _model_spec(target, model)
    fixed = build_firmware.resolve_model(spec)
    params, hidden, _ = dense_hidden_for(fixed)
    flags = f"-DLPN_BENCH_REPS={reps} -DLPN_DENSE_HIDDEN={hidden}"
    build = build_firmware.build(target.env, spec, build_dir=build_root / f"{target.env}-r{reps}-h{hidden}",
                                 extra_env={"PLATFORMIO_BUILD_FLAGS": flags})
    return build, fixed, params, hidden


def run_spans(target: Target, elf: Path) -> list[int]:
    """Raw spans of one run of the bench firmware, markers' cost included."""
    if target.kind == "qemu":
        from .emulator import qemu_machine_for_env
        from .icount import run_icount
        run = run_icount(elf, machine=qemu_machine_for_env(target.env))
        if run.exit_code != 0:
            raise BenchError(f"{target.name}: the bench firmware exited with {run.exit_code}:\n{run.output}")
        return run.spans()
    from .avr import run_until_done, simavr_target_for_env
    mcu, frequency = simavr_target_for_env(target.env)
    emulator = run_until_done(elf, marker="B5", mcu=mcu, frequency=frequency)
    if emulator.exit_reason != "done":
        raise BenchError(f"{target.name}: simavr ended with {emulator.exit_reason}:\n{emulator.output}")
    return emulator.spans()


def split_spans(spans: list[int], reps: int, name: str) -> tuple[int, dict[str, StepCost]]:
    """Per-step costs from one run's spans, the empty pair's cost subtracted."""
    if len(spans) != reps * len(SPANS):
        raise BenchError(f"{name}: expected {reps * len(SPANS)} marker spans, got {len(spans)}")
    rounds = [spans[i:i + len(SPANS)] for i in range(0, len(spans), len(SPANS))]
    empties = {r[0] for r in rounds}
    if len(empties) != 1:
        raise BenchError(f"{name}: the empty span varies ({sorted(empties)}): something interrupts the markers")
    marker = empties.pop()
    steps = {span: StepCost([r[i] - marker for r in rounds]) for i, span in enumerate(SPANS) if span != "empty"}
    return marker, steps


def _size_dict(size: pio.FirmwareSize) -> dict[str, int]:
    return {"flash": size.flash, "ram": size.ram}


def dense_object_size(build: Any) -> dict[str, int] | None:
    """Flash and RAM of the dense module alone, from its object file in the build."""
    objects = list(Path(build.program).parent.rglob("lpn_dense.o"))
    if not objects:
        return None
    return _size_dict(pio.size_of(objects[0]))


def learner_footprint(fixed: Any, target: Target) -> dict[str, int] | None:
    """The learner alone on the target's core (lpncodegen.footprint), where it knows the core."""
    from lpncodegen import footprint
    core = {"m4": "cortex-m4", "m3": "cortex-m3", "avr": "atmega328p"}.get(next(k for k, v in TARGETS.items() if v is target))
    if core is None:
        return None
    fp = footprint.measure(fixed, core)
    return {"flash": fp.flash, "ram": fp.ram}


def measure_target(key: str, reps: int, model: str | None, build_root: Path, runs: int = 2,
                   production: bool = True) -> TargetResult:
    target = TARGETS[key]
    build, fixed, params, hidden = build_bench(target, reps, model, build_root)
    results = [run_spans(target, build.program) for _ in range(runs)]
    repeatable = all(r == results[0] for r in results)
    if not repeatable:
        raise BenchError(f"{target.name}: two runs of the same firmware gave different counts")
    marker, steps = split_spans(results[0], reps, target.name)
    n_in, n_out = _io(fixed)
    result = TargetResult(target.name, target.env, target.unit, str(_model_spec(target, model)),
                          fixed.topology.synapses, params, hidden, hidden * (n_in + n_out + 1) + n_out,
                          reps, repeatable, marker, steps)
    result.sizes["bench firmware"] = _size_dict(build.size)
    if production and target.production in build_firmware.pio_envs():
        prod = build_firmware.build(target.production, model, build_dir=build_root / f"{target.production}")
        result.sizes["production firmware"] = _size_dict(prod.size)
    learner = learner_footprint(fixed, target)
    if learner is not None:
        result.sizes["learner alone"] = learner
    dense = dense_object_size(build)
    if dense is not None:
        result.sizes["dense module alone"] = dense
    return result


def render(results: list[TargetResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Cost of one step, exact: mean over the measured steps (min..max)")
    for column in ("target", "step", "unit", "LPN", "dense backprop", "LPN/dense", "LPN per synapse"):
        table.add_column(column, justify="left" if column in ("target", "step", "unit") else "right")
    for r in results:
        for step, ratio in (("predict", r.predict_ratio), ("learn", r.learn_ratio)):
            lpn, dense = r.steps[f"lpn_{step}"], r.steps[f"dense_{step}"]
            table.add_row(r.target, step, r.unit,
                          f"{lpn.mean:,.0f} ({min(lpn.per_step):,}..{max(lpn.per_step):,})",
                          f"{dense.mean:,.0f} ({min(dense.per_step):,}..{max(dense.per_step):,})",
                          f"{ratio:.2f}", f"{lpn.mean / r.synapses:.2f}")
    console.print(table)
    for r in results:
        console.print(f"{r.target}: model {r.model}, {r.synapses} synapses, {r.params} parameters; dense "
                      f"baseline {r.dense_hidden} hidden units, {r.dense_params} parameters")
    sizes = Table(title="Flash and RAM, bytes (binutils size)")
    for column in ("target", "what", "flash", "RAM"):
        sizes.add_column(column, justify="right" if column in ("flash", "RAM") else "left")
    for r in results:
        for what, size in r.sizes.items():
            sizes.add_row(r.target, what, f"{size['flash']:,}", f"{size['ram']:,}")
    console.print(sizes)
    for r in results:
        console.print(f"{r.target}: {r.reps} steps of each kind, two runs identical: {r.repeatable}; "
                      f"markers' own cost {r.marker_cost} {r.unit}, subtracted")


@click.command("device")
@click.option("--targets", default="m4,m3,avr", show_default=True,
              help="Comma-separated: m4 (Cortex-M4, QEMU), m3 (Cortex-M3, QEMU), avr (ATmega328P, simavr).")
@click.option("--model", default=None, metavar="MODEL",
              help="Model file or shipped config (default: each environment's, digits on Arm, uno on AVR).")
@click.option("--reps", type=click.IntRange(min=1, max=1000), default=DEFAULT_REPS, show_default=True,
              help="Steps of each kind measured per run.")
@click.option("--production/--no-production", default=True, show_default=True,
              help="Also build each board's production firmware, for its flash and RAM.")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build here (default: firmware/.pio/bench).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every figure to this JSON file.")
def bench_device(targets: str, model: str | None, reps: int, production: bool, build_dir: Path | None,
                 json_path: Path | None) -> None:
    """Exact instructions (QEMU) and cycles (simavr) of predict and learn, LPN against dense backprop."""
    from .commands.errors import UserError
    from .emulator import EmulatorError
    from .icount import IcountError

    keys = [k.strip() for k in targets.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TARGETS]
    if unknown or not keys:
        raise UserError(f"unknown target {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    root = build_dir if build_dir is not None else pio.FIRMWARE_DIR / ".pio" / "bench"
    results = []
    try:
        for key in keys:
            results.append(measure_target(key, reps, model, root, production=production))
    except (ValueError, BenchError, EmulatorError, IcountError, pio.PioError) as exc:
        raise UserError(str(exc)) from exc
    render(results)
    if json_path is not None:
        json_path.write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n", encoding="utf-8")
