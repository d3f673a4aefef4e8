"""`lpn mpy ...`: put a generated MicroPython learner on a board.

`lpn mpy deploy --port PORT --dir DIR` copies what `lpn codegen MODEL --target
micropython --out DIR` wrote (the modules, their data module and the model's state)
to the board's filesystem with mpremote, in one `mpremote connect PORT fs cp ... :`.
With `--march`, the modules are first compiled to .mpy with mpy-cross, which saves
the board from compiling them (and the RAM that takes).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

MANIFEST = "manifest.json"
VARIANTS = ("portable", "viper", "both")


class DeployError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def mpremote_command() -> list[str]:
    """How to run mpremote: the installed module, else the command on PATH."""
    override = os.environ.get("LPN_MPREMOTE")
    if override:
        return shlex.split(override)
    if importlib.util.find_spec("mpremote") is not None:
        return [sys.executable, "-m", "mpremote"]
    found = shutil.which("mpremote")
    if found:
        return [found]
    raise DeployError("mpremote not found: pip install mpremote (or set LPN_MPREMOTE)")


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeployError(f"{path}: cannot read ({exc.strerror or exc}); is {directory} the output of "
                          "`lpn codegen MODEL --target micropython`?") from exc
    except json.JSONDecodeError as exc:
        raise DeployError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("target") != "micropython":
        raise DeployError(f"{path}: not a MicroPython learner (target {manifest.get('target')!r})")
    return manifest


def deploy_files(directory: Path, variant: str = "both") -> list[Path]:
    """The files a board needs, in copy order: data module, module(s), state."""
    manifest = read_manifest(directory)
    modules = manifest["modules"]
    wanted = list(modules) if variant == "both" else [variant]
    missing = [v for v in wanted if v not in modules]
    if missing:
        raise DeployError(f"{directory} holds no {', '.join(missing)} variant (it has: {', '.join(modules)})")
    names = [manifest["data_module"] + ".py"] + [modules[v] + ".py" for v in wanted] + [manifest["state_file"]]
    files = [directory / n for n in names]
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        raise DeployError(f"missing generated file(s): {', '.join(absent)}")
    return files


def deploy_command(port: str, files: list[Path], mpremote: list[str]) -> list[str]:
    """`mpremote connect PORT fs cp FILE... :` (copies into the board's current directory)."""
    if not port:
        raise DeployError("--port must name the board's serial port (e.g. /dev/ttyACM0 or COM3)")
    return [*mpremote, "connect", port, "fs", "cp", *[str(f) for f in files], ":"]


def compile_modules(files: list[Path], march: str, out_dir: Path, mpy_cross: str) -> list[Path]:
    """The .py files compiled to .mpy for `march`; other files unchanged."""
    out = []
    for f in files:
        if f.suffix != ".py":
            out.append(f)
            continue
        target = out_dir / (f.stem + ".mpy")
        proc = subprocess.run([mpy_cross, f"-march={march}", "-o", str(target), str(f)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise DeployError(f"mpy-cross failed on {f.name}: {proc.stderr.strip() or proc.stdout.strip()}")
        out.append(target)
    return out


@click.group()
def mpy() -> None:
    """MicroPython boards: deploy a generated learner."""


@mpy.command()
@click.option("--port", required=True, help="The board's serial port, as mpremote names it (e.g. /dev/ttyACM0).")
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output directory of `lpn codegen MODEL --target micropython`.")
@click.option("--variant", type=click.Choice(VARIANTS), default="both", show_default=True,
              help="Which learner module(s) to copy.")
@click.option("--march", type=click.Choice(["armv6m", "armv7m", "armv7emsp", "armv7emdp", "xtensa",
                                            "xtensawin", "rv32imc", "x64"]),
              help="Compile the modules to .mpy for this architecture with mpy-cross before copying.")
@click.option("--dry-run", is_flag=True, help="Print the mpremote command instead of running it.")
def deploy(port: str, directory: Path, variant: str, march: str | None, dry_run: bool) -> None:
    """Copy the learner and the model's state to a board with mpremote."""
    files = deploy_files(directory, variant)
    with tempfile.TemporaryDirectory(prefix="lpn-mpy-") as tmp:
        if march:
            from lpncodegen.micropython.toolchain import ToolMissing, mpy_cross
            try:
                cross = mpy_cross()
            except ToolMissing as exc:
                raise DeployError(str(exc)) from exc
            files = compile_modules(files, march, Path(tmp), cross)
        try:
            program = mpremote_command()
        except DeployError:
            if not dry_run:
                raise
            program = ["mpremote"]  # printing the command needs no mpremote
        cmd = deploy_command(port, files, program)
        if dry_run:
            click.echo(shlex.join(cmd))
            return
        proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise DeployError(f"mpremote exited with code {proc.returncode}: {shlex.join(cmd)}")
    click.echo(f"copied {len(files)} files to {port}: " + ", ".join(Path(f).name for f in files))

