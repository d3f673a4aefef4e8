"""`lpn experiment`: run the paper's experiments and check their claims.

Each experiment is run on the float model, the fixed-point model or both, and
printed as one table (a row per measured number, a column per model) followed by
a summary of every claim. The exit code is 0 when every claim holds and 1 when
any does not, so a script can tell; a user's mistake (an unwritable --json path)
exits with 2.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .errors import UserError
from ..experiments import EXPERIMENTS, KINDS, ExperimentResult, run

JSON_VERSION = 1


def _verdict(passed: bool) -> str:
    return "[green]met[/green]" if passed else "[bold red]NOT met[/bold red]"


def experiment_table(name: str, results: dict[str, ExperimentResult]) -> Table:
    exp = EXPERIMENTS[name]
    first = next(iter(results.values()))
    table = Table(title=f"{exp.number}. {exp.title}{'  (quick)' if first.quick else ''}",
                  caption=f"claim: {exp.claim}", title_justify="left", caption_justify="left")
    table.add_column("measured")
    for kind in results:
        table.add_column(kind, justify="right")
    for i, metric in enumerate(first.metrics):
        table.add_row(metric.label, *(r.metrics[i].text() for r in results.values()))
    table.add_section()
    table.add_row("claim", *(_verdict(r.passed) for r in results.values()))
    table.add_row("seconds", *(f"{r.seconds:.1f}" for r in results.values()))
    return table


def summary_table(all_results: dict[str, dict[str, ExperimentResult]]) -> Table:
    table = Table(title="Summary", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("experiment")
    table.add_column("claim")
    kinds = list(next(iter(all_results.values())))
    for kind in kinds:
        table.add_column(kind)
    for name, results in all_results.items():
        exp = EXPERIMENTS[name]
        table.add_row(str(exp.number), exp.title, exp.claim, *(_verdict(results[k].passed) for k in kinds))
    return table


def report(all_results: dict[str, dict[str, ExperimentResult]], quick: bool) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "quick": quick,
        "all_claims_met": all(r.passed for rs in all_results.values() for r in rs.values()),
        "experiments": [
            {"number": EXPERIMENTS[name].number, "name": name, "title": EXPERIMENTS[name].title,
             "claim": EXPERIMENTS[name].claim,
             "results": {kind: r.to_dict() for kind, r in results.items()}}
            for name, results in all_results.items()],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: an error leaves any earlier file at `path` as it was."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc


@click.command(help=f"""Run one of the paper's experiments, or all of them, and check its claim.

NAME is one of: {', '.join(EXPERIMENTS)}, or 'all'. Exit code 0 when every claim
holds, 1 when one does not.""")
@click.argument("name", metavar="NAME|all", type=click.Choice([*EXPERIMENTS, "all"]))
@click.option("--kind", type=click.Choice([*KINDS, "both"]), default="both", show_default=True,
              help="Run on the float model, the fixed-point model, or both.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PATH", help="Also write every measured number to this JSON file.")
@click.option("--quick", is_flag=True, help="Reduced sizes, as in the test suite.")
def experiment(name: str, kind: str, json_path: Path | None, quick: bool) -> None:
    console = Console(highlight=False, soft_wrap=False)
    names = list(EXPERIMENTS) if name == "all" else [name]
    kinds = list(KINDS) if kind == "both" else [kind]
    if json_path is not None and not json_path.parent.is_dir():
        raise UserError(f"{json_path}: directory {json_path.parent} does not exist")
    all_results: dict[str, dict[str, ExperimentResult]] = {}
    for exp_name in names:
        with console.status(f"running {exp_name} ..."):
            all_results[exp_name] = {k: run(exp_name, k, quick=quick) for k in kinds}
        console.print(experiment_table(exp_name, all_results[exp_name]))
        console.print()
    console.print(summary_table(all_results))
    data = report(all_results, quick)
    if json_path is not None:
        write_json(json_path, data)
        console.print(f"wrote {json_path}")
    if not data["all_claims_met"]:
        raise SystemExit(1)
