"""Everything the C templates need to know about one fixed-point model, as plain data.

The templates contain no arithmetic decisions of their own: shifts, limits, table
contents and the byte layout of the state are worked out here, from the model's
config, topology, formats and `lpn.layout.state_fields` (the one definition of
the state layout), so a change there reaches the C without touching a template.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lpn import layout
from lpn.fixedpoint import recip_table
from lpn.topology import UNLIMITED

C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while _Bool _Complex _Imaginary""".split())

# numpy dtype of a layout field -> (C type, serialisation suffix, bytes)
C_TYPES = {
    "u1": ("uint8_t", "u8", 1),
    "<u2": ("uint16_t", "u16", 2),
    "<i2": ("int16_t", "i16", 2),
    "<u4": ("uint32_t", "u32", 4),
    "<i4": ("int32_t", "i32", 4),
}


class CodegenError(ValueError):
    """The model cannot be turned into C (wrong kind, a size the layout cannot hold, a bad prefix)."""


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise CodegenError(f"prefix {prefix!r} is not a C identifier (letters, digits, '_')")
    if prefix in C_KEYWORDS or keyword.iskeyword(prefix) or prefix.lower().startswith("lpn_"):
        raise CodegenError(f"prefix {prefix!r} is reserved (a C keyword or the core's 'lpn_' namespace)")
    if len(prefix) > 40:
        raise CodegenError(f"prefix {prefix!r} is longer than 40 characters")
    return prefix


@dataclass
class StateField:
    """One field of layout.state_fields as the C sees it."""
    name: str            # layout name, "L1.w"
    ident: str           # C member or table suffix, "L1_w"
    ctype: str
    suffix: str          # lpn_put_<suffix> / lpn_get_<suffix>
    size: int            # bytes per element
    count: int           # elements
    offset: int          # byte offset in the exported state
    const: bool          # lives in flash (fixed for the model's life), not in the state struct
    init: list[int]      # initial value(s), flattened
    scalar: bool         # shape () in the layout: a plain member, not an array
    layer: int = 0       # 1-based layer of an "L<l>." field, else 0
    short: str = ""      # "w", "src", ... for layer fields
    row: int = 0         # per-slot fields: the fan-in (elements per unit), else 0

    @property
    def is_signed(self) -> bool:
        return self.ctype.startswith("int")

    @property
    def packed_bits(self) -> int:
        """Bits per value that hold every initial value (two's complement if signed)."""
        lo, hi = min(self.init), max(self.init)
        bits = 1
        if self.is_signed:
            while not -(1 << (bits - 1)) <= lo <= hi <= (1 << (bits - 1)) - 1:
                bits += 1
        else:
            while hi >= 1 << bits:
                bits += 1
        return bits

    @property
    def packed(self) -> list[int]:
        """The initial values bit-packed, least significant bit first, as bytes."""
        bits = self.packed_bits
        acc = 0
        for i, v in enumerate(self.init):
            acc |= (v & ((1 << bits) - 1)) << (i * bits)
        n_bytes = (len(self.init) * bits + 7) // 8
        return list(acc.to_bytes(n_bytes, "little"))

    @property
    def all_zero(self) -> bool:
        return not any(self.init)

    @property
    def uniform(self) -> bool:
        return len(set(self.init)) <= 1

    @property
    def rows_equal(self) -> bool:
        """A per-slot field whose initial values repeat unit after unit (kept as one row)."""
        k = self.row
        return k > 0 and self.count > k and all(self.init[i] == self.init[i % k] for i in range(self.count))

    @property
    def image(self) -> "StateField":
        """The values the initial-state table holds: one row if rows_equal, else all."""
        if not self.rows_equal:
            return self
        return StateField(name=self.name, ident=self.ident, ctype=self.ctype, suffix=self.suffix,
                          size=self.size, count=self.row, offset=self.offset, const=self.const,
                          scalar=False, init=self.init[:self.row], layer=self.layer, short=self.short)


@dataclass
class LayerView:
    index: int               # 1..L
    units: int
    fan_in: int
    below: int               # units of layer index-1
    activation: str
    hidden: bool
    fa: int
    fa_below: int
    fw: int
    shift_forward: int       # fw + fa_below - fa
    shift_feedback: int      # fw[l+1] + fa[l+1] - fa[l]   (hidden feedback layers)
    shift_hebb: int          # 16 + fe + fx - fw
    shift_deposit_s: int     # 16 + fe + fx - fs
    shift_bias: int          # 16 + fe - fw
    one: int                 # 2^fa (hardtanh)
    bias_scale: int          # 2^fa_below
    wmin: int
    budget_min: int
    budget_max: int
    budget_down: int
    budget_up: int
    count: list[int]
    src: list[int]           # flattened, initial (or fixed) connectivity
    src_ctype: str
    src_mode: str            # "state" (structural: in RAM), "table" (flash), "row" (every unit reads src_row)
    src_row: list[int]
    uniform_count: int | None  # every unit uses this many slots, or None
    tag_min: int
    regrow_r2: int | None    # None = no distance limit
    synapses: int
    prunable: bool           # structural plasticity can prune here (WMIN > 0 and GMIN > 0)

    @property
    def groups(self) -> list[tuple[int, int]]:
        """Runs [first, end) of consecutive units that read the same sources with the
        same count: the forward pass gathers their inputs once. Empty when the
        connectivity is mutable (structural plasticity) or when runs are too short
        for a shared gather to pay (fewer than two units on average)."""
        if self.src_mode == "state":
            return []
        if self.src_mode == "row" and len(set(self.count)) == 1:
            return [(0, self.units)]
        runs: list[tuple[int, int]] = []
        first = 0
        for j in range(1, self.units + 1):
            if j == self.units or self.count[j] != self.count[first] or self._row(j) != self._row(first):
                runs.append((first, j))
                first = j
        return runs if 2 * len(runs) <= self.units else []

    @property
    def group_size(self) -> int | None:
        """The one run length when every run has it (no table of runs needed)."""
        sizes = {end - first for first, end in self.groups}
        return sizes.pop() if len(sizes) == 1 else None

    def _row(self, j: int) -> list[int]:
        return self.src[j * self.fan_in:j * self.fan_in + self.count[j]]

    @property
    def forward_bound(self) -> int:
        """A bound on |acc| of the forward pass: fan-in products of two int16
        values and the bias scaled to the product's format."""
        return self.fan_in * (1 << 30) + (1 << 15) * self.bias_scale

    @property
    def narrow_forward(self) -> bool:
        """The forward pass's rounded sum fits int32 (|acc| < 2^(30 + shift)), so it
        saturates on 32 bits (lpn_rshr_s16)."""
        return self.forward_bound < 1 << (30 + self.shift_forward)

    @property
    def streams_below(self) -> bool:
        """Every unit reads every slot from the unit of the same index below: the
        forward pass needs no gather."""
        return self.src_identity and self.uniform_count == self.fan_in

    @property
    def src_identity(self) -> bool:
        """Every unit reads slot k from unit k below (a full layer in order): no table needed."""
        return self.src_mode == "row" and self.src_row == list(range(len(self.src_row)))


@dataclass
class ModelView:
    prefix: str
    guard: str
    version: str
    model_hash: str
    name: str
    n_layers: int
    sizes: list[int]
    dims: int
    n_tasks: int
    layers: list[LayerView]
    fields: list[StateField]
    state_bytes: int
    consts: dict[str, int]
    fs: int
    fg: int
    fc: int
    hidden_error: str
    learning: Any
    budget: Any
    consolidation: Any
    replay: Any
    structural: Any
    contrastive: Any
    masks: list[list[int]] | None      # None: every task uses every output
    recip: list[int]
    positions: dict[int, list[int]] = field(default_factory=dict)  # network layer -> flat int32
    tags: dict[int, list[int]] = field(default_factory=dict)       # network layer -> uint16
    synapses: int = 0
    slots: int = 0

    @property
    def position_ctype(self) -> str:
        """int16_t when every position fits it (halves the tables), else int32_t."""
        values = [v for table in self.positions.values() for v in table]
        return "int16_t" if all(-32768 <= v <= 32767 for v in values) else "int32_t"

    @property
    def trail_u32(self) -> bool:
        """Whether the score's trail factor, 65536 + mulq(GS, s, fs) + mulq(GG, g, fg) for
        any trails s, g <= 255, and each product on the way fit 32 bits: then the C
        computes it in 32-bit arithmetic, giving the same values with cheaper code."""
        def rshr_u(v: int, n: int) -> int:
            return v if n == 0 else (v + (1 << (n - 1))) >> n
        gs, gg = self.consts["GS"] * 255, self.consts["GG"] * 255
        products_fit = max(gs + (1 << max(self.fs - 1, 0)), gg + (1 << max(self.fg - 1, 0))) < 1 << 32
        return products_fit and 65536 + rshr_u(gs, self.fs) + rshr_u(gg, self.fg) < 1 << 32

    @property
    def contrastive_on(self) -> bool:
        return self.hidden_error == "contrastive" and self.n_layers > 1

    @property
    def feedback_on(self) -> bool:
        return self.hidden_error == "feedback" and self.n_layers > 1

    @property
    def max_hidden(self) -> int:
        return max([lv.units for lv in self.layers if lv.hidden] or [1])

    @property
    def max_units(self) -> int:
        return max(lv.units for lv in self.layers)

    @property
    def max_structural_below(self) -> int:
        return max([lv.below for lv in self.layers] or [1])

    def field(self, name: str) -> StateField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def struct_fields(self) -> list[StateField]:
        """Fields held in RAM, widest first so the struct needs no padding."""
        mutable = [f for f in self.fields if not f.const]
        return sorted(mutable, key=lambda f: -f.size)


def _ident(name: str) -> str:
    return name.replace(".", "_")


def _max_dist2(pos_a: np.ndarray, pos_b: np.ndarray) -> int:
    lo = np.minimum(pos_a.min(axis=0), pos_b.min(axis=0)).astype(np.int64)
    hi = np.maximum(pos_a.max(axis=0), pos_b.max(axis=0)).astype(np.int64)
    return int(((hi - lo) ** 2).sum())


def _version() -> str:
    from . import __version__
    return __version__


def build_view(model: Any, prefix: str | None = None) -> ModelView:
    """The template context of a FixedLPN."""
    from lpn.modelfile import model_hash

    if getattr(model, "kind", None) != "fixed":
        kind = getattr(model, "kind", type(model).__name__)
        raise CodegenError(f"code generation needs a fixed-point model, got a {kind} model "
                           "(convert it first: lpn convert)")
    cfg, topo, fmt = model.config, model.topology, model.formats
    prefix = check_prefix(prefix if prefix is not None else cfg.name)
    n = len(cfg.layers)
    sizes = cfg.sizes
    structural = cfg.structural.enabled

    layers: list[LayerView] = []
    for li, (lc, lt) in enumerate(zip(cfg.layers, topo.layers), start=1):
        fa, fx, fw = fmt.fa[li], fmt.fa[li - 1], fmt.fw[li - 1]
        for what in ("budget_initial", "budget_min", "budget_max", "budget_step_down", "budget_step_up"):
            if getattr(lt, what) > 0xFFFF:
                raise CodegenError(f"layer {li}: {what} = {getattr(lt, what)} does not fit the "
                                   "state's u16 budget field")
        counts = [int(c) for c in lt.count]
        src = np.asarray(lt.src)
        if structural:
            src_mode = "state"
        elif (src == src[0]).all():
            src_mode = "row"  # e.g. an output layer that reads every unit below, in order
        else:
            src_mode = "table"
        r2: int | None = None
        if structural and lt.regrow_radius_sq != UNLIMITED:
            # A radius that every pair satisfies is no limit; it also keeps R2 within int64.
            if lt.regrow_radius_sq < _max_dist2(topo.positions[li - 1], topo.positions[li]):
                r2 = int(lt.regrow_radius_sq)
        layers.append(LayerView(
            index=li, units=lt.units, fan_in=lt.fan_in, below=sizes[li - 1],
            activation=lc.activation, hidden=li < n, fa=fa, fa_below=fx, fw=fw,
            shift_forward=fw + fx - fa,
            shift_feedback=(fmt.fw[li] + fmt.fa[li + 1] - fa) if li < n else 0,
            shift_hebb=16 + fa + fx - fw, shift_deposit_s=16 + fa + fx - fmt.fs,
            shift_bias=16 + fa - fw, one=1 << fa, bias_scale=1 << fx,
            wmin=int(fmt.WMIN[li - 1]),
            budget_min=lt.budget_min, budget_max=lt.budget_max,
            budget_down=lt.budget_step_down, budget_up=lt.budget_step_up,
            count=counts, src=[int(v) for v in np.ravel(lt.src)], src_mode=src_mode,
            src_row=[int(v) for v in src[0]],
            src_ctype="uint8_t" if layout.src_dtype(sizes[li - 1]) == "u1" else "uint16_t",
            uniform_count=counts[0] if len(set(counts)) == 1 else None,
            tag_min=lt.tag_min, regrow_r2=r2, synapses=lt.synapses,
            prunable=structural and fmt.WMIN[li - 1] > 0 and fmt.consts["GMIN"] > 0))

    # The state fields, in layout order, with their offsets and initial values.
    fields: list[StateField] = []
    offset = 0
    for f in model.fields:
        if f.dtype not in C_TYPES:
            raise CodegenError(f"state field {f.name}: dtype {f.dtype} has no C type here")
        ctype, suffix, size = C_TYPES[f.dtype]
        layer, short = 0, ""
        if re.fullmatch(r"L\d+\..+", f.name):
            layer, short = int(f.name[1:].split(".")[0]), f.name.split(".", 1)[1]
        const = short == "count" or (short == "src" and not structural)
        values = np.ravel(np.asarray(model.state[f.name])).astype(np.int64)
        per_slot = layer and len(f.shape) == 2 and f.shape == (topo.layers[layer - 1].units,
                                                               topo.layers[layer - 1].fan_in)
        fields.append(StateField(name=f.name, ident=_ident(f.name), ctype=ctype, suffix=suffix,
                                 size=size, count=f.count, offset=offset, const=const, scalar=f.shape == (),
                                 init=[int(v) for v in values], layer=layer, short=short,
                                 row=f.shape[1] if per_slot else 0))
        offset += f.nbytes
    state_bytes = offset
    if state_bytes != layout.state_nbytes(model.fields):
        raise CodegenError("internal: field sizes do not add up to the layout's state size")

    masks = None
    if cfg.tasks.masks:
        masks = [[1 if m else 0 for m in cfg.task_mask(t)] for t in range(cfg.tasks.count)]

    positions: dict[int, list[int]] = {}
    tags: dict[int, list[int]] = {}
    if structural:
        for lv in [lv for lv in layers if lv.prunable]:
            if lv.regrow_r2 is not None:
                for net_layer in (lv.index - 1, lv.index):
                    positions[net_layer] = [int(v) for v in np.ravel(topo.positions[net_layer])]
            if lv.tag_min > 0:
                for net_layer in (lv.index - 1, lv.index):
                    tags[net_layer] = [int(v) for v in topo.tags[net_layer]]

    return ModelView(
        prefix=prefix, guard=f"{prefix.upper()}_LEARNER_H", version=_version(),
        model_hash=model_hash(model), name=cfg.name, n_layers=n, sizes=list(sizes),
        dims=len(cfg.input.shape), n_tasks=cfg.tasks.count, layers=layers, fields=fields,
        state_bytes=state_bytes, consts=dict(fmt.consts), fs=fmt.fs, fg=fmt.fg, fc=fmt.fc,
        hidden_error=cfg.hidden_error, learning=cfg.learning, budget=cfg.budget,
        consolidation=cfg.consolidation, replay=cfg.replay, structural=cfg.structural,
        contrastive=cfg.contrastive, masks=masks,
        recip=[int(v) for v in recip_table(fmt.fc)] if cfg.consolidation.enabled else [],
        positions=positions, tags=tags, synapses=topo.synapses,
        slots=sum(lt.slots for lt in topo.layers))
