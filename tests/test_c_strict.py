"""The generated learner and lpn_core compile without a single warning on every target, and
cppcheck finds nothing in them.

The compilers are Debian packages that scripts/install-system-deps.sh installs;
if one is missing the suite runs that script, and fails (never skips) if the
compiler is still missing afterwards.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lpncodegen import generate, render
from lpncodegen.generator import core_dir, core_sources
from lpncodegen.toolchains import STRICT_FLAGS, TARGETS, run
from conftest import small_config
from lpn.fixed import FixedLPN
from test_codegen_cases import CASES, case_model

# Variants that only need to compile cleanly (their arithmetic is covered by the bit-exact tests).
COMPILE_ONLY = {
    "contrast_no_replay": lambda: FixedLPN(small_config(hidden_error="contrastive", replay__enabled=False,
                                                        contrastive__noise=0.0)),
    "one_layer": lambda: FixedLPN(small_config(
        layers=[dict(shape=[4], position="center", fan_in=36, activation="relu")], tasks__masks=[],
        hidden_error="contrastive", budget__boost_units=0)),
}

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install-system-deps.sh"
OPT_LEVELS = {"gcc": ("-O0", "-O2"), "clang": ("-O2",),
              "cortex-m0plus": ("-Os",), "cortex-m3": ("-Os",), "cortex-m4": ("-Os",), "atmega328p": ("-Os",)}
CPPCHECK = ["cppcheck", "--std=c99", "--enable=warning,style,performance,portability",
            "--inline-suppr", "--error-exitcode=1", "--quiet", "--suppress=missingIncludeSystem"]


@pytest.fixture(scope="session")
def toolchains():
    tools = {t.compiler for t in TARGETS.values()} | {"cppcheck", "arm-none-eabi-size", "avr-size"}
    if any(shutil.which(tool) is None for tool in tools):
        subprocess.run(["bash", str(INSTALL)], check=False)
    missing = sorted(tool for tool in tools if shutil.which(tool) is None)
    if missing:
        pytest.fail(f"missing after {INSTALL.name}: {', '.join(missing)}")
    return TARGETS


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Each case's learner (and the harness file) in its own folder."""
    out = {}
    makers = {**{name: (lambda n=name: case_model(n)) for name in CASES}, **COMPILE_ONLY}
    for name, make in makers.items():
        folder = tmp_path_factory.mktemp(f"strict-{name}")
        generate(make(), folder, name)
        for file, text in render(make(), name, harness=True).items():
            if file.endswith("_harness.c"):
                (folder / file).write_text(text, encoding="utf-8")
        out[name] = folder
    return out


@pytest.mark.parametrize("target", sorted(OPT_LEVELS))
def test_compiles_warning_free(toolchains, generated, target, tmp_path):
    tc = toolchains[target]
    for name, folder in generated.items():
        sources = [str(folder / f"{name}.c"), *(str(p) for p in core_sources())]
        if target in ("gcc", "clang"):
            sources.append(str(folder / f"{name}_harness.c"))
        for opt in OPT_LEVELS[target]:
            run(tc.command(*STRICT_FLAGS, opt, "-c", "-I", str(folder), "-I", str(core_dir()), *sources),
                cwd=tmp_path)
    assert list(tmp_path.glob("*.o")), "the compiler wrote no object file"


def test_a_warning_does_fail_the_strict_build(toolchains, tmp_path):
    """The flags really are strict: C that is fine except for a pedantic warning is refused."""
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { int a[0]; return sizeof a; }\n", encoding="utf-8")
    proc = subprocess.run(TARGETS["gcc"].command(*STRICT_FLAGS, "-c", str(bad)), cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "error" in proc.stderr


@pytest.mark.parametrize("name", sorted(CASES) + sorted(COMPILE_ONLY))
def test_cppcheck_reports_nothing(toolchains, generated, name):
    folder = generated[name]
    proc = subprocess.run([*CPPCHECK, "-I", str(folder), "-I", str(core_dir()), str(folder / f"{name}.c"),
                           str(folder / f"{name}_harness.c"), *(str(p) for p in core_sources())],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), \
        proc.stdout + proc.stderr


def test_cppcheck_does_find_a_planted_bug(toolchains, tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { int a[4]; a[4] = 1; return a[0]; }\n", encoding="utf-8")
    proc = subprocess.run([*CPPCHECK, str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "arrayIndexOutOfBounds" in proc.stdout + proc.stderr


def test_no_float_no_malloc_in_generated_or_core(generated):
    texts = [p.read_text(encoding="utf-8") for p in core_dir().glob("*.[ch]")]
    for name, folder in generated.items():
        texts += [(folder / f"{name}{ext}").read_text(encoding="utf-8") for ext in (".c", ".h")]
    code = [re.sub(r"/\*.*?\*/", "", t, flags=re.S) for t in texts]  # comments may say "float"
    for text in code:
        for word in ("float", "double", "malloc", "calloc", "realloc", "free("):
            assert word not in text, word
