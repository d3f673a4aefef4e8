"""`lpn demo`: the project in one command (see lpn.demo and docs/demo.md)."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .. import configs
from .device import device_errors
from .errors import UserError

QUICK_TRAIN, QUICK_TEST = 40, 20  # samples per task of --quick


class DemoFailed(click.ClickException):
    """The demo ran but what it checks did not hold (e.g. the device and the reference disagree)."""
    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


@click.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("lpn-demo"),
              show_default=True, help="Folder for the report, the figure, the models and the firmware build.")
@click.option("--quick", is_flag=True,
              help=f"Reduced size: {QUICK_TRAIN} training and {QUICK_TEST} test samples per task.")
@click.option("--max-train", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use at most N training samples per task.")
@click.option("--max-test", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use at most N test samples per task.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the train/test split and of the sample order.")
@click.option("--env", "env", default="qemu_m4", show_default=True,
              help="PlatformIO environment of an emulated board (firmware/platformio.ini).")
@click.option("--config", "config_spec", default="digits", show_default=True, metavar="CONFIG",
              help=f"Shipped config ({', '.join(configs.names())}) or a .toml/.json file; it must fit "
                   "five two-class digit tasks.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also run scikit-learn's MLP (backprop) on the same stream.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds to wait for each reply of the device.")
@device_errors
def demo(out: Path, quick: bool, max_train: int | None, max_test: int | None, seed: int, env: str,
         config_spec: str, baselines: bool, timeout: float) -> None:
    """A device learns split digits one task after another, next to backprop.

    Splits scikit-learn's digits into five tasks of two classes; builds the
    firmware of the config's fixed-point model with PlatformIO; boots it in QEMU;
    streams the tasks over the serial line (consolidation at each task switch,
    replay on); after each task tests the device on every task seen so far and
    checks that its whole state is bit-identical to the Python fixed-point model's.
    Prints the accuracy matrix, average accuracy, forgetting, flash and RAM, and
    writes OUT/report.json and OUT/demo.png.
    """
    from ..demo import DemoError, DemoSettings, run_demo
    from ..demo.figure import write_figure
    from ..continual.tables import matrix_table
    from ..demo.report import FIGURE_FILE, REPORT_FILE, build_report, device_table, findings
    from ..demo.report import summary_table, write_json

    if quick:
        max_train = max_train or QUICK_TRAIN
        max_test = max_test or QUICK_TEST
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    settings = DemoSettings(out=out, config=config_spec, env=env, seed=seed, max_train=max_train,
                            max_test=max_test, baselines=baselines, device_timeout=timeout)
    console = Console(highlight=False, soft_wrap=True)
    columns = (SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=Console(stderr=True)) as progress:
            run = run_demo(settings, progress=progress, say=progress.console.print)
    except DemoError as exc:
        raise DemoFailed(str(exc)) from exc

    report = build_report(run)
    write_json(out / REPORT_FILE, report)
    with Console(stderr=True).status("drawing the figure"):
        write_figure(out / FIGURE_FILE, report)

    stream = run["stream"]
    console.print(f"split digits, task-incremental: {len(stream.tasks)} tasks of two classes, "
                  f"{sum(len(t.y_train) for t in stream.tasks)} training and "
                  f"{sum(len(t.y_test) for t in stream.tasks)} test samples; config {run['config'].name!r}, "
                  f"seed {seed}")
    console.print(matrix_table(run["device"]))
    for b in run["baselines"]:
        if b.name == "MLP fine-tune":
            console.print(matrix_table(b))
    console.print(summary_table(report))
    console.print(device_table(report))
    for line in findings(report):
        console.print(line)
    seconds = report["seconds"]
    console.print(f"took {seconds['total']:.1f} s (firmware build {seconds['build']:.1f} s, "
                  f"on the device {seconds['device']:.1f} s); wrote {out / REPORT_FILE} and {out / FIGURE_FILE}")
