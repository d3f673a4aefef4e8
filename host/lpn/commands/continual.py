"""`lpn continual`: learn tasks one after another, against baselines on the same data.

The LPN backends (float, fixed, and any registered with
`lpn.continual.register_backend`, such as the C harness or a device) and the
scikit-learn baselines all run through the same protocol on the same stream; the
command prints each LPN's accuracy matrix and a summary of every method, and can
write everything as JSON.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import configs
from ..continual import SCENARIOS, BackendSpec, csv_stream, digits_stream, make_backend
from ..continual import baselines as bl
from ..continual.backends import backend_names, check_config_fits, lpn_replay_bytes, parse_backend
from ..continual.data import DEFAULT_TEST_FRACTION, Stream
from ..continual.protocol import MethodResult, run_joint, run_method, tested_samples
from ..continual.tables import matrix_table, pct, pts
from ..continual.targets import TargetCoding
from .errors import UserError as LPNError, user_errors

# The shipped config each scenario uses on digits when --config is not given.
DEFAULT_CONFIGS = {"task": "digits", "class": "digits_class_incremental",
                   "domain": "digits_domain_incremental"}
# How labels become targets (see lpn.continual.targets) and how many passes each
# task gets, per scenario, when not given. Without masks (class, domain) one-hot
# targets teach every other output 0 on every new sample, which erases what the
# old tasks left there; soft targets leave outputs that do not compete alone.
DEFAULT_TARGETS = {"task": "onehot", "class": "soft:0.5", "domain": "soft:0.5"}
DEFAULT_EPOCHS = {"task": 1, "class": 2, "domain": 2}
REPORT_VERSION = 1


def _file_path() -> click.Path:
    return click.Path(dir_okay=False, path_type=Path)


@click.command(help=f"""Learn a stream of tasks one after another and measure forgetting.

After each task every learner is tested on every task seen so far, which gives
the accuracy matrix R[i][j] (after task i, on task j). Average accuracy is the
mean of the last row; forgetting is the mean, over every task but the last, of
its best accuracy before the end minus its final accuracy.

Data: scikit-learn's digits (task and class scenarios: five tasks of two classes;
domain: the ten classes under a different pixel permutation per task), or one
CSV file per task (--task-file, repeated, in order, with --label).

Backends: {', '.join(backend_names())}; NAME:ARG passes ARG (e.g. a device URL)
to the backend. Repeat --backend to compare several on the same stream.""")
@click.option("--backend", "backends", multiple=True, default=("float", "fixed"), show_default=True,
              metavar="NAME[:ARG]", help="LPN backend(s) to run.")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="task", show_default=True,
              help="task: task id given at test; class: no task id, every output competes; "
                   "domain: same classes, a new input distribution per task.")
@click.option("--data", type=click.Choice(["digits", "csv"]), default=None,
              help="digits (default), or csv when --task-file is given.")
@click.option("--task-file", "task_files", multiple=True, type=_file_path(), metavar="FILE.csv",
              help="One CSV file per task, in order (repeat the option).")
@click.option("--label", default=None, metavar="COLUMN", help="Label column of the task files.")
@click.option("--config", "config_spec", default=None, metavar="CONFIG",
              help=f"Shipped config name ({', '.join(configs.names())}) or a .toml/.json file. "
                   f"Default for digits: {', '.join(f'{k}: {v}' for k, v in DEFAULT_CONFIGS.items())}.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Passes over each task's training samples, for every method. Default: "
                   + ", ".join(f"{k}: {v}" for k, v in DEFAULT_EPOCHS.items()) + ".")
@click.option("--targets", "targets_text", default=None, metavar="onehot|soft[:CAP]",
              help="How an LPN turns a label into target outputs: onehot, or soft (the label's "
                   "output 1, every other output its own value capped at CAP, 0.5 by default). "
                   "Default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_TARGETS.items()) + ".")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also run the scikit-learn baselines and joint training.")
@click.option("--ablations", is_flag=True,
              help="Also run the first LPN backend without consolidation and without replay.")
@click.option("--json", "json_path", type=_file_path(), default=None, metavar="PATH",
              help="Write the full report (matrices, metrics, settings) as JSON.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the train/test split, the permutations and the sample order.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=DEFAULT_TEST_FRACTION, show_default=True,
              help="Share of each class held out for testing.")
@click.option("--max-train", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use at most N training samples per task (quick runs).")
@click.option("--max-test", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use at most N test samples per task (quick runs).")
@user_errors
def continual(backends: tuple[str, ...], scenario: str, data: str | None, task_files: tuple[Path, ...],
              label: str | None, config_spec: str | None, epochs: int | None, targets_text: str | None,
              baselines: bool, ablations: bool,
              json_path: Path | None, seed: int, test_fraction: float, max_train: int | None,
              max_test: int | None) -> None:
    data = data or ("csv" if task_files else "digits")
    if data == "digits" and task_files:
        raise LPNError("--task-file gives CSV data; drop --data digits")
    if data == "csv":
        if not task_files:
            raise LPNError("--data csv needs --task-file (one per task)")
        if label is None:
            raise LPNError("--task-file needs --label, the name of the label column")
        if config_spec is None:
            raise LPNError("CSV data needs --config: a config whose input and outputs fit the files")
    elif label is not None:
        raise LPNError("--label applies to --task-file data only")
    for text in backends:
        parse_backend(text)  # an unknown name fails before any data is read
    targets = TargetCoding.parse(targets_text or DEFAULT_TARGETS[scenario])
    epochs = epochs or DEFAULT_EPOCHS[scenario]

    if data == "csv":
        stream = csv_stream(task_files, label, scenario, seed=seed, test_fraction=test_fraction,
                            max_train=max_train, max_test=max_test)
    else:
        stream = digits_stream(scenario, seed=seed, test_fraction=test_fraction,
                               max_train=max_train, max_test=max_test)
    config_spec = config_spec or DEFAULT_CONFIGS[scenario]
    cfg = configs.resolve(config_spec)
    check_config_fits(cfg, stream)

    console = Console(highlight=False, soft_wrap=True)
    _print_stream(console, stream, cfg.name, epochs, seed, targets)
    plan = _plan(stream, cfg, backends, baselines, ablations, seed, targets)
    total = epochs * sum(len(t.y_train) for t in stream.tasks) * len(plan)
    # Testing gets its own bar: over a device, predicting is a serial exchange per
    # sample and takes seconds, with the learning bar standing still meanwhile.
    total_test = sum(tested_samples(stream, sequential=role != "upper bound") for _, role, _ in plan)
    results: list[MethodResult] = []
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True)) as progress:
        bar = progress.add_task("learning", total=total)
        test_bar = progress.add_task("testing", total=total_test)
        for label_, role, make in plan:
            progress.update(bar, description=f"learning: {label_}")
            progress.update(test_bar, description=f"testing: {label_}")
            backend = make()
            backend.name = label_
            advance = lambda n: progress.advance(bar, n)  # noqa: E731
            advance_test = lambda n: progress.advance(test_bar, n)  # noqa: E731
            if role == "upper bound":
                result = run_joint(backend, stream, epochs, seed, progress=advance, test_progress=advance_test)
            else:
                result = run_method(backend, stream, epochs, seed, role=role, progress=advance,
                                    test_progress=advance_test)
            slots = _replay_slots(backend)
            if slots:
                result.details["replay_samples"] = slots
            results.append(result)

    for r in results:
        if r.role == "lpn":
            console.print(matrix_table(r))
    console.print(_summary_table(results))
    for line in _findings(results):
        console.print(line)
    if json_path is not None:
        report = _report(stream, cfg, config_spec, epochs, seed, targets, results)
        _write_json(json_path, report)
        console.print(f"wrote {json_path}")


# ---------------------------------------------------------------------------
def _plan(stream: Stream, cfg: Any, backends: tuple[str, ...], baselines: bool, ablations: bool,
          seed: int, targets: TargetCoding) -> list[tuple[str, str, Any]]:
    """(label, role, factory) of every method to run, in the order the summary shows them."""
    def spec(config: Any = cfg) -> BackendSpec:
        return BackendSpec(config, stream.classes, stream.task_classes, seed, targets=targets)

    plan: list[tuple[str, str, Any]] = []
    labels: dict[str, str] = {}
    for text in dict.fromkeys(backends):  # a repeated backend runs once
        name, arg = parse_backend(text)
        labels[text] = f"LPN {name}" + (f" ({arg})" if arg else "")
        plan.append((labels[text], "lpn", lambda text=text: make_backend(text, spec())))
    if ablations and backends:
        first = backends[0]
        variants = []
        if cfg.consolidation.enabled:
            variants.append(("w/o consolidation", {"consolidation.enabled": False}))
        if cfg.replay.enabled:
            variants.append(("w/o replay", {"replay.enabled": False}))
        for suffix, change in variants:
            plan.append((f"{labels[first]} {suffix}", "ablation",
                         lambda first=first, change=change: make_backend(first, spec(cfg.replace(**change)))))
    if baselines:
        classes, per_task = stream.classes, stream.task_classes
        plan.append(("MLP fine-tune", "baseline", lambda: bl.mlp(classes, per_task, seed)))
        plan.append(("SGD fine-tune", "baseline", lambda: bl.sgd(classes, per_task, seed)))
        budget = lpn_replay_bytes(cfg, _topology(cfg))
        if budget:
            max_abs = max(abs(v) for v in cfg.input.range)
            plan.append(("MLP + replay", "baseline",
                         lambda: bl.mlp_replay(classes, per_task, seed, budget, stream.n_features, max_abs)))
        plan.append(("MLP joint", "upper bound", lambda: bl.mlp_joint(classes, per_task, seed)))
        # The LPN trained on every task at once: what its architecture can reach.
        joint_cfg = cfg.replace(**{"consolidation.enabled": False, "replay.enabled": False})
        plan.append(("LPN float joint", "upper bound", lambda: make_backend("float", spec(joint_cfg))))
    return plan


def _replay_slots(backend: Any) -> int:
    """How many samples the learner's replay buffer holds (0 without one)."""
    buffer = getattr(backend, "replay", None)
    if buffer is not None:
        return int(buffer.capacity)
    model = getattr(backend, "model", None)
    replay = model.config.replay if model is not None else None
    return int(replay.capacity) if replay is not None and replay.enabled else 0


def _topology(cfg: Any) -> Any:
    from ..topology import build_topology
    return build_topology(cfg)


# ---------------------------------------------------------------------------
def _print_stream(console: Console, stream: Stream, config_name: str, epochs: int, seed: int,
                  targets: TargetCoding) -> None:
    at_test = "task id given at test" if stream.task_id_at_test else "no task id at test"
    console.print(f"{stream.scenario}-incremental on {stream.source}: {len(stream.tasks)} tasks, "
                  f"{at_test}; config {config_name!r}, {targets} targets, {epochs} epoch(s) per task, "
                  f"seed {seed}")
    for i, t in enumerate(stream.tasks):
        classes = ", ".join(map(str, t.classes))
        console.print(f"  task {i}: {t.name}: classes {classes}; {len(t.y_train)} train, {len(t.y_test)} test")


def _summary_table(results: list[MethodResult]) -> Table:
    table = Table(title="summary", title_justify="left")
    for name, justify in (("method", "left"), ("role", "left"), ("average acc. %", "right"),
                          ("forgetting pts", "right"), ("just-learnt acc. %", "right"),
                          ("replay bytes", "right"), ("seconds", "right")):
        table.add_column(name, justify=justify)
    for r in results:
        table.add_row(r.name, r.role, pct(r.average_accuracy), pts(r.forgetting), pct(r.just_learnt),
                      str(r.replay_bytes), f"{r.seconds:.1f}")
    return table


def _findings(results: list[MethodResult]) -> list[str]:
    """One-line comparisons a reader looks for: fixed vs float, LPN vs the replay MLP."""
    by_name = {r.name: r for r in results}
    lines = []
    if "LPN float" in by_name and "LPN fixed" in by_name:
        gap = by_name["LPN fixed"].average_accuracy - by_name["LPN float"].average_accuracy
        lines.append(f"fixed minus float, average accuracy: {100 * gap:+.1f} points")
    for r in results:
        n = r.details.get("replay_samples")
        if n:
            lines.append(f"replay buffer of {r.name}: {n} samples x {r.replay_bytes // n} bytes "
                         f"= {r.replay_bytes} bytes")
    replay = by_name.get("MLP + replay")
    if replay is not None:
        for r in results:
            if r.role == "lpn":
                lines.append(f"{r.name} ({r.replay_bytes} replay bytes) minus MLP + replay "
                             f"({replay.replay_bytes} bytes): {100 * (r.average_accuracy - replay.average_accuracy):+.1f} points")
    return lines


# ---------------------------------------------------------------------------
def _report(stream: Stream, cfg: Any, config_spec: str, epochs: int, seed: int, targets: TargetCoding,
            results: list[MethodResult]) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "scenario": stream.scenario,
        "task_id_at_test": stream.task_id_at_test,
        "data": {"source": stream.source, "tasks": stream.summary(),
                 **{k: v for k, v in stream.details.items() if k != "permutations"}},
        "config": {"spec": config_spec, "name": cfg.name, "values": _finite(cfg.to_dict())},
        "epochs": epochs, "seed": seed, "targets": str(targets),
        "methods": [r.to_dict() for r in results],
    }


def _finite(value: Any) -> Any:
    """Strict JSON has no infinity: an unlimited radius is written as the string "inf"."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _write_json(path: Path, report: dict[str, Any]) -> None:
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LPNError(f"{path}: cannot write ({exc.strerror or exc})") from exc
