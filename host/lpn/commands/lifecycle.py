"""`lpn new`, `lpn train`, `lpn convert` and `lpn info`: a model file's life on the host.

A user's mistake (a missing file, a malformed CSV, a model of the wrong kind) is
printed as one `error: ...` line with exit code 2, never as a traceback. A command
that fails leaves every file as it was: models are written atomically and only
after all the work has succeeded.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .. import configs, datasets, layout, modelfile
from .errors import UserError, user_errors

# Samples per partial_fit call while training: small enough for a smooth progress bar,
# large enough that the per-call validation costs nothing.
TRAIN_CHUNK = 32


# The shared user-error type, under the name this module has always used.
LPNError = UserError


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _file_path() -> click.Path:
    # Existence is checked when the file is read, so the message is ours (`error: ...`).
    return click.Path(dir_okay=False, path_type=Path)


# ---------------------------------------------------------------------------
# checks shared by train and convert
def _check_features(model: Any, X: np.ndarray, data: Path) -> None:
    need = model.config.sizes[0]
    if X.shape[1] != need:
        hint = "; is one of them the label? name it with --label" if X.shape[1] == need + 1 else ""
        raise LPNError(f"{data}: {X.shape[1]} feature columns, the model's input has {need} units{hint}")


def _check_labels(model: Any, y: np.ndarray, data: Path, task: int | None) -> None:
    outputs = model.config.outputs
    bad = sorted({int(v) for v in y if v >= outputs})
    if bad:
        raise LPNError(f"{data}: label {bad[0]} is not an output of the model (outputs 0..{outputs - 1})")
    if task is None or not model.config.tasks.masks:
        return
    mask = model.config.tasks.masks[task]
    outside = sorted({int(v) for v in y} - set(mask))
    if outside:
        raise LPNError(f"{data}: labels {outside} are outside task {task}'s outputs {mask}")


def _tasks_of_labels(model: Any, y: np.ndarray, data: Path) -> np.ndarray:
    """Each sample's task: the first task whose output mask holds its label."""
    masks = model.config.tasks.masks
    if not masks:
        return np.zeros(len(y), dtype=np.int64)
    task_of = {}
    for t, mask in enumerate(masks):
        for o in mask:
            task_of.setdefault(o, t)
    orphans = sorted({int(v) for v in y} - set(task_of))
    if orphans:
        raise LPNError(f"{data}: labels {orphans} are in no task's output mask; pass --task")
    return np.array([task_of[int(v)] for v in y], dtype=np.int64)


def _check_task(model: Any, task: int) -> None:
    count = model.config.tasks.count
    if task >= count:
        raise LPNError(f"--task {task}: the model has {count} task(s), 0..{count - 1}")


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise LPNError(f"{path} exists; pass --force to overwrite it")


# ---------------------------------------------------------------------------
@click.command(help=f"""Create an untrained model from CONFIG and write it to --out.

CONFIG is the name of a shipped config ({', '.join(configs.names())}) or the path
of a .toml or .json config file.""")
@click.argument("config_spec", metavar="CONFIG")
@click.option("--out", "out", required=True, type=_file_path(), help="Model file to write.")
@click.option("--kind", type=click.Choice(layout.KINDS), default="float", show_default=True,
              help="float: the research model, for training and conversion; "
                   "fixed: integer model with default formats.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@user_errors
def new(config_spec: str, out: Path, kind: str, force: bool) -> None:
    _refuse_overwrite(out, force)
    cfg = configs.resolve(config_spec)
    if kind == "fixed":
        from ..fixed import FixedLPN
        model = FixedLPN.new(cfg)
    else:
        from ..float_model import FloatLPN
        model = FloatLPN.new(cfg)
    modelfile.save(model, out)
    _console().print(f"wrote {out}: {kind} model {cfg.name!r}, {model.topology.synapses} synapses, "
                     f"{len(model.state_bytes())} bytes of state")


# ---------------------------------------------------------------------------
@click.command()
@click.argument("model_path", metavar="MODEL", type=_file_path())
@click.argument("data", metavar="DATA.csv", type=_file_path())
@click.option("--label", required=True, metavar="COLUMN",
              help="CSV column holding the class labels (output indices).")
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Passes over the data.")
@click.option("--task", type=click.IntRange(min=0), default=None,
              help="Task id the samples belong to (selects the output mask). "
                   "Default: each sample's task is the one whose mask holds its label.")
@click.option("--out", "out", type=_file_path(), default=None,
              help="Write the trained model here instead of back to MODEL.")
@user_errors
def train(model_path: Path, data: Path, label: str, epochs: int, task: int, out: Path | None) -> None:
    """Train MODEL on the rows of DATA.csv, in file order, and save it.

    Works for float and fixed models alike. The file is replaced only when
    training has finished, so an interrupted run leaves MODEL as it was.
    """
    model = modelfile.load(model_path)
    X, y, _ = datasets.load_csv(data, label=label)
    if task is not None:
        _check_task(model, task)
    _check_features(model, X, data)
    _check_labels(model, y, data, task)
    tasks = np.full(len(y), task) if task is not None else _tasks_of_labels(model, y, data)
    classes = np.arange(model.config.outputs)
    n = len(X)
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True)) as progress:
        bar = progress.add_task(f"training {model_path.name}", total=n * epochs)
        for _ in range(epochs):
            for start in range(0, n, TRAIN_CHUNK):
                stop = min(n, start + TRAIN_CHUNK)
                model.partial_fit(X[start:stop], y[start:stop], classes=classes, task=tasks[start:stop])
                progress.advance(bar, stop - start)
    accuracy = model.score(X, y, task=tasks)
    target = out or model_path
    modelfile.save(model, target)
    where = f"task {task}" if task is not None else f"tasks {sorted(set(tasks.tolist()))}"
    _console().print(f"trained {n} samples x {epochs} epoch(s) on {where}; "
                     f"accuracy on {data.name}: {accuracy:.4f}; saved {target}")


# ---------------------------------------------------------------------------
@click.command()
@click.argument("model_path", metavar="MODEL", type=_file_path())
@click.option("--calibrate", "calibration", required=True, metavar="DATA.csv", type=_file_path(),
              help="Samples whose value ranges choose the number formats.")
@click.option("--out", "out", required=True, metavar="FIXED_MODEL", type=_file_path(),
              help="Fixed-point model file to write.")
@click.option("--label", default=None, metavar="COLUMN",
              help="CSV column with class labels: also measure both models' accuracy.")
@user_errors
def convert(model_path: Path, calibration: Path, out: Path, label: str | None) -> None:
    """Convert a float MODEL to fixed point, calibrated on DATA.csv.

    Prints the converter's report and the gap between the two models on the
    calibration data: how often their predictions agree and, with --label,
    their accuracies.
    """
    if out.resolve() == model_path.resolve():
        raise LPNError("--out is the float model itself; write the fixed model to another file")
    float_model = modelfile.load(model_path, expect_kind="float")
    X, y, _ = datasets.load_csv(calibration, label=label)
    _check_features(float_model, X, calibration)
    if y is not None:
        _check_labels(float_model, y, calibration, task=None)
        # Class labels are output indices; the file stores no class list.
        float_model.classes_ = np.arange(float_model.config.outputs)
    from ..convert import convert as convert_model
    fixed_model, report = convert_model(float_model, X, y)
    agreement = _agreement(float_model, fixed_model, X)
    modelfile.save(fixed_model, out)

    console = _console()
    table = Table(title="conversion report", title_justify="left", show_header=False, box=None,
                  pad_edge=False, padding=(0, 1))
    for key, value in report.items():
        table.add_row(str(key), _short(value))
    console.print(table)
    line = f"float vs fixed on {calibration.name}: predictions agree on {agreement:.2%} of {len(X)} samples"
    if "float_accuracy" in report:
        line += (f"; accuracy float {report['float_accuracy']:.4f}, fixed {report['fixed_accuracy']:.4f}"
                 f" (gap {report['float_accuracy'] - report['fixed_accuracy']:+.4f})")
    console.print(line)
    console.print(f"wrote {out}")


def _agreement(float_model: Any, fixed_model: Any, X: np.ndarray) -> float:
    """How often the two models pick the same output (argmax over all outputs)."""
    a = np.argmax(float_model.decision_function(X), axis=1)
    b = np.argmax(fixed_model.decision_function(X), axis=1)
    return float(np.mean(a == b))


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------
@click.command()
@click.argument("model_path", metavar="MODEL", type=_file_path())
@user_errors
def info(model_path: Path) -> None:
    """Summarise a model file: layers, mechanisms, formats, state size and hash."""
    model = modelfile.load(model_path)
    cfg, state = model.config, model.state
    console = _console()
    console.print(f"model {cfg.name!r}: {model.kind}, format version {modelfile.VERSION}, "
                  f"{model_path.stat().st_size} bytes on disk")
    console.print(f"model hash: {modelfile.model_hash(model)}")
    console.print(f"input: shape {cfg.input.shape}, {cfg.sizes[0]} units, range {cfg.input.range}")

    layers = Table(title="layers", title_justify="left", box=None, pad_edge=False, padding=(0, 1))
    for column in ("#", "shape", "units", "fan-in", "synapses", "activation", "radius", "budget",
                   "min..max"):
        layers.add_column(column, justify="left" if column in ("shape", "activation") else "right")
    for li, (lc, lt) in enumerate(zip(cfg.layers, model.topology.layers), start=1):
        shape = "x".join(map(str, lc.shape)) + (f" x {lc.channels}" if lc.channels > 1 else "")
        synapses = int(np.sum(state[f"L{li}.count"]))
        radius = "inf" if math.isinf(lc.radius) else f"{lc.radius:g}"
        layers.add_row(str(li), shape, str(lt.units), str(lt.fan_in), str(synapses), lc.activation,
                       radius, str(int(state[f"L{li}.budget"])), f"{lt.budget_min}..{lt.budget_max}")
    console.print(layers)

    for line in _mechanisms(model):
        console.print(line)
    if model.kind == "fixed":
        f = model.formats
        console.print(f"formats: fa {f.fa}, fw {f.fw}, fs {f.fs}, fg {f.fg}, fc {f.fc}")
        console.print("constants: " + ", ".join(f"{k} {f.consts[k]}" for k in layout.CONSTANTS)
                      + f", WMIN {f.WMIN}")
    fields = layout.state_fields(cfg, model.topology, model.kind)
    console.print(f"state: {layout.state_nbytes(fields)} bytes in {len(fields)} fields; "
                  f"{int(state['step'])} steps learnt, {int(state['saturations'])} saturations")


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _mechanisms(model: Any) -> list[str]:
    cfg = model.config
    con, rep, st, bud = cfg.consolidation, cfg.replay, cfg.structural, cfg.budget
    lines = [f"hidden error: {cfg.hidden_error}; bias learning {_on(cfg.learning.bias)}; "
             f"budget adaptation {_on(bud.adapt)}"]
    line = f"consolidation: {_on(con.enabled)}"
    if con.enabled:
        every = f"every {con.every} steps" if con.every else "not periodic"
        line += f" (kappa {con.kappa:g}, lam {con.lam:g}, {every}, on task switch {_on(con.on_task_switch)})"
    lines.append(line)
    line = f"replay: {_on(rep.enabled)}"
    if rep.enabled:
        line += (f" (capacity {rep.capacity}, filled {model.filled}, {rep.count} every {rep.every} "
                 f"samples, +{rep.conflict_count} in conflict)")
    lines.append(line)
    line = f"structural plasticity: {_on(st.enabled)}"
    if st.enabled:
        line += f" (every {st.every} steps, w_min {st.w_min:g}, g_min {st.g_min:g}, widen {st.widen:g})"
    lines.append(line)
    masks = f", masks {cfg.tasks.masks}" if cfg.tasks.masks else ""
    lines.append(f"tasks: {cfg.tasks.count}{masks}; current task {int(model.state['task'])}")
    return lines
