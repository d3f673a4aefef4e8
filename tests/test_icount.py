"""The QEMU instruction-counting plugin: exact, repeatable counts between markers.

The firmware is firmware/tests_fw/m4_icount: assembly whose executed
instructions are known (an empty marker pair, loops of 200 and 17 iterations,
twice), then a compiled C function measured twice, then a semihosting exit.
"""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lpn.avr import build_tool
from lpn.emulator import Emulator
from lpn.icount import (
    DEFAULT_MARKS, IcountError, icount_qemu_args, read_counts, run_icount, symbol_addresses,
)
from lpn.pio import FIRMWARE_DIR

PROJECT = FIRMWARE_DIR / "tests_fw" / "m4_icount"
LOOP_A, LOOP_B = 200, 17  # the Makefile's LOOPS
# From marks.S: the empty pair costs its own `bx lr` and the `bl` to lpn_mark_end;
# a loop of n adds `movs`, `bl`, 2 per iteration and `bx lr`.
ROUND = [2, 2 * LOOP_A + 5, 2 * LOOP_A + 5, 2 * LOOP_B + 5]


@pytest.fixture(scope="module")
def elf() -> Path:
    return build_tool(PROJECT, PROJECT / "build" / "m4_icount.elf")


def test_counts_are_exact_and_identical_run_to_run(elf):
    first = run_icount(elf, timeout=30)
    assert first.exit_code == 0, first.output
    spans = first.spans()
    assert spans[:8] == ROUND * 2
    # The C function measured twice through one call site: the same count both times.
    assert len(spans) == 10 and spans[8] == spans[9]
    assert spans[8] > 6 * 50  # at least its 50 loop iterations' instructions
    assert first.total is not None and first.total > first.hits[-1][1]
    second = run_icount(elf, timeout=30)
    assert (second.hits, second.total) == (first.hits, first.total)
    print(f"icount: spans {spans}, total {first.total} instructions")


def test_same_counts_on_the_cortex_m3_machine(elf):
    # The firmware uses only instructions the M3 has too; QEMU mps2-an385 runs it.
    run = run_icount(elf, machine="mps2-an385", timeout=30)
    assert run.exit_code == 0, run.output
    assert run.spans()[:8] == ROUND * 2


def test_counts_through_the_uart_emulator(elf, tmp_path):
    """The path a firmware driven over its UART takes: lpn.emulator.Emulator plus the plugin."""
    counts_file = tmp_path / "counts.txt"
    with Emulator(elf, extra_args=icount_qemu_args(elf, DEFAULT_MARKS, counts_file), timeout=30) as emu:
        # QEMU holds the firmware until a client connects (wait=on).
        with socket.create_connection(("127.0.0.1", emu.port), timeout=10):
            assert emu.wait(20) == 0
    run = read_counts(counts_file, symbol_addresses(elf, DEFAULT_MARKS))
    assert run.spans()[:8] == ROUND * 2


def test_a_missing_marker_is_reported(elf):
    with pytest.raises(IcountError, match="no symbol lpn_mark_middle"):
        run_icount(elf, marks=("lpn_mark_begin", "lpn_mark_middle"))


def test_every_execution_of_a_marked_instruction_is_counted(elf):
    # busy_loop's first instruction is also its loop head: reached once per iteration.
    run = run_icount(elf, marks=("lpn_mark_begin", "busy_loop", "lpn_mark_end"), timeout=30)
    loop_counts = run.counts("busy_loop")
    assert len(loop_counts) == 2 * (2 * LOOP_A + LOOP_B)
    # Within one call the hits are 2 instructions apart (subs, bne).
    first_call = loop_counts[:LOOP_A]
    assert {b - a for a, b in zip(first_call, first_call[1:])} == {2}
    # From lpn_mark_begin to the loop's first iteration: bx lr, movs, bl.
    assert first_call[0] - run.counts("lpn_mark_begin")[1] == 3
