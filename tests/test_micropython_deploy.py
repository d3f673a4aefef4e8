"""`lpn mpy deploy` and `lpn bench micropython`.

No MicroPython board is attached to this machine, so deploy is tested up to the
mpremote command: the command it composes, and that it runs it (a stand-in
`mpremote` script records its arguments) and reports a failing one.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import small_config
from lpn.commands.mpy import DeployError, deploy_command, deploy_files, mpy
from lpn.fixed import FixedLPN
from lpncodegen.micropython import generate, toolchain
from lpncodegen.micropython.bench import bench_micropython, measure


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mpy")
    generate(FixedLPN(small_config()), out)
    return out


def test_deploy_copies_data_modules_and_state_in_one_mpremote_call(out_dir):
    files = deploy_files(out_dir, "both")
    assert [f.name for f in files] == ["lpn_small_data.py", "lpn_small.py", "lpn_small_viper.py",
                                       "small.lpnstate"]
    cmd = deploy_command("/dev/ttyACM0", files, ["mpremote"])
    assert cmd == ["mpremote", "connect", "/dev/ttyACM0", "fs", "cp", *map(str, files), ":"]
    viper_only = [f.name for f in deploy_files(out_dir, "viper")]
    assert viper_only == ["lpn_small_data.py", "lpn_small_viper.py", "small.lpnstate"]


def test_deploy_dry_run_prints_the_command(out_dir):
    result = CliRunner().invoke(mpy, ["deploy", "--port", "COM3", "--dir", str(out_dir), "--variant",
                                      "portable", "--dry-run"])
    assert result.exit_code == 0, result.output
    words = shlex.split(result.output.strip())
    assert words[-8:] == ["connect", "COM3", "fs", "cp", str(out_dir / "lpn_small_data.py"),
                          str(out_dir / "lpn_small.py"), str(out_dir / "small.lpnstate"), ":"]


def _fake_mpremote(tmp_path: Path, exit_code: int) -> str:
    log = tmp_path / "argv.json"
    script = tmp_path / "fake_mpremote.py"
    script.write_text("import json, sys\n"
                      f"open({str(log)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                      f"sys.exit({exit_code})\n")
    return shlex.join([sys.executable, str(script)])


def test_deploy_runs_mpremote(out_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LPN_MPREMOTE", _fake_mpremote(tmp_path, 0))
    result = CliRunner().invoke(mpy, ["deploy", "--port", "/dev/ttyUSB0", "--dir", str(out_dir)])
    assert result.exit_code == 0, result.output
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:4] == ["connect", "/dev/ttyUSB0", "fs", "cp"] and argv[-1] == ":"
    assert [Path(a).name for a in argv[4:-1]] == ["lpn_small_data.py", "lpn_small.py",
                                                  "lpn_small_viper.py", "small.lpnstate"]
    assert "copied 4 files to /dev/ttyUSB0" in result.output


def test_deploy_reports_a_failing_mpremote(out_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LPN_MPREMOTE", _fake_mpremote(tmp_path, 1))
    result = CliRunner().invoke(mpy, ["deploy", "--port", "/dev/ttyUSB0", "--dir", str(out_dir)])
    assert result.exit_code == 2
    assert "mpremote exited with code 1" in result.output


def test_deploy_compiles_to_mpy_first(out_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LPN_MPREMOTE", _fake_mpremote(tmp_path, 0))
    try:
        toolchain.mpy_cross()
    except toolchain.ToolMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    result = CliRunner().invoke(mpy, ["deploy", "--port", "p", "--dir", str(out_dir), "--march", "armv6m"])
    assert result.exit_code == 0, result.output
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert [Path(a).name for a in argv[4:-1]] == ["lpn_small_data.mpy", "lpn_small.mpy",
                                                  "lpn_small_viper.mpy", "small.lpnstate"]


def test_deploy_explains_a_directory_without_a_learner(tmp_path):
    result = CliRunner().invoke(mpy, ["deploy", "--port", "p", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "manifest.json" in result.output and "lpn codegen" in result.output
    with pytest.raises(DeployError, match="--port"):
        deploy_command("", [], ["mpremote"])


def test_bench_measures_both_variants():
    figures = measure(FixedLPN(small_config()), learns=20, predicts=20, repeat=1)
    assert set(figures) == {"bytecode", "viper"}
    for f in figures.values():
        assert f["learn_us"] > 0 and f["predict_us"] > 0
    result = CliRunner().invoke(bench_micropython, ["--config", "tiny", "--learns", "10", "--predicts", "10",
                                                    "--repeat", "1"])
    assert result.exit_code == 0, result.output
    assert "viper/bytecode time ratio" in result.output
