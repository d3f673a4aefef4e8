"""`lpn new / train / convert / info`: through click's runner and the installed entry point."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import configs, datasets, layout, modelfile
from lpn.cli import main
from lpn.float_model import FloatLPN

N_SAMPLES = 64


def quadrant_data(n: int = N_SAMPLES, seed: int = 0):
    """4x4 images labelled by their brightest 2x2 quadrant: what `tiny` can learn."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.5, size=(n, 4, 4))
    y = rng.integers(0, 4, size=n)
    for i, q in enumerate(y):
        r, c = divmod(int(q), 2)
        X[i, 2 * r: 2 * r + 2, 2 * c: 2 * c + 2] += 0.5
    return X.reshape(n, 16), y


@pytest.fixture
def data(tmp_path) -> Path:
    X, y = quadrant_data()
    path = tmp_path / "train.csv"
    datasets.write_csv(path, X, y, label="label")
    return path


def run(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: str, words: tuple[str, ...] = ()):
    """A user mistake: one `error:` line naming the problem, exit code 2, no traceback."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result


@pytest.fixture
def float_model(tmp_path) -> Path:
    path = tmp_path / "m.lpn"
    ok("new", "tiny", "--out", path)
    return path


# ---------------------------------------------------------------------------
def _command_paths(group=None, prefix=()):
    """Every command and subcommand of `lpn`, as argument tuples."""
    import click

    from lpn.cli import main
    group = group or main
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))


@pytest.mark.parametrize("command", list(_command_paths()), ids=" ".join)
def test_every_command_has_help(command):
    result = ok(*command, "--help")
    assert "Usage:" in result.output
    assert "--help" in result.output
    # Some words of its own beyond the usage line and the options.
    assert len(result.output.split("Options:")[0].split()) > 6, result.output


def test_the_help_covers_every_documented_command():
    paths = {" ".join(p) for p in _command_paths()}
    assert {"new", "train", "convert", "info", "codegen", "experiment", "bench host", "bench codegen",
            "bench device", "bench micropython", "build", "flash", "emulate", "push", "pull", "stream",
            "monitor", "demo", "continual", "mpy deploy"} <= paths


def test_new_writes_the_config_model(float_model):
    model = modelfile.load(float_model, expect_kind="float")
    assert model.config == configs.named("tiny")
    assert model.state_bytes() == FloatLPN.new(configs.named("tiny")).state_bytes()


def test_new_fixed_and_from_a_user_file(tmp_path):
    ok("new", "tiny", "--kind", "fixed", "--out", tmp_path / "f.lpn")
    assert modelfile.load(tmp_path / "f.lpn").kind == "fixed"
    cfg_path = tmp_path / "mine.json"
    cfg_path.write_text(configs.named("tiny").replace(name="mine").to_json())
    ok("new", cfg_path, "--out", tmp_path / "mine.lpn")
    assert modelfile.load(tmp_path / "mine.lpn").config.name == "mine"


def test_new_refuses_to_overwrite_without_force(float_model):
    before = float_model.read_bytes()
    fails("new", "tiny", "--kind", "fixed", "--out", float_model, words=("exists", "--force"))
    assert float_model.read_bytes() == before
    ok("new", "tiny", "--kind", "fixed", "--force", "--out", float_model)
    assert modelfile.load(float_model).kind == "fixed"


def test_new_names_a_bad_config(tmp_path):
    fails("new", "tinny", "--out", tmp_path / "x.lpn", words=("tinny", "digits", "tiny"))
    bad = tmp_path / "bad.toml"
    bad.write_text('[[layers]]\nshape = [2]\nposition = "center"\nfan_in = 0\n')
    fails("new", bad, "--out", tmp_path / "x.lpn", words=(str(bad), "layers[0].fan_in"))
    assert not (tmp_path / "x.lpn").exists()


# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["float", "fixed"])
def test_train_learns_every_row_and_saves(tmp_path, data, kind):
    path = tmp_path / "m.lpn"
    ok("new", "tiny", "--kind", kind, "--out", path)
    result = ok("train", path, data, "--label", "label", "--epochs", "3")
    assert "accuracy" in result.output
    model = modelfile.load(path, expect_kind=kind)
    assert model.state["step"] == 3 * N_SAMPLES


def test_train_out_leaves_the_input_model(float_model, data, tmp_path):
    before = float_model.read_bytes()
    ok("train", float_model, data, "--label", "label", "--out", tmp_path / "trained.lpn")
    assert float_model.read_bytes() == before
    assert modelfile.load(tmp_path / "trained.lpn").state["step"] == N_SAMPLES


def test_train_errors_name_the_problem_and_change_nothing(float_model, data, tmp_path):
    before = float_model.read_bytes()
    fails("train", float_model, data, "--label", "target", words=("'target'", "line 1"))
    nan = tmp_path / "nan.csv"
    nan.write_text(data.read_text().replace("\n", "\nnan," + ",".join(["0"] * 16) + "\n", 1))
    fails("train", float_model, nan, "--label", "label", words=("line 2", "not a finite number"))
    wide = tmp_path / "wide.csv"
    datasets.write_csv(wide, np.zeros((3, 20)), [0, 1, 2])
    fails("train", float_model, wide, "--label", "label", words=("20 feature columns", "16"))
    big = tmp_path / "big.csv"
    datasets.write_csv(big, np.zeros((2, 16)), [0, 7])
    fails("train", float_model, big, "--label", "label", words=("label 7", "0..3"))
    fails("train", float_model, data, "--label", "label", "--task", "3", words=("--task 3", "1 task"))
    fails("train", tmp_path / "none.lpn", data, "--label", "label", words=("cannot read",))
    assert float_model.read_bytes() == before


def test_train_respects_task_masks(tmp_path):
    path = tmp_path / "d.lpn"
    ok("new", "digits", "--out", path)
    X, y = datasets.digits()
    csv = tmp_path / "d.csv"
    datasets.write_csv(csv, X[:40], y[:40])
    fails("train", path, csv, "--label", "label", "--task", "1", words=("task 1", "[2, 3]"))


def test_train_rejects_a_corrupted_model(float_model, data):
    raw = bytearray(float_model.read_bytes())
    raw[-10] ^= 0xFF
    float_model.write_bytes(bytes(raw))
    fails("train", float_model, data, "--label", "label", words=("corrupted",))


# ---------------------------------------------------------------------------
def test_convert_writes_a_fixed_model_and_prints_the_gap(float_model, data, tmp_path):
    ok("train", float_model, data, "--label", "label", "--epochs", "2")
    out = tmp_path / "fixed.lpn"
    result = ok("convert", float_model, "--calibrate", data, "--out", out, "--label", "label")
    assert "agree" in result.output and "accuracy float" in result.output and "gap" in result.output
    fixed = modelfile.load(out, expect_kind="fixed")
    float_model_loaded = modelfile.load(float_model)
    assert fixed.state["step"] == float_model_loaded.state["step"]
    X, _ = quadrant_data()
    # The gap the command prints is a measurement; here only check it is a sane one.
    agree = np.mean(np.argmax(fixed.decision_function(X), 1) == np.argmax(float_model_loaded.decision_function(X), 1))
    assert f"{agree:.2%}" in result.output


def test_convert_without_labels(float_model, tmp_path):
    X, _ = quadrant_data()
    unlabelled = tmp_path / "x.csv"
    datasets.write_csv(unlabelled, X)
    result = ok("convert", float_model, "--calibrate", unlabelled, "--out", tmp_path / "f.lpn")
    assert "agree" in result.output and "accuracy float" not in result.output


def test_convert_errors(float_model, data, tmp_path):
    fixed = tmp_path / "f.lpn"
    ok("new", "tiny", "--kind", "fixed", "--out", fixed)
    out = tmp_path / "out.lpn"
    fails("convert", fixed, "--calibrate", data, "--out", out, "--label", "label",
          words=("wrong kind", "fixed", "float"))
    fails("convert", float_model, "--calibrate", data, "--out", out,
          words=("17 feature columns", "--label"))
    fails("convert", float_model, "--calibrate", data, "--out", float_model, "--label", "label",
          words=("--out",))
    assert not out.exists()


# ---------------------------------------------------------------------------
def test_info_summarises_a_float_model(float_model):
    result = ok("info", float_model)
    model = modelfile.load(float_model)
    text = result.output
    assert "float" in text and modelfile.model_hash(model) in text
    assert "consolidation: off" in text and "replay: off" in text
    nbytes = layout.state_nbytes(layout.state_fields(model.config, model.topology, "float"))
    assert f"{nbytes} bytes" in text
    assert "relu" in text and "identity" in text


def test_info_shows_formats_and_mechanisms(tmp_path):
    path = tmp_path / "d.lpn"
    ok("new", "digits", "--kind", "fixed", "--out", path)
    text = ok("info", path).output
    model = modelfile.load(path)
    assert f"fa {model.formats.fa}" in text and f"fw {model.formats.fw}" in text
    assert "consolidation: on" in text and "replay: on (capacity 24" in text
    assert "2016" in text  # synapses of the hidden layer


def test_info_names_a_broken_file(tmp_path):
    path = tmp_path / "junk.lpn"
    path.write_bytes(b"hello")
    fails("info", path, words=("not an LPN model file",))


# ---------------------------------------------------------------------------
def _lpn_executable() -> Path:
    exe = Path(sys.executable).with_name("lpn")
    assert exe.exists(), f"the `lpn` entry point is not installed next to {sys.executable}"
    return exe


def test_installed_entry_point_runs_the_lifecycle(tmp_path, data):
    lpn = str(_lpn_executable())

    def call(*args, code: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([lpn, *map(str, args)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        return proc

    call("new", "tiny", "--out", "m.lpn")
    call("train", "m.lpn", data, "--label", "label", "--epochs", "2")
    call("convert", "m.lpn", "--calibrate", data, "--out", "f.lpn", "--label", "label")
    info = call("info", "f.lpn")
    fixed = modelfile.load(tmp_path / "f.lpn", expect_kind="fixed")
    assert modelfile.model_hash(fixed) in info.stdout
    assert fixed.state["step"] == 2 * N_SAMPLES
    bad = call("info", "missing.lpn", code=2)
    assert bad.stderr.startswith("error: ") and "missing.lpn" in bad.stderr


def test_train_infers_each_samples_task_from_the_masks(tmp_path):
    X, y = datasets.digits()
    csv = tmp_path / "digits.csv"
    datasets.write_csv(csv, X[:200], y[:200])
    model = tmp_path / "m.lpn"
    ok("new", "digits", "--out", model)
    out = ok("train", model, csv, "--label", "label").output
    assert "tasks [0, 1, 2, 3, 4]" in out
    trained = modelfile.load(model)
    assert trained.state["step"] >= 200
    trained.classes_ = np.arange(10)  # the model file keeps outputs, labels are output indices
    assert trained.score(X[:200], y[:200], task=y[:200] // 2) > 0.9
    fails("train", model, csv, "--label", "label", "--task", "0", words=("outside task 0",))
