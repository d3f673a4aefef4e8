"""`lpn codegen`: what it writes, what it refuses, and the generated C API used from plain C."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lpncodegen
from lpn import modelfile
from lpn.cli import main as lpn_main
from lpn.fixed import FixedLPN
from lpn.float_model import FloatLPN
from lpncodegen import CodegenError, generate, render
from lpncodegen.footprint import per_slot_bytes
from lpncodegen.generator import core_dir, core_sources
from lpncodegen.verify import op_stream
from test_codegen_cases import case_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "small.lpn"
    modelfile.save(case_model("small_all"), path)
    return path


def test_cli_writes_a_learner_that_says_what_it_is(model_file, tmp_path):
    out = tmp_path / "gen"
    result = CliRunner().invoke(lpn_main, ["codegen", str(model_file), "--out", str(out),
                                           "--prefix", "my_net"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["my_net.c", "my_net.h"]
    model = modelfile.load(model_file)
    digest = modelfile.model_hash(model)
    for name in ("my_net.c", "my_net.h"):
        text = (out / name).read_text(encoding="utf-8")
        assert "GENERATED FILE, DO NOT EDIT" in text
        assert digest in text and f"lpncodegen {lpncodegen.__version__}" in text
    header = (out / "my_net.h").read_text(encoding="utf-8")
    for fn in ("init", "predict", "predict_class", "learn", "contrast", "consolidate", "replay",
               "structural", "export_state", "import_state", "get_stats"):
        assert re.search(rf"\bint my_net_{fn}\(", header), fn
    assert f"#define MY_NET_STATE_BYTES {len(model.state_bytes())}UL" in header


def test_default_prefix_is_the_config_name(tmp_path):
    paths = generate(case_model("frozen3"), tmp_path)
    assert [p.name for p in paths] == ["frozen_deep.h", "frozen_deep.c"]  # the config's name


def test_same_model_same_code():
    assert render(case_model("wide")) == render(case_model("wide"))


@pytest.mark.parametrize("prefix", ["int", "9lives", "has space", "lpn_core", ""])
def test_bad_prefix_is_refused_and_nothing_written(prefix, tmp_path):
    with pytest.raises(CodegenError, match="prefix"):
        generate(case_model("frozen3"), tmp_path / "out", prefix)
    assert not (tmp_path / "out").exists()


def test_float_model_and_bad_files_are_refused(tmp_path):
    path = tmp_path / "float.lpn"
    modelfile.save(FloatLPN(case_model("frozen3").config), path)
    runner = CliRunner()
    for args in ([str(path)], [str(tmp_path / "missing.lpn")]):
        result = runner.invoke(lpn_main, ["codegen", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code != 0
        assert "fixed-point" in result.output or "cannot read" in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(CodegenError, match="fixed-point"):
        generate(FloatLPN(case_model("frozen3").config), tmp_path / "out")


def test_connectivity_is_const_unless_structural():
    fixed = render(case_model("digits"), "d")
    assert "static const uint8_t d_L1_src[2048] LPN_FLASH" in fixed["d.c"]
    assert re.search(r"\bL\d_src\[", fixed["d.h"]) is None  # not in the RAM struct
    plastic = render(case_model("small_all"), "s")
    assert re.search(r"uint8_t L1_src\[144\];", plastic["s.h"])


def test_every_mechanism_fits_eight_bytes_per_synapse():
    cfg = case_model("digits").config.replace(**{"structural.enabled": True})
    assert cfg.consolidation.enabled and cfg.replay.enabled
    # w (2) + s + g (1 + 1) + anchor a (2) + strength c (1) + source (1)
    assert per_slot_bytes(FixedLPN(cfg)) == 8


def test_lpn_core_is_a_platformio_library():
    manifest = json.loads((ROOT / "firmware/lib/lpn_core/library.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "lpn_core"
    assert (ROOT / "firmware/lib/lpn_core" / manifest["build"]["srcDir"] / "lpn_core.h").is_file()
    assert core_dir() == ROOT / "firmware/lib/lpn_core/src"


PLAIN_MAIN = r"""
#include <stdio.h>
#include "net.h"

/* Reads ops from stdin: 'L' task x[] t[] | 'C' | 'R' n | 'S' | 'K' x[]; writes the state after each. */
static net_model model;
static uint8_t state[NET_STATE_BYTES];

int main(void)
{
    int op;
    if (net_init(&model) != LPN_OK) {
        return 1;
    }
    while ((op = getchar()) != EOF) {
        int16_t x[NET_N_INPUTS], t[NET_N_OUTPUTS];
        uint8_t task = 0;
        uint32_t n = 0;
        int status = LPN_OK;
        if (op == 'L') {
            if (fread(&task, 1, 1, stdin) != 1 || fread(x, 2, NET_N_INPUTS, stdin) != NET_N_INPUTS
                || fread(t, 2, NET_N_OUTPUTS, stdin) != NET_N_OUTPUTS) {
                return 2;
            }
            status = net_learn(&model, x, NET_N_INPUTS, t, NET_N_OUTPUTS, task);
        } else if (op == 'K') {
            if (fread(x, 2, NET_N_INPUTS, stdin) != NET_N_INPUTS) {
                return 2;
            }
            status = net_contrast(&model, x, NET_N_INPUTS);
        } else if (op == 'C') {
            status = net_consolidate(&model);
        } else if (op == 'R') {
            if (fread(&n, 4, 1, stdin) != 1) {
                return 2;
            }
            status = net_replay(&model, n);
        } else if (op == 'S') {
            status = net_structural(&model);
        } else {
            return 3;
        }
        if (net_export_state(&model, state, sizeof state) != LPN_OK) {
            return 4;
        }
        putchar(status < 0 ? 'E' : 'K');
        fwrite(state, 1, sizeof state, stdout);
    }
    return 0;
}
"""


def test_generated_api_from_a_plain_c_program(tmp_path):
    """No cffi: a C program drives the learner through its header; its state follows Python's."""
    model = case_model("small_all")
    generate(model, tmp_path, "net")
    (tmp_path / "main.c").write_text(PLAIN_MAIN, encoding="utf-8")
    exe = tmp_path / "net"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
                    "-I", str(core_dir()), str(tmp_path / "main.c"), str(tmp_path / "net.c"),
                    *(str(p) for p in core_sources()), "-o", str(exe)], check=True)
    ops = op_stream(model, 300, seed=9)
    codes = {0: b"L", 1: b"K", 2: b"C", 3: b"R", 4: b"S"}
    feed = bytearray()
    for i in range(len(ops)):
        code = int(ops.op[i])
        feed += codes[code]
        if code == 0:
            feed += bytes([int(ops.task[i])])
            feed += ops.x[i].astype("<i2").tobytes() + ops.t[i].astype("<i2").tobytes()
        elif code == 1:
            feed += ops.x[i].astype("<i2").tobytes()
        elif code == 3:
            feed += int(ops.arg[i]).to_bytes(4, "little")
    out = subprocess.run([str(exe)], input=bytes(feed), capture_output=True, check=True).stdout
    size = len(model.state_bytes())
    assert len(out) == len(ops) * (size + 1)
    for i in range(len(ops)):
        refused = ops.apply(model, i) != 0
        record = out[i * (size + 1): (i + 1) * (size + 1)]
        assert record[:1] == (b"E" if refused else b"K"), i
        assert record[1:] == model.state_bytes(), f"state differs after op {i}"
    assert np.asarray(model.state["step"]) > 200


def test_cli_micropython_target_writes_the_module_and_refuses_a_float_model(model_file, tmp_path):
    out = tmp_path / "mpy"
    result = CliRunner().invoke(lpn_main, ["codegen", str(model_file), "--target", "micropython",
                                           "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert "lpn_mechanisms.py" in names and "lpn_mechanisms_viper.py" in names and "mechanisms.lpnstate" in names
    state = (out / "mechanisms.lpnstate").read_bytes()
    assert state == modelfile.load(model_file).state_bytes()
    floaty = tmp_path / "float.lpn"
    modelfile.save(FloatLPN(case_model("frozen3").config), floaty)
    bad = CliRunner().invoke(lpn_main, ["codegen", str(floaty), "--target", "micropython",
                                        "--out", str(tmp_path / "no")])
    assert bad.exit_code == 2 and "fixed model is needed" in bad.output
