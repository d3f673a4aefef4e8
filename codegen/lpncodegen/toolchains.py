"""The C compilers the generated learner is built with, and how to call them.

One table, used by the desktop harness, the strictness tests and the footprint
benchmark, so each target is compiled the same way everywhere.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror")


@dataclass(frozen=True)
class Target:
    name: str
    compiler: str
    flags: tuple[str, ...]        # CPU selection
    size_tool: str | None = None  # binutils `size` for footprints
    debian_package: str = ""

    def available(self) -> bool:
        return shutil.which(self.compiler) is not None

    def command(self, *extra: str) -> list[str]:
        return [self.compiler, *self.flags, *extra]


TARGETS = {
    "gcc": Target("gcc", "gcc", (), "size", "gcc"),
    "clang": Target("clang", "clang", (), "size", "clang"),
    "cortex-m0plus": Target("cortex-m0plus", "arm-none-eabi-gcc", ("-mcpu=cortex-m0plus", "-mthumb"),
                            "arm-none-eabi-size", "gcc-arm-none-eabi"),
    "cortex-m3": Target("cortex-m3", "arm-none-eabi-gcc", ("-mcpu=cortex-m3", "-mthumb"),
                        "arm-none-eabi-size", "gcc-arm-none-eabi"),
    "cortex-m4": Target("cortex-m4", "arm-none-eabi-gcc", ("-mcpu=cortex-m4", "-mthumb"),
                        "arm-none-eabi-size", "gcc-arm-none-eabi"),
    "atmega328p": Target("atmega328p", "avr-gcc", ("-mmcu=atmega328p",), "avr-size", "gcc-avr"),
}


class ToolchainError(RuntimeError):
    """A compiler is missing or a compilation failed."""


def require(target: Target) -> None:
    if not target.available():
        raise ToolchainError(f"{target.compiler} not found: install the Debian package "
                             f"{target.debian_package} (scripts/install-system-deps.sh does)")


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a compiler or binutils command; a failure raises with its full output."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"{' '.join(cmd)}\nexit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def version(compiler: str) -> str:
    """The compiler's `--version` first line (part of build cache keys)."""
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ToolchainError(f"cannot run {compiler}: {exc}") from exc
    return out.splitlines()[0] if out else compiler
