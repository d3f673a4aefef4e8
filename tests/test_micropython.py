"""The MicroPython target: generated, type-checked, cross-compiled, and run by real MicroPython.

The learner runs under the MicroPython unix port (installed by
scripts/setup-micropython.sh into .venv-mpy/) on the same operation stream as the
host's FixedLPN; the state must agree after every operation. The unix port is
64-bit, so the viper kernels are also run through `viper32`, which models a 32-bit
and a 64-bit port side by side and fails on any value they would see differently.
No board is attached to this machine: `lpn mpy deploy` is tested up to the mpremote
command it composes and runs (a stand-in mpremote records it).
"""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import small_config
from golden_cases import CASES
from lpn import modelfile
from lpn.fixed import FixedLPN, Formats
from lpncodegen.micropython import (MANIFEST, MicroPythonCodegenError, generate, generate_from_file,
                                    harness, render, toolchain, viper32)

MPY_STEPS = 2000  # learning steps per bit-exactness run under MicroPython
GOLDEN_CASES = ("feedback_all", "contrastive", "frozen_hardtanh")  # 2,000 steps each
OTHER_CASES = ("wide_shifts", "narrow_shifts", "wide_input", "single_layer")  # shorter runs
RUN_CASES = GOLDEN_CASES + OTHER_CASES  # every model run by MicroPython, statically checked too


def _tool(fn):
    try:
        return fn()
    except toolchain.ToolMissing as exc:
        pytest.fail(f"{exc}: the MicroPython tests need the toolchain", pytrace=False)


def _wide_config():
    # Hyper-parameters at the top of their ranges and trails without fraction bits, so
    # the trail tables saturate at 2^32 - 1, learning rates and deposits hit their caps,
    # and scores fill all 63 bits: every wide path of the viper kernels runs.
    # Initial weights of +-1 keep some weights nonzero when they have no fraction bits.
    layers = [dict(l, init=1.0) for l in small_config().to_dict()["layers"]]
    return small_config(
        name="wide", layers=layers,
        learning=dict(eta=1000.0, alpha_s=1000.0, alpha_g=1000.0, gamma_s=1000.0, gamma_g=1000.0,
                      deposit_s=1000.0, deposit_g=1000.0, evap_g_period=4),
        consolidation=dict(enabled=True, every=37, lam=1.0, kappa=1000.0),
        fixed=dict(trail_s_frac=0, trail_g_frac=0, consolidation_frac=0))


def make_model(case: str, pretrain: int = 0) -> FixedLPN:
    """A model of one test case, renamed after it, optionally learnt for a few steps on the host."""
    if case == "wide_shifts":  # rounded shifts of 30-46 bits (forward 0, hebbian 46)
        cfg = _wide_config().replace(name="wide_shifts")
        model = FixedLPN(cfg, Formats.build(cfg, fa=[15, 15, 15], fw=[0, 0]))
    elif case == "narrow_shifts":  # forward and feedback shifts of 15, hebbian shift of 1
        cfg = _wide_config().replace(name="narrow_shifts")
        model = FixedLPN(cfg, Formats.build(cfg, fa=[0, 0, 0], fw=[15, 15]))
    elif case == "wide_input":  # 289 inputs: source indices are u16 (ptr16 in the kernels)
        model = FixedLPN(small_config(
            name=case, input=dict(shape=[17, 17], tags=[0xFFFF]),
            layers=[dict(shape=[2, 2], radius=5.0, fan_in=8, activation="relu", init=0.3),
                    dict(shape=[4], position="center", fan_in=4, init=0.05)]))
    elif case == "single_layer":  # no hidden layer: no feedback, no contrastive pass
        model = FixedLPN(small_config(name=case, layers=[dict(shape=[4], position="center", fan_in=10)]))
    else:
        cfg = CASES[case]().replace(name=case)
        model = FixedLPN(cfg)
    for op in harness.random_ops(model, pretrain, seed=11, saturate_every=5):
        harness.apply(model, op, host=True)
    return model


def case_ops(model: FixedLPN, n: int, seed: int) -> list[harness.Op]:
    cfg = model.config
    return harness.random_ops(
        model, n, seed=seed, saturate_every=7, predict_every=10,
        contrast_every=5 if cfg.hidden_error == "contrastive" else 0,
        consolidate_every=97 if cfg.consolidation.enabled else 0,
        replay_every=31 if cfg.replay.enabled else 0,
        structural_every=53 if cfg.structural.enabled else 0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """case -> (model, output directory), generated once per test module."""
    cache: dict[str, tuple[FixedLPN, Path]] = {}

    def get(case: str) -> tuple[FixedLPN, Path]:
        if case not in cache:
            model = make_model(case, pretrain=30)
            out = tmp_path_factory.mktemp(case)
            generate(model, out)
            cache[case] = (model, out)
        return cache[case]
    return get


# ---------------------------------------------------------------------------- generation
def test_generated_files_say_what_made_them(tmp_path):
    from lpn.modelfile import model_hash
    model = make_model("feedback_all")
    written = generate(model, tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(["lpn_feedback_all.py", "lpn_feedback_all_viper.py", "lpn_feedback_all_data.py",
                            "feedback_all.lpnstate", MANIFEST])
    digest = model_hash(model)
    for name in ("lpn_feedback_all.py", "lpn_feedback_all_viper.py", "lpn_feedback_all_data.py"):
        head = (tmp_path / name).read_text().splitlines()[:3]
        assert head[0].startswith("# Generated by lpncodegen ")
        assert digest in " ".join(head) and "Do not edit" in " ".join(head)
    assert (tmp_path / "feedback_all.lpnstate").read_bytes() == model.state_bytes()
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["model_hash"] == digest and manifest["target"] == "micropython"
    assert manifest["modules"] == {"portable": "lpn_feedback_all", "viper": "lpn_feedback_all_viper"}


def test_generate_from_file_matches_generate(tmp_path):
    model = make_model("contrastive", pretrain=5)
    modelfile.save(model, tmp_path / "m.lpn")
    generate_from_file(tmp_path / "m.lpn", tmp_path / "a")
    generate(model, tmp_path / "b", variant="both")
    for f in (tmp_path / "b").iterdir():
        assert (tmp_path / "a" / f.name).read_bytes() == f.read_bytes(), f.name
    only = generate(model, tmp_path / "c", variant="portable")
    assert "lpn_contrastive_viper.py" not in [p.name for p in only]


def test_rejects_float_models_and_unknown_variants():
    from lpn.float_model import FloatLPN
    with pytest.raises(MicroPythonCodegenError, match="fixed-point model"):
        render(FloatLPN(small_config()))
    with pytest.raises(MicroPythonCodegenError, match="variant"):
        render(make_model("frozen_hardtanh"), variant="fast")


def test_viper_refuses_a_model_it_cannot_hold_in_32_bits():
    model = make_model("feedback_all")
    model.formats.consts["LAM"] = 2**31 - 1  # valid for the format, far outside what a config gives
    with pytest.raises(MicroPythonCodegenError, match="pull factor"):
        render(model, variant="viper")
    assert "lpn_feedback_all.py" in render(model, variant="portable")


# ---------------------------------------------------------------------------- static checks
def test_mypy_against_micropython_stubs(generated, tmp_path):
    mypy, typings = _tool(toolchain.mypy), _tool(toolchain.typings)
    config = tmp_path / "mypy.ini"
    config.write_text(toolchain.mypy_config(typings))
    files = []
    for case in RUN_CASES:
        out = generated(case)[1]
        files += sorted(str(p) for p in out.glob("*.py"))
    driver = tmp_path / "driver.py"  # the test driver runs under MicroPython too (a copy: outside its package)
    driver.write_bytes(harness.DRIVER.read_bytes())
    files.append(str(driver))
    # A module using what MicroPython lacks must fail, or the check proves nothing.
    bad = tmp_path / "uses_cpython.py"
    bad.write_text("import threading\nimport time\ntime.perf_counter()\n")
    cmd = [mypy, "--config-file", str(config), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd + files, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(cmd + [str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "threading" in proc.stdout and "perf_counter" in proc.stdout


@pytest.mark.parametrize("arch", toolchain.ARCHES)
def test_mpy_cross_compiles_for_boards(generated, tmp_path, arch):
    cross = _tool(toolchain.mpy_cross)
    # wide_input's source indices are u16: its viper kernels load them through ptr16.
    assert "S = ptr16(src)" in (generated("wide_input")[1] / "lpn_wide_input_viper.py").read_text()
    for case in RUN_CASES:
        out = generated(case)[1]
        for src in sorted(out.glob("*.py")):
            target = tmp_path / f"{src.stem}.mpy"
            proc = subprocess.run([cross, f"-march={arch}", "-o", str(target), str(src)],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, f"{src.name} for {arch}: {proc.stdout}{proc.stderr}"
            assert target.read_bytes()[:1] == b"M"  # the .mpy header


# ---------------------------------------------------------------------------- bit-exactness
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_bit_exact_with_fixed_model_under_micropython(generated, tmp_path, case):
    _tool(toolchain.micropython_command)
    model, out = generated(case)
    ops = case_ops(model, MPY_STEPS, seed=3)
    assert sum(op.code == harness.LEARN for op in ops) >= 2000
    if model.config.consolidation.enabled:  # the stream exercises what the issue asks for
        assert any(op.code == harness.CONSOLIDATE for op in ops)
        assert any(op.code == harness.REPLAY for op in ops)
    ref = harness.run_reference(model, ops)
    assert len(set(ref.digests)) > len(ops) // 2  # the state does move
    for module in (f"lpn_{case}", f"lpn_{case}_viper"):
        got = harness.run_micropython(out, module, ops, model.config.sizes[0], model.config.sizes[-1],
                                      tmp_path / module)
        assert harness.first_divergence(ops, ref, got) is None, module
        assert got.state == ref.state


@pytest.mark.parametrize("case", RUN_CASES)
def test_viper_kernels_agree_on_32_and_64_bit_words(tmp_path, case):
    model = make_model(case, pretrain=10)
    generate(model, tmp_path)
    ops = case_ops(model, 60, seed=5)
    ref = harness.run_reference(model, ops)
    for name in (f"lpn_{case}", f"lpn_{case}_viper"):
        module = viper32.load_module(tmp_path / f"{name}.py")
        got = harness.run_emulated(module, ops, model.state_bytes())
        assert harness.first_divergence(ops, ref, got) is None, name


def test_wide_cases_reach_the_caps():
    # The extreme cases are only worth their time if they do drive weights into saturation.
    for case in ("wide_shifts", "narrow_shifts"):
        model = make_model(case)
        for op in case_ops(model, 40, seed=5):
            harness.apply(model, op, host=True)
        assert model.state["saturations"] > 0, case


@pytest.mark.parametrize("case", OTHER_CASES)
def test_other_shapes_bit_exact_under_micropython(tmp_path, case):
    _tool(toolchain.micropython_command)
    model = make_model(case, pretrain=10)
    generate(model, tmp_path / "out")
    ops = case_ops(model, 300, seed=8)
    ref = harness.run_reference(model, ops)
    for module in (f"lpn_{case}", f"lpn_{case}_viper"):
        got = harness.run_micropython(tmp_path / "out", module, ops, model.config.sizes[0],
                                      model.config.sizes[-1], tmp_path / module)
        assert harness.first_divergence(ops, ref, got) is None, module


def test_emulator_catches_kernels_that_need_64_bit_words(tmp_path):
    data = tmp_path / "lpn_probe_data.py"
    data.write_text("MODEL_HASH = 'x'\n")
    src = tmp_path / "probe.py"
    src.write_text(textwrap.dedent("""\
        import micropython
        from array import array
        import lpn_probe_data as _D

        @micropython.viper
        def product_shift(a: int, b: int) -> int:
            return (a * b) >> 16          # a * b can pass 31 bits

        @micropython.viper
        def split_product_shift(a: int, b: int) -> int:
            return ((a >> 16) * b) + (((a & 0xFFFF) * b) >> 16)

        @micropython.viper
        def load_word(buf) -> int:
            p = ptr32(buf)
            return int(p[0])              # unsigned on the unix port, signed on a 32-bit one
        """))
    mod = viper32.load_module(src)
    assert mod.product_shift(1000, 1000) == (1000 * 1000) >> 16
    with pytest.raises(viper32.WordSizeDivergence):
        mod.product_shift(1 << 20, 1 << 20)
    assert mod.split_product_shift(1 << 20, 1 << 10) == (1 << 30) >> 16
    with pytest.raises(viper32.WordSizeDivergence):
        mod.load_word(np.array([-5], dtype="<i4"))
    assert mod.load_word(np.array([5], dtype="<i4")) == 5


# ---------------------------------------------------------------------------- the module's API
def _micropython(out: Path, script: str) -> subprocess.CompletedProcess:
    cmd = _tool(toolchain.micropython_command) + ["-c", textwrap.dedent(script)]
    return subprocess.run(cmd, cwd=out, env={"MICROPYPATH": str(out)}, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("variant", ["portable", "viper"])
def test_bad_input_raises_clear_exceptions(generated, variant):
    model, out = generated("feedback_all")
    module = "lpn_feedback_all" + ("_viper" if variant == "viper" else "")
    proc = _micropython(out, f"""
        from array import array
        from {module} import LPN, N_INPUTS, N_OUTPUTS
        net = LPN()
        before = net.state_bytes()
        x, t = [100] * N_INPUTS, [0] * N_OUTPUTS
        def attempt(what, fn):
            try:
                fn()
                print(what, "accepted")
            except Exception as e:
                print(what, type(e).__name__, e)
        attempt("short", lambda: net.learn(x[:-1], t, 0))
        attempt("long", lambda: net.predict(x + [0]))
        attempt("float", lambda: net.learn(x[:-1] + [0.5], t, 0))
        attempt("range", lambda: net.learn(x, t[:-1] + [40000], 0))
        attempt("notseq", lambda: net.predict(7))
        attempt("task", lambda: net.learn(x, t, 9))
        attempt("state_type", lambda: net.load_state_bytes("abc"))
        attempt("state_len", lambda: net.load_state_bytes(before[:-1]))
        bad = bytearray(before)
        bad[4:8] = b"\\0\\0\\0\\0"
        attempt("prng0", lambda: net.load_state_bytes(bad))
        print("unchanged", net.state_bytes() == before)
        net.load_state_bytes(bytearray(before))
        print("reload", net.state_bytes() == before)
        print("predict", list(net.predict(array("h", x))))
        print("class", net.predict_class(tuple(x), 1))
        """)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["short"] == "ValueError x must have 36 values, got 35"
    assert lines["long"] == "ValueError x must have 36 values, got 37"
    assert lines["float"].startswith("TypeError x[35] must be an int")
    assert lines["range"] == "ValueError t[3] = 40000 is outside int16"
    assert lines["notseq"].startswith("TypeError x must be a sequence")
    assert lines["task"].startswith("ValueError unknown task id 9")
    assert lines["state_type"] == "TypeError state must be bytes, got str"
    assert lines["state_len"].startswith(f"ValueError state is {len(model.state_bytes()) - 1} bytes")
    assert lines["prng0"].startswith("ValueError state field prng")
    assert lines["unchanged"] == "True" and lines["reload"] == "True"
    y = [int(v) for v in model.predict_q(np.full(36, 100))]
    assert lines["predict"] == str(y)
    outputs = np.flatnonzero(model.config.task_mask(1))  # ascending: argmax keeps the lower index
    assert lines["class"] == str(int(outputs[np.argmax([y[i] for i in outputs])]))


def test_save_and_load_state_file(generated, tmp_path):
    model, out = generated("frozen_hardtanh")
    target = tmp_path / "saved.lpnstate"
    proc = _micropython(out, f"""
        from lpn_frozen_hardtanh_viper import LPN
        net = LPN()
        net.learn_class([3000] * 36, 1, 0)
        net.save("{target}")
        again = LPN("{target}")
        print(again.state_bytes() == net.state_bytes(), again.step)
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", str(model.state["step"] + 1)]
    host = FixedLPN(model.config, model.formats)
    host.load_state_bytes(target.read_bytes())  # the host reads what the board wrote
    t = np.zeros(4, dtype=np.int64)
    t[1] = 2 ** model.formats.fa[-1]
    model_copy = make_model("frozen_hardtanh", pretrain=30)
    model_copy.learn_q(np.full(36, 3000), t, 0)
    assert host.state_bytes() == model_copy.state_bytes()
