"""A learning device (a board, or the firmware in an emulator) as a continual-learning backend.

    lpn continual --backend device:socket://127.0.0.1:PORT     # `lpn emulate` prints the URL
    lpn continual --backend device:/dev/ttyACM0

The device learns and predicts through the serial protocol (`lpn.device.Device`);
the host only quantises the samples and codes the targets. On creation the backend
pushes the untrained fixed-point model of the run's config, the one the `fixed`
backend starts from, so both learn from the same state and, by the determinism
contract, must end with the same bytes and the same accuracy matrix. A device whose
firmware was generated from another config or other number formats is refused
before anything is pushed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..fixed import FixedLPN
from ..fixedpoint import quantise
from .backends import BackendSpec, lpn_replay_bytes
from .targets import TargetCoding, code_targets

# Seconds one exchange may take. A `learn` that also replays, or a commit of a whole
# state, takes the emulated device well under a second.
DEVICE_TIMEOUT = 10.0


class DeviceBackendError(ValueError):
    """The device cannot run this backend's model; the message says what to do."""


class DeviceBackend:
    """LPN learning on a device, behind the `Backend` interface.

    `model` is the host's copy of the model the device starts from: it supplies the
    number formats (quantisation of inputs and targets) and is pushed to the
    device. It is never trained here; `state_bytes` reads the device.
    """

    uses_task_id = True

    def __init__(self, url: str, model: FixedLPN, targets: TargetCoding | None = None,
                 timeout: float = DEVICE_TIMEOUT, device: Any = None, name: str = "LPN device"):
        from ..device import Device

        self.model = model
        self.name = name
        self.targets = targets or TargetCoding()
        self.outputs = model.config.sizes[-1]
        self.dev = device if device is not None else Device(url, timeout=timeout)
        try:
            self.info = self.dev.info()
            self._check_fits()
            self.dev.put_state(model.state_bytes())
        except BaseException:
            self.close()
            raise
        self.requests = 0  # learn and predict exchanges, for throughput figures

    def _check_fits(self) -> None:
        from ..commands.device import same_model_family, size_mismatches
        from ..build_firmware import known_models

        mismatches = size_mismatches(self.info, self.model)
        if mismatches:
            raise DeviceBackendError(
                f"config {self.model.config.name!r} does not fit the device's learner: {', '.join(mismatches)}; "
                f"build its firmware: `lpn build --model {self.model.config.name}`")
        if not same_model_family(self.dev, self.info, self.model, known_models()):
            raise DeviceBackendError(
                f"the device's firmware was generated from another config or other number formats than "
                f"{self.model.config.name!r} (device model sha256 {self.info.model_hash[:16]}...); "
                f"build its firmware: `lpn build --model {self.model.config.name}`")

    # ------------------------------------------------------------ Backend
    def learn(self, X: np.ndarray, y: np.ndarray, task: int) -> None:
        m = self.model
        labels = [int(v) for v in y]
        bad = [v for v in labels if not 0 <= v < self.outputs]
        if bad:
            raise ValueError(f"label {bad[0]} is not an output of the model (0..{self.outputs - 1})")
        x_q = m.quantise_input(np.asarray(X, dtype=np.float64))
        if self.targets.needs_outputs:
            fa = m.formats.fa[-1]
            one, cap = 1 << fa, int(quantise(self.targets.cap, fa))
            for x, label in zip(x_q, labels):
                _, outputs = self.dev.predict(x, task=None)
                self.dev.learn(x, code_targets(outputs.astype(np.int64), label, one, cap), task=task)
                self.requests += 2
            return
        t_q = m.quantise_target(np.eye(self.outputs)[labels])
        for x, t in zip(x_q, t_q):
            self.dev.learn(x, t, task=task)
            self.requests += 1

    def predict(self, X: np.ndarray, task: int | None) -> np.ndarray:
        x_q = self.model.quantise_input(np.asarray(X, dtype=np.float64))
        out = np.empty(len(x_q), dtype=np.int64)
        for i, x in enumerate(x_q):
            out[i], _ = self.dev.predict(x, task=task)
        self.requests += len(x_q)
        return out

    def consolidate(self) -> None:
        # As LPNBackend: a config that consolidates on a task switch does it on the
        # device when the next task's first sample arrives.
        con = self.model.config.consolidation
        if con.enabled and not con.on_task_switch:
            self.dev.consolidate()

    def state_bytes(self) -> bytes:
        return self.dev.get_state()

    def replay_bytes(self) -> int:
        return lpn_replay_bytes(self.model.config, self.model.topology)

    def close(self) -> None:
        self.dev.close()


def device_backend(spec: BackendSpec) -> DeviceBackend:
    """The `device` backend's factory: `--backend device:URL`."""
    if not spec.arg:
        raise DeviceBackendError("the device backend needs the device's URL: --backend device:socket://HOST:PORT "
                                 "(printed by `lpn emulate`) or device:/dev/ttyACM0")
    timeout = float(spec.options.get("device_timeout", DEVICE_TIMEOUT))
    return DeviceBackend(spec.arg, FixedLPN(spec.config), spec.targets, timeout=timeout)
