"""`lpn build / flash / emulate / push / pull / stream / monitor` as a user runs them.

The device commands talk to the real firmware in QEMU, started by `lpn emulate` in a
subprocess (stopped with Ctrl-C's signal at the end, and killed by its own
--timeout whatever happens). `lpn flash` needs a physical board: its upload
command is composed and checked, and run through a stand-in runner, never for real.
The generated-learner mechanism (which model a build uses) is checked without
PlatformIO where it can be, and in the built program's bytes where it cannot.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import build_firmware, datasets, modelfile, pio
from lpn.cli import main
from lpn.device import Device
from lpn.fixed import FixedLPN
from lpn.float_model import FloatLPN

LPN = [sys.executable, "-c", "from lpn.cli import main; main()"]


def run(*args: object):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def ok(*args: object) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: object, words: tuple[str, ...] = ()) -> str:
    """A user mistake: one `error:` line naming the problem, exit code 2, no traceback."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


# ---------------------------------------------------------------------------
# Which model a build gets (no PlatformIO needed)
def test_requested_model_wins_and_a_built_learner_stays_until_the_next_request(tmp_path):
    directory = tmp_path / "gen"
    first = build_firmware.ensure_learner(directory, None, "tiny")
    assert (first.origin, first.name) == ("option", "tiny")
    for name in ("learner.h", "learner.c", "learner_meta.h", "library.json"):
        assert (directory / "learner" / name).is_file()
    assert modelfile.model_hash(modelfile.load(directory / "model.lpn")) == first.model_hash

    # Unchanged model: no file is rewritten, so nothing recompiles.
    stamps = {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}
    again = build_firmware.ensure_learner(directory, None, "tiny")
    assert not again.written
    assert stamps == {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}

    # The environment's option changes: regenerated.
    digits = build_firmware.ensure_learner(directory, None, "digits")
    assert digits.name == "digits" and digits.written
    # `lpn build --model` asked for one: it stays when the next build asks for nothing.
    requested = build_firmware.ensure_learner(directory, "tiny", "digits")
    assert requested.origin == "request"
    kept = build_firmware.ensure_learner(directory, None, "digits")
    assert (kept.name, kept.model_hash, kept.written) == ("tiny", requested.model_hash, False)
    assert "tiny" in (directory / "learner" / "learner_meta.h").read_text()


def test_meta_header_holds_the_hash_and_the_task_masks(tmp_path):
    model = FixedLPN.new("digits")
    learner = build_firmware.write_learner(model, tmp_path, "request", "digits")
    text = (tmp_path / "learner" / "learner_meta.h").read_text()
    digest = bytes.fromhex(learner.model_hash)
    assert ", ".join(f"0x{b:02x}" for b in digest[:8]) in text
    # Task 4 holds outputs 8 and 9: bits 0 and 1 of the second byte.
    assert "{0x03, 0x00}" in text and "{0x00, 0x03}" in text
    assert "GENERATED FILE, DO NOT EDIT" in text


def test_model_specs_are_files_or_shipped_configs(tmp_path):
    float_path = tmp_path / "float.lpn"
    modelfile.save(FloatLPN.new("tiny"), float_path)
    with pytest.raises(build_firmware.FirmwareError, match="lpn convert"):
        build_firmware.resolve_model(float_path)
    with pytest.raises(build_firmware.FirmwareError, match="no model file"):
        build_firmware.resolve_model(tmp_path / "absent.lpn")
    assert build_firmware.resolve_model("tiny").config.name == "tiny"
    assert build_firmware.default_model_spec("qemu_m4") == "digits"
    assert build_firmware.default_model_spec("uno") == "uno"


# ---------------------------------------------------------------------------
# lpn build
def test_build_with_a_model_compiles_that_model_and_plain_pio_keeps_it(tmp_path):
    model = FixedLPN.new("tiny")
    model.learn_q(np.full(16, 1000), np.array([4096, 0, 0, 0]), 0)  # not the shipped state
    modelfile.save(model, tmp_path / "mine.lpn")
    build_dir = tmp_path / "build"
    output = ok("build", "--env", "native", "--model", tmp_path / "mine.lpn", "--build-dir", build_dir)
    program = build_dir / "native" / "program"
    digest = bytes.fromhex(modelfile.model_hash(model))
    assert digest in program.read_bytes(), "the program must carry the model's hash"
    size = pio.size_of(program)
    assert f"flash {size.flash} B, RAM {size.ram} B" in output
    assert modelfile.model_hash(model)[:16] in output

    # `pio run` by hand (no LPN_MODEL) rebuilds with the learner `lpn build` made.
    generated = build_firmware.generated_dir("native", build_dir=build_dir)
    (build_dir / "native" / "program").unlink()
    pio.build("native", extra_env={"PLATFORMIO_BUILD_DIR": str(build_dir),
                                   build_firmware.GENERATED_ENV_VAR: str(generated)})
    assert digest in program.read_bytes()
    # Without --model, `lpn build` is back to the environment's default.
    ok("build", "--env", "native", "--build-dir", build_dir)
    default = bytes.fromhex(modelfile.model_hash(FixedLPN.new("digits")))
    assert default in program.read_bytes() and digest not in program.read_bytes()
    manifest = json.loads((generated / "manifest.json").read_text())
    assert manifest["name"] == "digits"


def test_build_refuses_what_it_cannot_build(tmp_path):
    modelfile.save(FloatLPN.new("tiny"), tmp_path / "float.lpn")
    fails("build", "--model", tmp_path / "float.lpn", "--build-dir", tmp_path, words=("lpn convert",))
    fails("build", "--env", "no_such_env", words=("no_such_env", "qemu_m4"))
    fails("build", "--env", "nucleo_f446re", words=("internet", "lpn flash"))


# ---------------------------------------------------------------------------
# lpn flash: no board here, so the upload command is composed and checked, not run.
def test_flash_composes_the_upload_for_a_real_board(tmp_path):
    command, variables, learner = build_firmware.prepare_flash("nucleo_f446re", None, "/dev/ttyACM0")
    assert command == [sys.executable, "-m", "platformio", "run", "-d", str(pio.FIRMWARE_DIR.resolve()),
                       "-e", "nucleo_f446re", "-t", "upload", "--upload-port", "/dev/ttyACM0"]
    assert variables[build_firmware.GENERATED_ENV_VAR] == str(learner.directory.resolve())
    assert build_firmware.MODEL_ENV_VAR not in variables
    # The user's own PlatformIO runs the upload: none of the offline core's settings leak in.
    assert variables.get("PLATFORMIO_CORE_DIR") == os.environ.get("PLATFORMIO_CORE_DIR")
    assert (learner.directory / "learner" / "learner.h").is_file() and learner.name == "digits"

    uno = build_firmware.prepare_flash("uno")[2]
    assert uno.name == "uno"

    calls = []

    def stand_in(command, **kwargs):  # stands in for the board: records what would run
        calls.append((command, kwargs))
        return subprocess.CompletedProcess(command, 0)

    assert build_firmware.flash("esp32dev", run=stand_in) == 0
    (command, kwargs), = calls
    assert command[-4:] == ["-e", "esp32dev", "-t", "upload"]
    assert kwargs["cwd"] == str(pio.FIRMWARE_DIR)

    shown = ok("flash", "--env", "pico", "--dry-run")
    assert "-m platformio run -d" in shown and "-e pico -t upload" in shown
    assert build_firmware.GENERATED_ENV_VAR + "=" in shown
    fails("flash", "--env", "qemu_m4", words=("lpn emulate",))
    fails("flash", "--env", "native", "--dry-run", words=("desktop",))


# ---------------------------------------------------------------------------
# The device commands against `lpn emulate`
@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """`lpn emulate` in a subprocess; yields the URL it prints."""
    build_dir = tmp_path_factory.mktemp("emulate-build")
    process = subprocess.Popen([*LPN, "emulate", "--build-dir", str(build_dir), "--timeout", "150"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    url = None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("socket://"):
            url = line.strip()
    if url is None:
        process.kill()
        pytest.fail("lpn emulate printed no URL:\n" + "".join(lines) + process.stderr.read())
    try:
        yield url, process, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _refused(url: str) -> bool:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_emulate_prints_the_build_and_a_working_url(emulated):
    url, _, printed = emulated
    assert "built qemu_m4" in printed and "flash " in printed
    with Device(url, timeout=5) as dev:
        info = dev.info()
    assert info.board == "mps2_an386"
    assert info.model_hash == modelfile.model_hash(FixedLPN.new("digits"))


def test_push_refuses_models_the_firmware_cannot_run(emulated, tmp_path):
    url = emulated[0]
    with Device(url, timeout=5) as dev:
        before = dev.get_state()
    modelfile.save(FixedLPN.new("tiny"), tmp_path / "tiny.lpn")
    fails("push", url, tmp_path / "tiny.lpn", words=("does not fit", "inputs 16 (device 64)", "lpn build --model"))
    other = FixedLPN.new("digits")
    other.formats.fw[0] -= 1  # same sizes, other number formats
    modelfile.save(other, tmp_path / "other.lpn")
    fails("push", url, tmp_path / "other.lpn", words=("formats", "lpn build --model"))
    modelfile.save(FloatLPN.new("digits"), tmp_path / "float.lpn")
    fails("push", url, tmp_path / "float.lpn", words=("lpn convert",))
    with Device(url, timeout=5) as dev:
        assert dev.get_state() == before


def test_push_stream_monitor_pull(emulated, tmp_path):
    url = emulated[0]
    X, y = datasets.digits()
    trained = FixedLPN.new("digits")
    trained.partial_fit(X[:40], y[:40], classes=np.arange(10), task=y[:40] // 2)
    modelfile.save(trained, tmp_path / "trained.lpn")
    shown = ok("push", url, tmp_path / "trained.lpn")
    assert "pushed" in shown and "B/s" in shown

    datasets.write_csv(tmp_path / "stream.csv", X[40:100], y[40:100], label="digit")
    output = ok("stream", url, tmp_path / "stream.csv", "--label", "digit")
    assert "streamed 60 samples" in output and "learn steps/s" in output
    x_q = trained.quantise_input(X[40:100])
    t_q = trained.quantise_target(np.eye(10)[y[40:100]])
    correct = 0
    for i, label in enumerate(y[40:100]):
        mask = np.flatnonzero(trained.config.task_mask(label // 2))
        correct += int(mask[np.argmax(trained.predict_q(x_q[i])[mask])] == label)
        trained.learn_q(x_q[i], t_q[i], int(label // 2))
    assert f"running accuracy {correct}/60 " in output

    shown = ok("monitor", url, "--count", "2", "--interval", "0.1")
    assert f"step {int(trained.state['step'])}" in shown and "L2 budget" in shown
    assert "mps2_an386: firmware 0.1.0" in shown

    # The device's firmware model is a shipped config's, so pull needs no --model.
    ok("pull", url, "--out", tmp_path / "pulled.lpn")
    assert modelfile.load(tmp_path / "pulled.lpn").state_bytes() == trained.state_bytes()
    fails("pull", url, "--out", tmp_path / "pulled.lpn", words=("exists", "--force"))
    ok("pull", url, "--out", tmp_path / "pulled.lpn", "--model", tmp_path / "trained.lpn", "--force")


def test_stream_reports_bad_input(emulated, tmp_path):
    url = emulated[0]
    X, y = datasets.digits()
    datasets.write_csv(tmp_path / "d.csv", X[:5], y[:5], label="digit")
    fails("stream", url, tmp_path / "d.csv", "--label", "class", words=("no label column",))
    fails("stream", url, tmp_path / "d.csv", "--label", "digit", "--task", "7", words=("--task 7",))
    fails("stream", url, tmp_path / "d.csv", "--label", "digit", "--task", "0", words=("outside task 0",))
    datasets.write_csv(tmp_path / "narrow.csv", X[:5, :10], y[:5], label="digit")
    fails("stream", url, tmp_path / "narrow.csv", "--label", "digit", words=("10 feature columns",))
    assert run("stream", url, tmp_path / "d.csv", "--label", "digit", "--task", "first").exit_code == 2


def test_unreachable_device_is_one_error_line(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    fails("monitor", f"socket://127.0.0.1:{port}", "--count", "1", words=("cannot talk to the device",))
    fails("emulate", "--env", "native", words=("native",))


def test_ctrl_c_stops_the_emulator(emulated):
    # Runs last in this module: it ends the shared emulator.
    url, process, _ = emulated
    process.send_signal(signal.SIGINT)
    assert process.wait(20) == 0
    assert "stopped" in process.stdout.read()
    assert _refused(url), "QEMU still listens after lpn emulate stopped"
