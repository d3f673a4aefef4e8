"""Flash and RAM of a generated learner on the microcontroller targets, from the binutils `size`.

The learner is measured alone: an ELF whose main() calls every public function
of the learner is linked with --gc-sections, and an ELF with an empty main()
built the same way is subtracted, so start-up code and the C library's
initialisation do not count, while the library helpers the learner pulls in
(memcpy, 64-bit arithmetic) do. The model struct's size is read from a symbol
of exactly that type rather than from a linked binary, so a model too large for
a target's RAM is still measured.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .generator import core_dir, core_sources, render
from .toolchains import STRICT_FLAGS, TARGETS, Target, require, run

SIZE_FLAGS = ("-Os", "-ffunction-sections", "-fdata-sections")
# --noinhibit-exec: a learner larger than the part's flash is still linked, and measured.
LINK_FLAGS = {"arm-none-eabi-gcc": ("--specs=nosys.specs", "-Wl,--gc-sections", "-Wl,--noinhibit-exec"),
              "avr-gcc": ("-Wl,--gc-sections", "-Wl,--noinhibit-exec")}
# Flash and RAM of the one fixed part among the targets (the Cortex-M parts vary by chip).
CAPACITY = {"atmega328p": (32 * 1024, 2 * 1024)}


@dataclass
class Footprint:
    target: str
    flash: int        # bytes of code and constant tables
    static_ram: int   # .data + .bss the code itself adds (the model struct not included)
    state_ram: int    # sizeof(<prefix>_state): the learnable state
    work_ram: int     # sizeof(<prefix>_work): scratch of one step
    synapses: int

    @property
    def ram(self) -> int:
        return self.static_ram + self.state_ram + self.work_ram

    @property
    def fits(self) -> bool | None:
        """Whether the learner fits the target part (None when the target is a family)."""
        if self.target not in CAPACITY:
            return None
        flash, ram = CAPACITY[self.target]
        return self.flash <= flash and self.ram <= ram

    @property
    def state_per_synapse(self) -> float:
        return self.state_ram / self.synapses


def _calls(prefix: str) -> str:
    p = prefix
    return f"""#include "{p}.h"
/* Calls every public function, so --gc-sections keeps the whole learner. */
{p}_model *volatile bench_model;
const int16_t *volatile bench_x;
int16_t *volatile bench_y;
uint8_t *volatile bench_buf;
{p}_stats bench_stats;
volatile int bench_sink;
int main(void)
{{
    {p}_model *m = bench_model;
    int r = {p}_init(m);
    r += {p}_predict(m, bench_x, {p.upper()}_N_INPUTS, bench_y, {p.upper()}_N_OUTPUTS);
    r += {p}_predict_class(m, bench_x, {p.upper()}_N_INPUTS, 0);
    r += {p}_learn(m, bench_x, {p.upper()}_N_INPUTS, bench_x, {p.upper()}_N_OUTPUTS, 0);
    r += {p}_contrast(m, bench_x, {p.upper()}_N_INPUTS);
    r += {p}_consolidate(m);
    r += {p}_replay(m, 1);
    r += {p}_structural(m);
    r += {p}_export_state(m, bench_buf, {p.upper()}_STATE_BYTES);
    r += {p}_import_state(m, bench_buf, {p.upper()}_STATE_BYTES);
    r += {p}_get_stats(m, &bench_stats);
    bench_sink = r;
    return 0;
}}
"""


def _probe(prefix: str) -> str:
    return (f'#include "{prefix}.h"\n{prefix}_state probe_state;\n{prefix}_work probe_work;\n')


def _sizes(target: Target, elf: Path) -> tuple[int, int, int]:
    out = run([target.size_tool, str(elf)]).stdout.splitlines()[1].split()
    return int(out[0]), int(out[1]), int(out[2])  # text, data, bss


def _symbol_sizes(target: Target, obj: Path) -> dict[str, int]:
    nm = target.size_tool.replace("size", "nm")
    out = run([nm, "-S", str(obj)]).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def measure(model: Any, target_name: str, prefix: str = "lpnfoot") -> Footprint:
    """Flash and RAM of `model`'s learner on one target (see the module docstring)."""
    target = TARGETS[target_name]
    require(target)
    sources = render(model, prefix)
    with tempfile.TemporaryDirectory(prefix="lpn-footprint-") as tmp:
        d = Path(tmp)
        for name, text in sources.items():
            (d / name).write_text(text, encoding="utf-8")
        (d / "calls.c").write_text(_calls(prefix), encoding="utf-8")
        (d / "empty.c").write_text("int main(void)\n{\n    return 0;\n}\n", encoding="utf-8")
        (d / "probe.c").write_text(_probe(prefix), encoding="utf-8")
        common = [*STRICT_FLAGS, *SIZE_FLAGS, "-I", str(d), "-I", str(core_dir())]
        link = LINK_FLAGS.get(target.compiler, ())
        learner_c = [str(d / f"{prefix}.c"), *(str(p) for p in core_sources())]
        run(target.command(*common, str(d / "calls.c"), *learner_c, *link, "-o", str(d / "learner.elf")))
        run(target.command(*common, str(d / "empty.c"), *link, "-o", str(d / "empty.elf")))
        run(target.command(*common, "-fno-common", "-c", str(d / "probe.c"), "-o", str(d / "probe.o")))
        static_ram = 0
        for i, src in enumerate(learner_c):
            obj = d / f"part{i}.o"
            run(target.command(*common, "-c", src, "-o", str(obj)))
            _, data, bss = _sizes(target, obj)
            static_ram += data + bss
        lt, ld, _ = _sizes(target, d / "learner.elf")
        et, ed, _ = _sizes(target, d / "empty.elf")
        symbols = _symbol_sizes(target, d / "probe.o")
    return Footprint(target=target_name, flash=(lt + ld) - (et + ed), static_ram=static_ram,
                     state_ram=symbols["probe_state"], work_ram=symbols["probe_work"],
                     synapses=model.topology.synapses)


SLOT_FIELDS = ("w", "s", "g", "a", "c", "src")


def per_slot_bytes(model: Any) -> int:
    """RAM bytes one synapse slot takes in the state struct (w, s, g; a, c; src if it can change)."""
    from .model_view import build_view
    view = build_view(model, "lpnfoot")
    return sum(f.size for f in view.struct_fields() if f.layer == 1 and f.short in SLOT_FIELDS)
