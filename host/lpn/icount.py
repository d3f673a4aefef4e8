"""Exact executed-instruction counts of Cortex-M firmware in QEMU, between markers.

The project's TCG plugin (tools/qemu-icount, built on demand by `ensure_plugin`)
counts every guest instruction QEMU executes and records the count each time
execution reaches a marker address. Markers are named by symbol: the firmware
calls two empty, never-inlined functions around the measured code,

    lpn_mark_begin();  predict(...);  lpn_mark_end();

and `IcountRun.spans()` gives, for each such pair, the instructions executed
from lpn_mark_begin's first instruction to lpn_mark_end's first instruction.
That includes the markers' own call overhead (for an empty pair, `bx lr` of
lpn_mark_begin and the `bl` to lpn_mark_end: 2), which an empty pair in the same
firmware measures for subtraction. Counts are the same from run to run.

    run = run_icount(elf)                                  # runs to the semihosting exit
    run.spans()                                            # [2, 405, ...]

For a firmware driven over its UART, pass `icount_qemu_args(...)` to
`lpn.emulator.Emulator(extra_args=...)` and read the file with `read_counts`.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .avr import build_tool
from .emulator import DEFAULT_MACHINE, QEMU

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "tools" / "qemu-icount"
PLUGIN = PLUGIN_DIR / "build" / "libicount.so"
NM = "arm-none-eabi-nm"
DEFAULT_MARKS = ("lpn_mark_begin", "lpn_mark_end")


class IcountError(RuntimeError):
    """The plugin could not be built or run, or a marker symbol is missing."""


def ensure_plugin() -> Path:
    """The plugin's shared object, built if missing or out of date."""
    return build_tool(PLUGIN_DIR, PLUGIN, error=IcountError)


def symbol_addresses(elf: Path | str, names: Iterable[str]) -> dict[str, int]:
    """Addresses of the named symbols in `elf` (Thumb bit cleared: QEMU reports even addresses)."""
    wanted = list(names)
    try:
        done = subprocess.run([NM, "--defined-only", str(elf)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise IcountError(f"{NM} not found: run scripts/install-system-deps.sh") from exc
    if done.returncode != 0:
        raise IcountError(f"{NM} failed on {elf}:\n{done.stderr}")
    found: dict[str, int] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in wanted:
            found[parts[2]] = int(parts[0], 16) & ~1
    missing = [name for name in wanted if name not in found]
    if missing:
        raise IcountError(f"{elf} defines no symbol {', '.join(missing)}")
    return found


def icount_qemu_args(elf: Path | str, marks: Sequence[str], counts_file: Path | str) -> list[str]:
    """QEMU arguments that load the plugin with `marks` (symbol names) and write to `counts_file`."""
    if "," in str(counts_file):
        raise IcountError(f"QEMU cannot pass a path with a comma to a plugin: {counts_file}")
    addresses = symbol_addresses(elf, marks)
    options = [f"mark={addresses[name]:#x}" for name in marks] + [f"out={counts_file}"]
    return ["-plugin", ",".join([str(ensure_plugin()), *options])]


@dataclass
class IcountRun:
    hits: list[tuple[str, int]]    # (marker name, instructions executed before it), in order
    total: int | None              # instructions of the whole run; None if QEMU did not exit
    exit_code: int | None = None   # QEMU's: the firmware's semihosting exit code
    output: str = field(default="", repr=False)

    def counts(self, name: str) -> list[int]:
        return [count for hit, count in self.hits if hit == name]

    def spans(self, begin: str = DEFAULT_MARKS[0], end: str = DEFAULT_MARKS[1]) -> list[int]:
        """Instructions from each `begin` hit to the next `end` hit."""
        spans, start = [], None
        for name, count in self.hits:
            if name == begin:
                start = count
            elif name == end and start is not None:
                spans.append(count - start)
                start = None
        return spans


def read_counts(counts_file: Path | str, addresses: dict[str, int]) -> IcountRun:
    """Parse the plugin's output file; `addresses` maps marker names to their addresses."""
    by_address = {address: name for name, address in addresses.items()}
    hits: list[tuple[str, int]] = []
    total = None
    text = Path(counts_file).read_text() if Path(counts_file).is_file() else ""
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["icount", "mark"] and len(words) == 4:
            hits.append((by_address.get(int(words[2], 16), words[2]), int(words[3])))
        elif words[:2] == ["icount", "total"] and len(words) == 3:
            total = int(words[2])
    return IcountRun(hits, total)


def run_icount(
    elf: Path | str,
    marks: Sequence[str] = DEFAULT_MARKS,
    machine: str = DEFAULT_MACHINE,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
    qemu: str = QEMU,
) -> IcountRun:
    """Run a firmware that ends itself (semihosting exit) in QEMU under the plugin.

    The UART goes nowhere: this is for firmware that needs no input. Raises
    IcountError if QEMU is still running after `timeout` seconds (it is killed).
    """
    if shutil.which(qemu) is None:
        raise IcountError(f"{qemu} not found: run scripts/install-system-deps.sh")
    addresses = symbol_addresses(elf, marks)
    with tempfile.TemporaryDirectory(prefix="lpn-icount-") as tmp:
        counts_file = Path(tmp) / "counts.txt"
        command = [
            qemu, "-M", machine, "-nographic", "-monitor", "none", "-serial", "null",
            "-kernel", str(elf), "-semihosting-config", "enable=on,target=native",
            *icount_qemu_args(elf, marks, counts_file), *extra_args,
        ]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise IcountError(f"QEMU still running after {timeout} s: {' '.join(command)}") from exc
        run = read_counts(counts_file, addresses)
    run.exit_code = done.returncode
    run.output = done.stdout + done.stderr
    return run


__all__ = [
    "IcountError", "IcountRun", "ensure_plugin", "icount_qemu_args", "read_counts", "run_icount",
    "symbol_addresses",
]
