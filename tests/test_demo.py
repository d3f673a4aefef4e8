"""`lpn demo` end to end at reduced size, and the device backend of `lpn continual`.

The demo really builds the firmware with PlatformIO and runs it in QEMU. Its
claims are checked here independently of its own checks: the state it pulled
from the device must equal the state of a Python fixed-point model that this test
feeds the same stream itself, and its accuracy matrix must equal that model's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import layout, modelfile, pio
from lpn.cli import main
from lpn.continual import BackendSpec, digits_stream, make_backend
from lpn.continual.protocol import run_method
from lpn.continual.targets import TargetCoding
from lpn.emulator import Emulator, qemu_machine_for_env
from lpn.fixed import FixedLPN

pytestmark = pytest.mark.slow

MAX_TRAIN, MAX_TEST = 24, 12
TASKS = 5


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "report"
    result = invoke("demo", "--out", out, "--max-train", MAX_TRAIN, "--max-test", MAX_TEST)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def host_reference():
    """The Python fixed-point model fed the demo's stream by this test, and its results."""
    stream = digits_stream("task", seed=0, max_train=MAX_TRAIN, max_test=MAX_TEST)
    spec = BackendSpec(FixedLPN.new("digits").config, stream.classes, stream.task_classes, 0)
    backend = make_backend("fixed", spec)
    states: list[bytes] = []
    result = run_method(backend, stream, after_task=lambda i, b: states.append(b.state_bytes()))
    return stream, result, states


def test_demo_prints_the_tables_and_writes_the_files(demo_run):
    out, output = demo_run
    for text in ("LPN on device: accuracy (%)", "MLP fine-tune: accuracy (%)", "summary", "flash",
                 "bit-exact after every task"):
        assert text in output
    for name in ("report.json", "demo.png", "model-initial.lpn", "model-device.lpn"):
        assert (out / name).is_file(), name


def test_report_is_well_formed(demo_run):
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())  # strict JSON: no NaN
    assert (report["schema"], report["version"]) == ("lpn-demo-report", 1)
    for key in ("data", "config", "model", "firmware", "device", "reference", "baselines", "bit_exact",
                "targets", "goals", "throughput", "seconds", "files"):
        assert key in report, key
    assert report["targets"] == "onehot" and report["goals"]["met"] in (True, False)
    assert len(report["data"]["tasks"]) == TASKS
    assert all(t["train"] == MAX_TRAIN and t["test"] == MAX_TEST for t in report["data"]["tasks"])
    for method in [report["device"], report["reference"], *report["baselines"]]:
        R = method["accuracy_matrix"]
        assert len(R) == TASKS and all(len(row) == TASKS for row in R), method["name"]
        for i in range(TASKS):
            for j in range(TASKS):
                if j <= i:
                    assert isinstance(R[i][j], float) and math.isfinite(R[i][j]) and 0 <= R[i][j] <= 1
                    # Whole test samples: an accuracy is a count over MAX_TEST.
                    assert abs(R[i][j] * MAX_TEST - round(R[i][j] * MAX_TEST)) < 1e-9
                else:
                    assert R[i][j] is None
        assert method["average_accuracy"] == pytest.approx(np.mean(R[-1]))
    assert [b["name"] for b in report["baselines"]] == ["MLP fine-tune", "MLP + replay"]
    assert report["throughput"]["learn_samples"] == TASKS * MAX_TRAIN
    assert report["throughput"]["learn_samples_per_s"] > 0


def test_firmware_figures_are_the_built_programs(demo_run):
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())
    elf = out / report["files"]["firmware"]
    size = pio.size_of(elf)
    fw = report["firmware"]
    assert (fw["flash_bytes"], fw["ram_bytes"]) == (size.flash, size.ram)
    assert 0 < fw["flash_bytes"] < 1 << 20 and 0 < fw["ram_bytes"] < 4 << 20
    initial = modelfile.load(out / "model-initial.lpn")
    assert fw["learner_sha256"] == report["model"]["initial_sha256"] == modelfile.model_hash(initial)
    assert initial.state_bytes() == FixedLPN.new("digits").state_bytes()


def test_device_state_is_the_reference_state_bit_for_bit(demo_run, host_reference):
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())
    stream, result, states = host_reference
    assert report["bit_exact"]["identical"] is True
    checks = report["bit_exact"]["checks"]
    assert [c["after_task"] for c in checks] == list(range(TASKS))
    import hashlib
    assert [c["sha256"] for c in checks] == [hashlib.sha256(s).hexdigest() for s in states]
    pulled = modelfile.load(out / "model-device.lpn")
    assert pulled.state_bytes() == states[-1]
    assert int(pulled.state["step"]) >= TASKS * MAX_TRAIN  # replay steps come on top
    assert modelfile.model_hash(pulled) == report["model"]["final_sha256"]
    # Same state, same predictions: the device's matrix is the reference's.
    device_R = np.array(report["device"]["accuracy_matrix"], dtype=float)
    np.testing.assert_array_equal(device_R, result.matrix)


def test_demo_learns_as_lpn_continual_does_by_default(demo_run, tmp_path):
    """The demo's host reference and `lpn continual`'s fixed backend, both on their
    defaults for task-incremental digits, must give the same accuracy matrix."""
    out, _ = demo_run
    result = invoke("continual", "--backend", "fixed", "--no-baselines", "--max-train", MAX_TRAIN,
                    "--max-test", MAX_TEST, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    (fixed,) = json.loads((tmp_path / "c.json").read_text())["methods"]
    report = json.loads((out / "report.json").read_text())
    assert fixed["accuracy_matrix"] == report["reference"]["accuracy_matrix"]


def test_figure_is_a_png(demo_run):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image

    path = demo_run[0] / "demo.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_first_difference_names_the_field():
    from lpn.demo.pipeline import first_difference

    model = FixedLPN.new("digits")
    state = bytearray(model.state_bytes())
    fields = layout.state_fields(model.config, model.topology, "fixed")
    offset = sum(f.nbytes for f in fields[:next(i for i, f in enumerate(fields) if f.name == "L2.w")])
    changed = bytearray(state)
    changed[offset + 6] ^= 1
    assert first_difference(model, bytes(state), bytes(changed)).startswith("field L2.w (byte")
    assert "element 3" in first_difference(model, bytes(state), bytes(changed))
    assert "bytes" in first_difference(model, bytes(state), bytes(state[:-1]))


def test_demo_refuses_bad_input_before_writing_anything(tmp_path):
    result = invoke("demo", "--out", tmp_path / "x", "--env", "native")
    assert result.exit_code == 2 and "no emulator" in result.output
    result = invoke("demo", "--out", tmp_path / "x", "--config", "tiny")
    assert result.exit_code == 2 and "features" in result.output
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------
def test_continual_device_backend_equals_the_fixed_backend(demo_run, tmp_path):
    """`lpn continual --backend device:URL` on the demo's firmware (the untrained digits model)."""
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())
    elf = out / report["files"]["firmware"]
    with Emulator(elf, machine=qemu_machine_for_env("qemu_m4"), timeout=120) as emu:
        result = invoke("continual", "--backend", f"device:{emu.url}", "--backend", "fixed", "--no-baselines",
                        "--max-train", 16, "--max-test", 10, "--seed", 3, "--json", tmp_path / "c.json")
        assert result.exit_code == 0, result.output
        # Another config (another learning rate: other constants) is refused.
        bad = invoke("continual", "--backend", f"device:{emu.url}", "--config", str(_other_config(tmp_path)),
                     "--no-baselines", "--max-train", 4, "--max-test", 2)
        assert bad.exit_code == 2 and "another config" in bad.output, bad.output
        # Soft targets: the device's outputs are read back before each learning step.
        stream = digits_stream("task", seed=5, max_train=8, max_test=6)
        spec = lambda: BackendSpec(FixedLPN.new("digits").config, stream.classes, stream.task_classes, 5,  # noqa: E731
                                   targets=TargetCoding("soft", 0.25))
        on_device = make_backend(f"device:{emu.url}", spec())
        soft_device = run_method(on_device, stream, seed=5)
        device_state = on_device.state_bytes()
        on_device.close()
        assert emu.process.poll() is None, emu.output
    on_host = make_backend("fixed", spec())
    soft_host = run_method(on_host, stream, seed=5)
    np.testing.assert_array_equal(soft_device.matrix, soft_host.matrix)
    assert device_state == on_host.state_bytes()
    methods = {m["name"]: m for m in json.loads((tmp_path / "c.json").read_text())["methods"]}
    device = next(m for name, m in methods.items() if name.startswith("LPN device"))
    fixed = methods["LPN fixed"]
    assert device["accuracy_matrix"] == fixed["accuracy_matrix"]
    assert device["state_bytes"] == fixed["state_bytes"] > 0


def _other_config(tmp_path: Path) -> Path:
    data = FixedLPN.new("digits").config.to_dict()
    data["learning"]["eta"] = 0.07
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))  # Python's json writes the unlimited radius as Infinity
    return path
