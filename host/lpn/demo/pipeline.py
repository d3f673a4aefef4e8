"""The demo's steps, from the digits to a finished report (a plain dict, see `report`).

Every learner sees the same stream through `lpn.continual.run_method`, so the
device's run, the Python fixed-point reference and the baselines differ only in
who learns. The device's run is checked against the reference after every task:
the whole state is pulled over the serial line and must equal the reference's
state byte for byte, or the demo stops with the first field that differs.
"""
from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .. import build_firmware, configs, layout, modelfile
from ..continual import Stream, digits_stream
from ..continual import baselines as bl
from ..continual.backends import LPNBackend, check_config_fits, lpn_replay_bytes
from ..continual.device_backend import DeviceBackend
from ..continual.protocol import MethodResult, run_method
from ..commands import continual as _continual
from ..continual.targets import TargetCoding
from ..fixed import FixedLPN

SCENARIO = "task"
# What `lpn continual` uses for task-incremental digits when not told otherwise
# (tests/test_demo.py checks that both give the same results): its config, one-hot
# targets and one pass over each task.
DEFAULT_CONFIG = _continual.DEFAULT_CONFIGS[SCENARIO]
TARGETS = TargetCoding("onehot")
EPOCHS = 1
INITIAL_MODEL = "model-initial.lpn"   # what the firmware is generated from and what is pushed
DEVICE_MODEL = "model-device.lpn"     # the state pulled from the device at the end
BUILD_DIR = "build"
EMULATOR_LIMIT = 1800.0               # seconds: QEMU is killed after this, whatever happens


class DemoError(RuntimeError):
    """The demo could not finish, or the device and the reference disagree."""


@dataclass
class DemoSettings:
    out: Path
    config: str = DEFAULT_CONFIG
    env: str = "qemu_m4"
    seed: int = 0
    max_train: int | None = None
    max_test: int | None = None
    baselines: bool = True
    device_timeout: float = 10.0


@dataclass
class Step:
    """Seconds each step took, in order."""
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


class Bars:
    """Progress bars for the steps; `None` progress draws nothing (library use, tests)."""

    def __init__(self, progress: Any = None):
        self.progress = progress

    def add(self, description: str, total: float | None) -> Any:
        return self.progress.add_task(description, total=total) if self.progress else None

    def advance(self, bar: Any, n: float = 1) -> None:
        if self.progress and bar is not None:
            self.progress.advance(bar, n)

    def finish(self, bar: Any, description: str | None = None) -> None:
        if self.progress and bar is not None:
            task = self.progress.tasks[[t.id for t in self.progress.tasks].index(bar)]
            total = task.total if task.total is not None else 1
            self.progress.update(bar, total=total, completed=total,
                                 **({"description": description} if description else {}))


class ObservedDevice:
    """The device backend with its time on the line counted and its evaluation shown."""

    def __init__(self, backend: DeviceBackend, bars: Bars, stream: Stream):
        self.backend = backend
        self.name = backend.name
        self.bars = bars
        self.stream = stream
        self.learn_seconds = self.predict_seconds = 0.0
        self.learnt = self.predicted = 0
        self.eval_bar: Any = None

    def learn(self, X: np.ndarray, y: np.ndarray, task: int) -> None:
        started = time.perf_counter()
        self.backend.learn(X, y, task)
        self.learn_seconds += time.perf_counter() - started
        self.learnt += len(y)

    def predict(self, X: np.ndarray, task: int | None) -> np.ndarray:
        started = time.perf_counter()
        out = self.backend.predict(X, task)
        self.predict_seconds += time.perf_counter() - started
        self.predicted += len(X)
        self.bars.advance(self.eval_bar, len(X))
        return out

    def consolidate(self) -> None:
        self.backend.consolidate()

    def state_bytes(self) -> bytes:
        return self.backend.state_bytes()

    def replay_bytes(self) -> int:
        return self.backend.replay_bytes()


def first_difference(model: FixedLPN, ours: bytes, theirs: bytes) -> str:
    """Where two states of `model`'s layout first differ, in the layout's field names."""
    if len(ours) != len(theirs):
        return f"the states have {len(ours)} and {len(theirs)} bytes"
    offset = 0
    for f in layout.state_fields(model.config, model.topology, "fixed"):
        a, b = ours[offset:offset + f.nbytes], theirs[offset:offset + f.nbytes]
        if a != b:
            at = next(i for i in range(len(a)) if a[i] != b[i])
            return f"field {f.name} (byte {offset + at} of the state, element {at // np.dtype(f.dtype).itemsize})"
        offset += f.nbytes
    return "no field (identical)"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_demo(settings: DemoSettings, progress: Any = None, say: Callable[[str], None] = lambda s: None,
             ) -> dict[str, Any]:
    """Run every step; return what the report needs (see `report.build_report`)."""
    from ..emulator import Emulator, qemu_machine_for_env

    bars = Bars(progress)
    steps = Step()
    out = Path(settings.out)
    started = time.perf_counter()

    # Everything a user can get wrong is checked before anything is written.
    bar = bars.add("splitting scikit-learn's digits into 5 tasks", None)
    with steps.time("data"):
        stream = digits_stream(SCENARIO, seed=settings.seed, max_train=settings.max_train,
                               max_test=settings.max_test)
        cfg = configs.resolve(settings.config)
        check_config_fits(cfg, stream)
    bars.finish(bar)
    machine = qemu_machine_for_env(settings.env)  # an environment without an emulator fails here
    out.mkdir(parents=True, exist_ok=True)
    with steps.time("model"):
        # The untrained fixed-point model of the config, as `lpn build --model CONFIG`
        # and the `fixed` backend of `lpn continual` make it: the device learns from scratch.
        initial = FixedLPN.new(cfg)
        initial_path = out / INITIAL_MODEL
        modelfile.save(initial, initial_path)
        initial_hash = modelfile.model_hash(initial)

    bar = bars.add(f"building firmware ({settings.env}, PlatformIO)", None)
    with steps.time("build"):
        firmware = build_firmware.build(settings.env, initial_path, build_dir=out / BUILD_DIR)
    bars.finish(bar)
    if firmware.learner.model_hash != initial_hash:
        raise DemoError(f"the firmware's learner was generated from model {firmware.learner.model_hash[:16]}..., "
                        f"not from {initial_path} ({initial_hash[:16]}...)")

    n_train = EPOCHS * sum(len(t.y_train) for t in stream.tasks)
    bar = bars.add("host reference (Python fixed point)", n_train)
    reference_states: list[bytes] = []
    with steps.time("reference"):
        reference = LPNBackend(FixedLPN.new(cfg), "LPN fixed (host)", TARGETS)
        ref_result = run_method(reference, stream, EPOCHS, seed=settings.seed,
                                progress=lambda n: bars.advance(bar, n),
                                after_task=lambda i, b: reference_states.append(b.state_bytes()))

    bar = bars.add(f"booting QEMU {machine}, pushing the model", None)
    boot_started = time.perf_counter()
    with Emulator(firmware.program, machine=machine, timeout=EMULATOR_LIMIT) as emu:
        device = DeviceBackend(emu.url, FixedLPN.new(cfg), TARGETS, timeout=settings.device_timeout,
                               name="LPN on device")
        info = device.info
        steps.seconds["boot_and_push"] = time.perf_counter() - boot_started
        bars.finish(bar)
        try:
            device_result, checks, observed = _stream_to_device(device, stream, reference_states, bars,
                                                                 steps, settings.seed, say)
            final_state = checks[-1]["state"]
        finally:
            device.close()
        if emu.process is not None and emu.process.poll() is not None:
            raise DemoError(f"QEMU stopped during the demo:\n{emu.output}")

    pulled = FixedLPN(initial.config, initial.formats, initial.topology)
    pulled.load_state_bytes(final_state)
    modelfile.save(pulled, out / DEVICE_MODEL)

    baseline_results: list[MethodResult] = []
    if settings.baselines:
        budget = lpn_replay_bytes(cfg, initial.topology)
        plan = [("MLP fine-tune", lambda: bl.mlp(stream.classes, stream.task_classes, settings.seed))]
        if budget:
            max_abs = max(abs(v) for v in cfg.input.range)
            plan.append(("MLP + replay", lambda: bl.mlp_replay(stream.classes, stream.task_classes, settings.seed,
                                                               budget, stream.n_features, max_abs)))
        with steps.time("baselines"):
            for name, make in plan:
                bar = bars.add(f"baseline: {name} (scikit-learn, backprop)", n_train)
                backend = make()
                backend.name = name
                baseline_results.append(run_method(backend, stream, EPOCHS, seed=settings.seed, role="baseline",
                                                   progress=lambda n, bar=bar: bars.advance(bar, n)))

    steps.seconds["total"] = time.perf_counter() - started
    return {
        "settings": settings, "stream": stream, "epochs": EPOCHS, "targets": str(TARGETS), "config": cfg, "initial": initial, "pulled": pulled,
        "initial_hash": initial_hash, "firmware": firmware, "machine": machine, "info": info,
        "device": device_result, "reference": ref_result, "baselines": baseline_results,
        "checks": [{k: v for k, v in c.items() if k != "state"} for c in checks],
        "throughput": _throughput(observed, device_result, checks),
        "seconds": steps.seconds, "files": {"initial_model": INITIAL_MODEL, "device_model": DEVICE_MODEL,
                                            "firmware": str(firmware.program.relative_to(out.resolve()))
                                            if firmware.program.is_relative_to(out.resolve()) else str(firmware.program)},
    }


def _stream_to_device(device: DeviceBackend, stream: Stream, reference_states: list[bytes], bars: Bars,
                      steps: Step, seed: int, say: Callable[[str], None],
                      ) -> tuple[MethodResult, list[dict[str, Any]], ObservedDevice]:
    observed = ObservedDevice(device, bars, stream)
    checks: list[dict[str, Any]] = []
    def learning_bar(i: int) -> Any:
        task = stream.tasks[i]
        return bars.add(f"task {i} ({task.name}): learning on the device", EPOCHS * len(task.y_train))

    current = {"bar": learning_bar(0)}

    def advance(n: int) -> None:
        bars.advance(current["bar"], n)

    def after_task(i: int, backend: Any) -> None:
        pull_started = time.perf_counter()
        state = device.state_bytes()
        pull_seconds = time.perf_counter() - pull_started
        expected = reference_states[i]
        if state != expected:
            raise DemoError(f"after task {i} the device's state differs from the Python fixed-point model's: "
                            f"{first_difference(device.model, expected, state)}. The firmware and lpn.fixed "
                            f"no longer agree; run tests/test_device_e2e.py to narrow it down")
        checks.append({"after_task": i, "identical": True, "state_bytes": len(state), "sha256": sha256(state),
                       "pull_seconds": round(pull_seconds, 3), "state": state})
        say(f"after task {i}: device state ({len(state)} bytes) identical to the Python fixed-point model's")
        seen = sum(len(t.y_test) for t in stream.tasks[:i + 1])
        observed.eval_bar = bars.add(f"task {i}: testing on tasks 0-{i} through the device", seen)
        if i + 1 < len(stream.tasks):
            # Made now, so its clock starts when its task does (the tests run first).
            current["bar"] = learning_bar(i + 1)

    with steps.time("device"):
        result = run_method(observed, stream, EPOCHS, seed=seed, progress=advance, after_task=after_task)
    result.details["bit_exact"] = all(c["identical"] for c in checks) and len(checks) == len(stream.tasks)
    return result, checks, observed


def _throughput(observed: ObservedDevice, result: MethodResult, checks: list[dict[str, Any]]) -> dict[str, Any]:
    from ..commands.device import _wire_bytes  # bytes of one exchange on the line, from the protocol table

    info = observed.backend.info
    dims = {"inputs": info.inputs, "outputs": info.outputs, "layers": info.layers}
    x, t = [0] * info.inputs, [0] * info.outputs
    learn_bytes = _wire_bytes("learn", {"task": 0, "x": x, "t": t}, {}, dims)
    predict_bytes = _wire_bytes("predict", {"task": 0, "x": x}, {"class": 0, "y": t}, dims)
    pull = sum(c["pull_seconds"] for c in checks)
    return {
        "learn_samples": observed.learnt, "learn_seconds": round(observed.learn_seconds, 3),
        "learn_samples_per_s": observed.learnt / max(observed.learn_seconds, 1e-9),
        "learn_line_bytes_per_s": observed.learnt * learn_bytes / max(observed.learn_seconds, 1e-9),
        "predict_samples": observed.predicted, "predict_seconds": round(observed.predict_seconds, 3),
        "predict_samples_per_s": observed.predicted / max(observed.predict_seconds, 1e-9),
        "state_pulls": len(checks), "state_pull_seconds": round(pull, 3),
        "state_pull_bytes_per_s": sum(c["state_bytes"] for c in checks) / max(pull, 1e-9),
        "learn_frame_bytes": learn_bytes, "predict_frame_bytes": predict_bytes,
    }
