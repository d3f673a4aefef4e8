"""`lpn bench codegen`: it runs end to end and prints its figures; footprints are real sizes."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from lpn import modelfile
from lpn.cli import main as lpn_main
from lpn.configs import named
from lpn.fixed import FixedLPN
from lpncodegen.footprint import measure
from lpncodegen.harness import CompiledLearner


@pytest.fixture(autouse=True)
def _harness_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LPN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lpn-cache"))


def test_bench_codegen_prints_footprints_and_speed(tmp_path):
    path = tmp_path / "tiny.lpn"
    modelfile.save(FixedLPN(named("tiny")), path)
    result = CliRunner().invoke(lpn_main, ["bench", "codegen", str(path),
                                           "--rounds", "2", "--per-round", "15"])
    assert result.exit_code == 0, result.output
    out = result.output
    print(out)  # the figures, for the log
    for target in ("cortex-m0plus", "cortex-m4", "atmega328p"):
        row = re.search(rf"^{target}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)", out, re.M)
        assert row, target
        assert int(row.group(1)) > 500  # flash: a learner is more than a stub
    assert re.search(r"C learning step\s*:\s*[\d.]+ samples/s\s+\([\d.]+x numpy\)", out)
    assert "bit-identical after the run: yes" in out


def test_bench_refuses_a_float_model(tmp_path):
    from lpn.float_model import FloatLPN
    path = tmp_path / "f.lpn"
    modelfile.save(FloatLPN(named("tiny")), path)
    result = CliRunner().invoke(lpn_main, ["bench", "codegen", str(path)])
    assert result.exit_code != 0 and "fixed-point" in result.output


@pytest.mark.parametrize("structural", [False, True], ids=["shipped", "every-mechanism"])
def test_digits_learner_fits_16_kb_of_cortex_m4_flash(structural):
    model = FixedLPN(named("digits").replace(**{"structural.enabled": structural}))
    fp = measure(model, "cortex-m4")
    print(f"digits on cortex-m4 at -Os: flash {fp.flash} B, state {fp.state_ram} B, work {fp.work_ram} B")
    assert 4000 < fp.flash <= 16 * 1024
    assert fp.static_ram == 0  # every byte of RAM is in the model struct the user owns
    assert fp.state_ram == CompiledLearner(model).ram_bytes["state"]
