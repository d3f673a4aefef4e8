"""The learner interface of the continual protocol, and its registry.

A backend is anything with the five methods of `Backend`. The protocol calls them
in this order: `learn` on chunks of a task's training samples (all with that
task's id), `consolidate` once at the end of each task, then `predict` on the test
set of every task seen so far. `state_bytes` and `replay_bytes` are read at the end.

Backends are made by factories registered under a name:

    register_backend("c", make_c_backend, "the generated C through the cffi harness")

A factory receives a `BackendSpec` (the config, the stream's classes, the seed and
the text after the colon in `--backend NAME:ARG`, e.g. a device URL) and returns a
fresh, untrained backend. A backend that lives in a module with heavy or optional
dependencies is listed in `LAZY_BACKENDS` instead, so that module is imported
only when that backend is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from .. import layout
from ..config import LPNConfig
from ..fixedpoint import quantise
from .data import Stream
from .targets import TargetCoding, code_targets


@runtime_checkable
class Backend(Protocol):
    name: str

    def learn(self, X: np.ndarray, y: np.ndarray, task: int) -> None:
        """Learn the labelled samples once, in order; every sample belongs to `task`."""

    def predict(self, X: np.ndarray, task: int | None) -> np.ndarray:
        """Class labels. With a task id, the choice is among that task's classes; with
        None (class- and domain-incremental), among every output. Changes no state."""

    def consolidate(self) -> None:
        """A task has just ended. A learner that consolidates by itself may ignore this."""

    def state_bytes(self) -> bytes:
        """The learner's whole state (for an LPN, the model-file layout: backends that
        must agree bit for bit are compared on these bytes)."""

    def replay_bytes(self) -> int:
        """Bytes of past samples the learner keeps for replay (0 if none)."""


@dataclass
class BackendSpec:
    config: LPNConfig
    classes: list[int]                 # every label of the stream
    task_classes: list[list[int]]      # labels of each task, in stream order
    seed: int = 0
    arg: str = ""                      # text after "NAME:" in --backend, e.g. a device URL
    targets: TargetCoding = field(default_factory=TargetCoding)
    options: dict[str, Any] = field(default_factory=dict)


Factory = Callable[[BackendSpec], Backend]

_REGISTRY: dict[str, tuple[Factory, str]] = {}
# name -> "module:factory", imported on first use. Backends that need tools the
# host may lack (a C compiler, an emulator, a serial port) belong here.
LAZY_BACKENDS: dict[str, str] = {
    "c": "lpn.continual.c_backend:c_backend",
    "device": "lpn.continual.device_backend:device_backend",
}


def register_backend(name: str, factory: Factory, help: str = "") -> None:
    """Make `--backend name` build learners with `factory(spec)`."""
    if not name.isidentifier():
        raise ValueError(f"backend name must be an identifier, got {name!r}")
    _REGISTRY[name] = (factory, help)


def backend_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(LAZY_BACKENDS))


def backend_help(name: str) -> str:
    return _REGISTRY[name][1] if name in _REGISTRY else f"defined in {LAZY_BACKENDS[name].split(':')[0]}"


def parse_backend(text: str) -> tuple[str, str]:
    """'device:socket://host:1234' -> ('device', 'socket://host:1234')."""
    name, _, arg = text.partition(":")
    if name not in _REGISTRY and name not in LAZY_BACKENDS:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")
    return name, arg


def make_backend(text: str, spec: BackendSpec) -> Backend:
    name, arg = parse_backend(text)
    if name not in _REGISTRY:
        module, attr = LAZY_BACKENDS[name].split(":")
        register_backend(name, getattr(import_module(module), attr))
    spec.arg = arg
    backend = _REGISTRY[name][0](spec)
    if not isinstance(backend, Backend):
        raise TypeError(f"backend {name!r}: its factory returned {type(backend).__name__}, "
                        "which lacks some Backend method")
    return backend


# ---------------------------------------------------------------------------
def check_config_fits(config: LPNConfig, stream: Stream) -> None:
    """Reject a config that cannot learn the stream, before anything is learnt."""
    if config.sizes[0] != stream.n_features:
        raise ValueError(f"config {config.name!r}: its input has {config.sizes[0]} units, "
                         f"the data has {stream.n_features} features")
    outputs = config.outputs
    if len(stream.tasks) > config.tasks.count:
        raise ValueError(f"config {config.name!r}: tasks.count is {config.tasks.count}, "
                         f"the stream has {len(stream.tasks)} tasks")
    files = stream.details.get("files")
    for t, task in enumerate(stream.tasks):
        what = f"{files[t]} (task {t})" if files else f"task {t} ({task.name})"
        too_big = [c for c in task.classes if c >= outputs or c < 0]
        if too_big:
            raise ValueError(f"{what}: label {too_big[0]} is not one of config {config.name!r}'s "
                             f"outputs (0..{outputs - 1})")
        mask = [o for o, on in enumerate(config.task_mask(t)) if on]
        outside = sorted(set(task.classes) - set(mask))
        if outside:
            raise ValueError(f"{what}: labels {outside} are outside the outputs config "
                             f"{config.name!r} lets task {t} learn, {mask}")


def lpn_replay_bytes(config: LPNConfig, topology: Any) -> int:
    """The replay buffer's size in the fixed-point layout: what a device holds.

    The float model keeps the same samples in float64 for research; the budget it
    stands for is the device's.
    """
    fields = layout.state_fields(config, topology, "fixed")
    return sum(f.nbytes for f in fields if f.name.startswith("replay."))


class LPNBackend:
    """An LPN model (float or fixed) behind the Backend interface."""

    def __init__(self, model: Any, name: str, targets: TargetCoding | None = None):
        self.model = model
        self.name = name
        self.targets = targets or TargetCoding()
        self.classes = list(range(model.config.outputs))
        # Labels are output indices; declared now so predicting before any learning works.
        model.classes_ = np.asarray(self.classes)

    def learn(self, X: np.ndarray, y: np.ndarray, task: int) -> None:
        if not self.targets.needs_outputs:
            self.model.partial_fit(X, y, classes=self.classes, task=task)
            return
        m = self.model
        labels = [int(v) for v in y]
        bad = [v for v in labels if not 0 <= v < len(self.classes)]
        if bad:
            raise ValueError(f"label {bad[0]} is not an output of the model (0..{len(self.classes) - 1})")
        if m.kind == "fixed":
            fa = m.formats.fa[-1]
            one, cap = 1 << fa, int(quantise(self.targets.cap, fa))
            # _check_X + _encode_x: the quantisation every fixed-point learner shares
            # (the Python model and the C harness alike).
            for x, label in zip(m._encode_x(m._check_X(X)), labels):
                m.learn_q(x, code_targets(m.predict_q(x), label, one, cap), task)
        else:
            for x, label in zip(np.asarray(X, dtype=np.float64), labels):
                m.learn_vec(x, code_targets(m.predict_vec(x), label, 1.0, self.targets.cap), task)

    def predict(self, X: np.ndarray, task: int | None) -> np.ndarray:
        return self.model.predict(X, task=task)

    def consolidate(self) -> None:
        # A model with on_task_switch consolidates when the next task's first sample
        # arrives; doing it here too would consolidate twice.
        con = self.model.config.consolidation
        if con.enabled and not con.on_task_switch:
            self.model.consolidate()

    def state_bytes(self) -> bytes:
        return self.model.state_bytes()

    def replay_bytes(self) -> int:
        return lpn_replay_bytes(self.model.config, self.model.topology)


def _float(spec: BackendSpec) -> Backend:
    from ..float_model import FloatLPN
    return LPNBackend(FloatLPN(spec.config), "LPN float", spec.targets)


def _fixed(spec: BackendSpec) -> Backend:
    from ..fixed import FixedLPN
    return LPNBackend(FixedLPN(spec.config), "LPN fixed", spec.targets)


register_backend("float", _float, "the float reference model (host/lpn/float_model.py)")
register_backend("fixed", _fixed, "the fixed-point model, the bit-exactness definition (host/lpn/fixed.py)")
