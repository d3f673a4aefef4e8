"""The validated configuration of an LPN: topology, learning rule and mechanisms.

A config is plain data (it round-trips through a dict, TOML or JSON) and is the
only input, together with its seed, from which a model is built.  Every field is
checked on construction; a bad field raises :class:`ConfigError` naming the field
and why it is wrong, so a typo in a user's TOML file never becomes a silent default.
"""
from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ACTIVATIONS = ("identity", "relu", "hardtanh")
HIDDEN_ERRORS = ("feedback", "contrastive", "frozen")
POSITIONS = ("grid", "center")
MAX_FAN_IN = 255  # fan-in counts are stored as uint8
MAX_UNITS = 65535  # source indices are at most uint16
TAG_BITS = 16


class ConfigError(ValueError):
    """A config field is missing, of the wrong type or out of range."""


def _fail(path: str, why: str) -> None:
    raise ConfigError(f"{path}: {why}")


def _check_number(path: str, value: Any, lo: float | None = None, hi: float | None = None,
                  integer: bool = False, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, f"must be a number, got {value!r}")
    if integer and not isinstance(value, int):
        _fail(path, f"must be an integer, got {value!r}")
    if isinstance(value, float) and math.isnan(value):
        _fail(path, "must not be NaN")
    if lo is not None and (value <= lo if lo_open else value < lo):
        _fail(path, f"must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        _fail(path, f"must be <= {hi}, got {value!r}")


def _check_shape(path: str, shape: Any) -> None:
    if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 2):
        _fail(path, f"must be a list of 1 or 2 positive integers, got {shape!r}")
    for i, d in enumerate(shape):
        _check_number(f"{path}[{i}]", d, lo=1, integer=True)


def _check_tags(path: str, tags: Any) -> None:
    if isinstance(tags, str):
        if not tags.startswith("random:"):
            _fail(path, f"must be an integer, a list of integers or 'random:K', got {tags!r}")
        k = tags.split(":", 1)[1]
        if not k.isdigit() or not 1 <= int(k) <= TAG_BITS:
            _fail(path, f"'random:K' needs 1 <= K <= {TAG_BITS}, got {tags!r}")
        return
    items = tags if isinstance(tags, list) else [tags]
    if not items:
        _fail(path, "must not be empty")
    for i, t in enumerate(items):
        _check_number(f"{path}[{i}]" if isinstance(tags, list) else path, t, lo=0,
                      hi=(1 << TAG_BITS) - 1, integer=True)


@dataclass
class InputConfig:
    shape: list[int] = field(default_factory=lambda: [8, 8])
    tags: Any = 0xFFFF
    # Expected range of input values: the converter's fallback for the input format
    # when no calibration data is given.
    range: list[float] = field(default_factory=lambda: [0.0, 1.0])

    def validate(self, path: str) -> None:
        _check_shape(f"{path}.shape", self.shape)
        _check_tags(f"{path}.tags", self.tags)
        if not isinstance(self.range, (list, tuple)) or len(self.range) != 2:
            _fail(f"{path}.range", f"must be [low, high], got {self.range!r}")
        for i, v in enumerate(self.range):
            _check_number(f"{path}.range[{i}]", v)
        if not self.range[0] < self.range[1]:
            _fail(f"{path}.range", f"low must be below high, got {self.range!r}")

    @property
    def units(self) -> int:
        return math.prod(self.shape)


@dataclass
class LayerConfig:
    shape: list[int]
    channels: int = 1
    # Units of a 'grid' layer are spread evenly over the input's extent; 'center'
    # puts every unit at the middle of the input (a layer that reads globally).
    position: str = "grid"
    radius: float = math.inf
    tag_min: int = 0
    fan_in: int = 16
    activation: str = "identity"
    tags: Any = 0xFFFF
    # Weights start uniform in [-init, init]: small, so Hebbian growth dominates.
    init: float = 0.05

    def validate(self, path: str, input_dims: int) -> None:
        _check_shape(f"{path}.shape", self.shape)
        _check_number(f"{path}.channels", self.channels, lo=1, integer=True)
        if self.position not in POSITIONS:
            _fail(f"{path}.position", f"must be one of {POSITIONS}, got {self.position!r}")
        if self.position == "grid" and len(self.shape) != input_dims:
            _fail(f"{path}.shape", f"a 'grid' layer needs as many dimensions as the input "
                  f"({input_dims}), got {self.shape!r}; use position = 'center' otherwise")
        _check_number(f"{path}.radius", self.radius, lo=0)
        _check_number(f"{path}.tag_min", self.tag_min, lo=0, hi=TAG_BITS, integer=True)
        _check_number(f"{path}.fan_in", self.fan_in, lo=1, hi=MAX_FAN_IN, integer=True)
        if self.activation not in ACTIVATIONS:
            _fail(f"{path}.activation", f"must be one of {ACTIVATIONS}, got {self.activation!r}")
        _check_tags(f"{path}.tags", self.tags)
        _check_number(f"{path}.init", self.init, lo=0, hi=1)
        if self.units > MAX_UNITS:
            _fail(f"{path}", f"has {self.units} units, at most {MAX_UNITS} are supported")

    @property
    def units(self) -> int:
        return math.prod(self.shape) * self.channels


@dataclass
class LearningConfig:
    eta: float = 0.05            # learning rate of the Hebbian/delta update
    alpha_s: float = 0.5         # lr boost per unit of short-term trail  (spec: as)
    alpha_g: float = 0.5         # lr boost per unit of long-term trail   (spec: ag)
    gamma_s: float = 1.0         # score boost per unit of short-term trail (spec: gs)
    gamma_g: float = 1.0         # score boost per unit of long-term trail  (spec: gg)
    deposit_s: float = 0.5       # spec: ds
    deposit_g: float = 0.125     # spec: dg
    evap_s_shift: int = 2        # rho_s = 2^-evap_s_shift, every step
    evap_g_shift: int = 2        # rho_g = 2^-evap_g_shift, every evap_g_period steps
    evap_g_period: int = 16
    bias: bool = True            # biases learn with the delta rule

    def validate(self, path: str) -> None:
        for name in ("eta", "alpha_s", "alpha_g", "gamma_s", "gamma_g", "deposit_s", "deposit_g"):
            _check_number(f"{path}.{name}", getattr(self, name), lo=0, hi=1000)
        _check_number(f"{path}.evap_s_shift", self.evap_s_shift, lo=1, hi=7, integer=True)
        _check_number(f"{path}.evap_g_shift", self.evap_g_shift, lo=1, hi=7, integer=True)
        _check_number(f"{path}.evap_g_period", self.evap_g_period, lo=1, hi=65535, integer=True)
        if not isinstance(self.bias, bool):
            _fail(f"{path}.bias", f"must be true or false, got {self.bias!r}")


@dataclass
class BudgetConfig:
    # Fractions of each layer's synapse count; turned into counts (at least 1) when
    # the topology is built.
    initial: float = 0.25
    min: float = 0.05
    max: float = 1.0
    step_down: float = 0.01
    step_up: float = 0.05
    adapt: bool = True
    fast_shift: int = 2          # fast loss average: avg += (loss - avg) >> fast_shift
    slow_shift: int = 5
    boost_units: int = 2         # units (by short-term trail) boosted after a worsening

    def validate(self, path: str) -> None:
        for name in ("initial", "min", "max", "step_down", "step_up"):
            _check_number(f"{path}.{name}", getattr(self, name), lo=0, hi=1)
        if not self.min <= self.initial <= self.max:
            _fail(f"{path}.initial", f"must lie in [min, max] = [{self.min}, {self.max}], "
                  f"got {self.initial}")
        if self.max <= 0:
            _fail(f"{path}.max", "must be > 0")
        if not isinstance(self.adapt, bool):
            _fail(f"{path}.adapt", f"must be true or false, got {self.adapt!r}")
        _check_number(f"{path}.fast_shift", self.fast_shift, lo=0, hi=16, integer=True)
        _check_number(f"{path}.slow_shift", self.slow_shift, lo=0, hi=16, integer=True)
        if self.fast_shift > self.slow_shift:
            _fail(f"{path}.fast_shift", "must not exceed slow_shift (the fast average is fast)")
        _check_number(f"{path}.boost_units", self.boost_units, lo=0, hi=MAX_UNITS, integer=True)


@dataclass
class ConsolidationConfig:
    enabled: bool = False
    kappa: float = 1.0           # c += kappa * g
    lam: float = 0.01            # pull towards the anchor: - lam * c * (w - a)
    every: int = 0               # consolidate every N learning steps; 0 = never by itself
    on_task_switch: bool = True  # consolidate when learn is called with a new task id

    def validate(self, path: str) -> None:
        if not isinstance(self.enabled, bool):
            _fail(f"{path}.enabled", f"must be true or false, got {self.enabled!r}")
        _check_number(f"{path}.kappa", self.kappa, lo=0, hi=1000)
        _check_number(f"{path}.lam", self.lam, lo=0, hi=1)
        _check_number(f"{path}.every", self.every, lo=0, hi=2**31 - 1, integer=True)
        if not isinstance(self.on_task_switch, bool):
            _fail(f"{path}.on_task_switch", f"must be true or false, got {self.on_task_switch!r}")


@dataclass
class ReplayConfig:
    enabled: bool = False
    capacity: int = 32           # samples held in the buffer
    every: int = 4               # after every N new samples ...
    count: int = 1               # ... learn this many buffered samples again
    conflict_margin: float = 0.25  # conflict when fast loss > slow loss * (1 + margin)
    conflict_count: int = 2      # extra replays while in conflict

    def validate(self, path: str) -> None:
        if not isinstance(self.enabled, bool):
            _fail(f"{path}.enabled", f"must be true or false, got {self.enabled!r}")
        _check_number(f"{path}.capacity", self.capacity, lo=1, hi=65535, integer=True)
        _check_number(f"{path}.every", self.every, lo=1, hi=65535, integer=True)
        _check_number(f"{path}.count", self.count, lo=0, hi=255, integer=True)
        _check_number(f"{path}.conflict_margin", self.conflict_margin, lo=0, hi=1000)
        _check_number(f"{path}.conflict_count", self.conflict_count, lo=0, hi=255, integer=True)


@dataclass
class StructuralConfig:
    enabled: bool = False
    every: int = 50              # prune and regrow every N learning steps
    w_min: float = 0.02          # prune when |w| < w_min ...
    g_min: float = 0.05          # ... and the long-term trail g < g_min
    widen: float = 2.0           # regrowth radius = radius * widen

    def validate(self, path: str) -> None:
        if not isinstance(self.enabled, bool):
            _fail(f"{path}.enabled", f"must be true or false, got {self.enabled!r}")
        _check_number(f"{path}.every", self.every, lo=1, hi=2**31 - 1, integer=True)
        _check_number(f"{path}.w_min", self.w_min, lo=0, hi=100)
        _check_number(f"{path}.g_min", self.g_min, lo=0, hi=100)
        _check_number(f"{path}.widen", self.widen, lo=1)


@dataclass
class ContrastiveConfig:
    noise: float = 0.1           # the perturbed copy is x + uniform(-noise, noise)
    neg_shift: int = 1           # the anti-Hebbian error is scaled by 2^-neg_shift

    def validate(self, path: str) -> None:
        _check_number(f"{path}.noise", self.noise, lo=0, hi=100)
        _check_number(f"{path}.neg_shift", self.neg_shift, lo=0, hi=15, integer=True)


@dataclass
class TasksConfig:
    count: int = 1
    # masks[t] lists the output units task t predicts and learns; empty = all outputs.
    masks: list[list[int]] = field(default_factory=list)

    def validate(self, path: str, outputs: int) -> None:
        _check_number(f"{path}.count", self.count, lo=1, hi=255, integer=True)
        if not isinstance(self.masks, list):
            _fail(f"{path}.masks", "must be a list of lists of output indices")
        if self.masks and len(self.masks) != self.count:
            _fail(f"{path}.masks", f"has {len(self.masks)} masks for {self.count} tasks")
        for t, m in enumerate(self.masks):
            if not isinstance(m, list) or not m:
                _fail(f"{path}.masks[{t}]", "must be a non-empty list of output indices")
            for i, o in enumerate(m):
                _check_number(f"{path}.masks[{t}][{i}]", o, lo=0, hi=outputs - 1, integer=True)


@dataclass
class FixedConfig:
    """Integer formats the converter does not derive from data."""
    trail_s_frac: int = 6        # short-term trail: uint8 with this many fraction bits
    trail_g_frac: int = 6        # long-term trail: uint8
    consolidation_frac: int = 4  # consolidation strength c: uint8

    def validate(self, path: str) -> None:
        for name in ("trail_s_frac", "trail_g_frac", "consolidation_frac"):
            _check_number(f"{path}.{name}", getattr(self, name), lo=0, hi=8, integer=True)


@dataclass
class LPNConfig:
    name: str = "model"
    seed: int = 1
    hidden_error: str = "feedback"
    input: InputConfig = field(default_factory=InputConfig)
    layers: list[LayerConfig] = field(default_factory=list)
    learning: LearningConfig = field(default_factory=LearningConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    consolidation: ConsolidationConfig = field(default_factory=ConsolidationConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    structural: StructuralConfig = field(default_factory=StructuralConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    fixed: FixedConfig = field(default_factory=FixedConfig)

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -------------------------------------------------------------
    def validate(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            _fail("name", f"must be an identifier (it names generated C symbols), got {self.name!r}")
        _check_number("seed", self.seed, lo=1, hi=2**32 - 1, integer=True)
        if self.hidden_error not in HIDDEN_ERRORS:
            _fail("hidden_error", f"must be one of {HIDDEN_ERRORS}, got {self.hidden_error!r}")
        self.input.validate("input")
        if not self.layers:
            _fail("layers", "needs at least one layer (the output layer)")
        for i, layer in enumerate(self.layers):
            layer.validate(f"layers[{i}]", len(self.input.shape))
        self.learning.validate("learning")
        self.budget.validate("budget")
        self.consolidation.validate("consolidation")
        self.replay.validate("replay")
        self.structural.validate("structural")
        self.contrastive.validate("contrastive")
        self.tasks.validate("tasks", self.layers[-1].units)
        self.fixed.validate("fixed")

    # -- derived facts ----------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """Units per layer, the input first."""
        return [self.input.units] + [layer.units for layer in self.layers]

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    def task_mask(self, task: int) -> list[bool]:
        """Which outputs task `task` predicts and learns."""
        if not self.tasks.masks:
            return [True] * self.outputs
        chosen = set(self.tasks.masks[task])
        return [o in chosen for o in range(self.outputs)]

    # -- (de)serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        # allow_nan: an unlimited radius is written as Infinity, which json reads back.
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LPNConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"config: must be a table/object, got {type(data).__name__}")
        data = copy.deepcopy(data)
        sections = {
            "input": InputConfig, "learning": LearningConfig, "budget": BudgetConfig,
            "consolidation": ConsolidationConfig, "replay": ReplayConfig,
            "structural": StructuralConfig, "contrastive": ContrastiveConfig,
            "tasks": TasksConfig, "fixed": FixedConfig,
        }
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{sorted(unknown)[0]}: unknown field (known: {sorted(known)})")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _build(sections[key], value, key)
            elif key == "layers":
                if not isinstance(value, list):
                    raise ConfigError("layers: must be a list of layer tables")
                kwargs[key] = [_build(LayerConfig, v, f"layers[{i}]") for i, v in enumerate(value)]
            else:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "LPNConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> "LPNConfig":
        """Read a user's config from a .toml or .json file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                data = tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "LPNConfig":
        """A copy with dotted fields changed: cfg.replace(**{'replay.enabled': True})."""
        data = self.to_dict()
        for dotted, value in changes.items():
            target = data
            parts = dotted.split(".")
            for p in parts[:-1]:
                target = target[int(p)] if isinstance(target, list) else target[p]
            target[parts[-1]] = value
        return LPNConfig.from_dict(data)


def _build(kind: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: must be a table/object, got {value!r}")
    known = {f.name for f in fields(kind)}
    for key in value:
        if key not in known:
            raise ConfigError(f"{path}.{key}: unknown field (known: {sorted(known)})")
    if kind is LayerConfig and "shape" not in value:
        raise ConfigError(f"{path}.shape: required")
    return kind(**value)
