"""What the MicroPython templates need to know about one fixed-point model.

Every number the generated code uses is worked out here, in exact Python
integers, from the model's config, topology, formats and `lpn.layout` (the one
definition of the state layout). The tables replace products whose operands are
a trail (0..255) and a constant, so neither variant multiplies two wide values
there. Where a table entry is capped, the cap cannot change the result:
`min(M, c + v)` with `v >= 0` is the same for `v` and `min(M, v)`.

The viper variant keeps every machine word within 32 bits. `viper_bounds` checks
the two bounds it relies on that the contract does not already give; a model
that breaks them can still use the portable variant.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from lpn import layout
from lpn.fixedpoint import mulq, recip_table, rshr
from lpn.topology import UNLIMITED

U32_MAX = 2**32 - 1

# numpy dtype of a layout field -> MicroPython array typecode (sizes hold on every
# 32-bit port and on the unix port: 'i'/'I' are 4 bytes, 'h'/'H' 2, 'B' 1).
TYPECODES = {"u1": "B", "<u2": "H", "<i2": "h", "<u4": "I", "<i4": "i"}
STRUCT_CODES = {"B": "B", "H": "H", "h": "h", "I": "I", "i": "i"}

# Largest pull table entry (mulq(LAM, c, fc), c <= 255) the viper variant accepts:
# with |w - a| < 2^16 the pull stays below 2^29 and w + hebb - pull below 2^31.
PULL_TABLE_MAX = 2**29 - 2**16
# Units of the layer above that may feed one unit's feedback sum: each adds at most
# 2^16 - 1 to a low 16-bit accumulator that must stay below 2^31.
FEEDBACK_FAN_OUT_MAX = 32767


# What each constant table holds, indexed by a trail value 0..255 (written above it).
TABLE_NOTES = {
    "T_S": "score factor, s part: min(2^32-1, 65536 + mulq(GS, s, fs))",
    "T_G": "score factor, g part: min(2^32-1, mulq(GG, g, fg))",
    "A_S": "learning-rate gain, s part: min(2^32-1, 65536 + mulq(AS, s, fs))",
    "A_G": "learning-rate gain, g part: min(2^32-1, mulq(AG, g, fg))",
    "DEP_G": "long-trail deposit: min(255, rshr(DG * s, 16 + fs - fg))",
    "RECIP": "RECIP[c] = 2^15 / (1 + c / 2^fc), rounded half up",
    "PULL": "pull factor: mulq(LAM, c, fc)",
    "KAPPA_G": "consolidation increment: min(255, rshr(KAPPA * g, 16 + fg - fc))",
}


class MicroPythonCodegenError(ValueError):
    """The model cannot be turned into a MicroPython module (wrong kind, bounds)."""


@dataclass
class FieldView:
    name: str          # layout name, "L1.w"
    attr: str          # attribute of the generated class holding its array
    typecode: str
    count: int
    nbytes: int


@dataclass
class LayerView:
    index: int
    units: int
    fan_in: int
    below: int
    activation: str
    hidden: bool
    learns_feedback: bool   # a hidden layer whose error is fed back from the layer above
    src_ptr: str            # "ptr8" or "ptr16"
    src_typecode: str
    fx: int                 # fa[l-1]
    fe: int                 # fa[l]
    fw: int
    sh_forward: int         # fw + fx - fe
    sh_feedback: int        # fw[l+1] + fa[l+1] - fa[l], for feedback into this layer
    sh_hebb: int            # 16 + fe + fx - fw
    sh_deposit: int         # 16 + fe + fx - fs
    sh_bias: int            # 16 + fe - fw
    one: int                # 2^fe, hardtanh's limit
    wmin: int
    budget_min: int
    budget_max: int
    budget_down: int
    budget_up: int
    tag_min: int
    regrow_r2: int          # -1: no distance limit
    count: list[int]
    src0: list[int]
    up_units: int = 0       # units of layer l+1 (feedback)
    up_fan_in: int = 0
    up_src_ptr: str = "ptr8"


@dataclass
class View:
    name: str
    module: str             # portable module name
    viper_module: str
    data_module: str
    state_file: str
    version: str
    model_hash: str
    n_layers: int
    sizes: list[int]
    dims: int
    n_tasks: int
    hidden_error: str
    layers: list[LayerView]
    fields: list[FieldView]
    state_nbytes: int
    state: bytes
    consts: dict[str, int]
    fs: int
    fg: int
    fc: int
    cfg: Any                # LPNConfig: the mechanisms' switches and periods
    masks: list[list[int]]  # per task: 1 where the output predicts and learns
    tables: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # name -> (typecode, values)
    positions: list[list[int]] = field(default_factory=list)  # per network layer, flat
    tags: list[list[int]] = field(default_factory=list)

    @property
    def contrastive(self) -> bool:
        return self.hidden_error == "contrastive" and self.n_layers > 1

    @property
    def feedback(self) -> bool:
        return self.hidden_error == "feedback" and self.n_layers > 1

    @property
    def consolidation(self) -> bool:
        return bool(self.cfg.consolidation.enabled)

    @property
    def replay(self) -> bool:
        return bool(self.cfg.replay.enabled)

    @property
    def structural(self) -> bool:
        return bool(self.cfg.structural.enabled)

    @property
    def bias(self) -> bool:
        return bool(self.cfg.learning.bias)

    def field_index(self, name: str) -> int:
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        raise KeyError(name)


def _attr(name: str) -> str:
    return "_" + name.replace(".", "_")


def _version() -> str:
    try:
        from lpncodegen import __version__
        return str(__version__)
    except Exception:  # the C generator's package failed to import: still name a version
        from importlib import metadata
        try:
            return metadata.version("lpn-edge")
        except metadata.PackageNotFoundError:
            return "0+unknown"


def pack_table(typecode: str, values: list[int]) -> bytes:
    return struct.pack("<%d%s" % (len(values), STRUCT_CODES[typecode]), *values)


def build_view(model: Any) -> View:
    """The template context of a FixedLPN."""
    from lpn.modelfile import model_hash

    if getattr(model, "kind", None) != "fixed":
        kind = getattr(model, "kind", type(model).__name__)
        raise MicroPythonCodegenError(
            f"MicroPython code generation needs a fixed-point model, got a {kind} model "
            "(convert it first: lpn convert)")
    cfg, topo, fmt = model.config, model.topology, model.formats
    n = len(cfg.layers)
    sizes = list(cfg.sizes)
    c = fmt.consts
    fs, fg, fc = fmt.fs, fmt.fg, fmt.fc
    fa, fw = fmt.fa, fmt.fw

    fields = []
    for f in model.fields:
        if f.dtype not in TYPECODES:
            raise MicroPythonCodegenError(f"state field {f.name}: dtype {f.dtype} has no array typecode")
        fields.append(FieldView(name=f.name, attr=_attr(f.name), typecode=TYPECODES[f.dtype],
                                count=f.count, nbytes=f.nbytes))

    layers = []
    for li, (lt, lc) in enumerate(zip(topo.layers, cfg.layers), start=1):
        hidden = li < n
        fx, fe, w = fa[li - 1], fa[li], fw[li - 1]
        src_tc = TYPECODES[layout.src_dtype(sizes[li - 1])]
        lv = LayerView(
            index=li, units=lt.units, fan_in=lt.fan_in, below=sizes[li - 1],
            activation=lc.activation, hidden=hidden,
            learns_feedback=hidden and cfg.hidden_error == "feedback",
            src_ptr="ptr8" if src_tc == "B" else "ptr16", src_typecode=src_tc,
            fx=fx, fe=fe, fw=w, sh_forward=w + fx - fe,
            sh_feedback=(fw[li] + fa[li + 1] - fe) if hidden else 0,
            sh_hebb=16 + fe + fx - w, sh_deposit=16 + fe + fx - fs, sh_bias=16 + fe - w,
            one=1 << fe, wmin=fmt.WMIN[li - 1],
            budget_min=lt.budget_min, budget_max=lt.budget_max,
            budget_down=lt.budget_step_down, budget_up=lt.budget_step_up,
            tag_min=lt.tag_min,
            regrow_r2=UNLIMITED if lt.regrow_radius_sq == UNLIMITED else int(lt.regrow_radius_sq),
            count=[int(v) for v in lt.count], src0=[int(v) for v in lt.src.ravel()])
        layers.append(lv)
    for lv in layers[:-1]:
        up = layers[lv.index]
        lv.up_units, lv.up_fan_in, lv.up_src_ptr = up.units, up.fan_in, up.src_ptr

    masks = [[1 if m else 0 for m in cfg.task_mask(t)] for t in range(cfg.tasks.count)]

    def capped(values, cap):
        return [min(cap, int(v)) for v in values]

    trails = range(256)
    # Score and gain factors: T = min(U32, 65536 + mulq(GS, s, fs) + mulq(GG, g, fg)); the
    # 65536 is folded into the s table so the device adds two capped entries.
    tables: dict[str, tuple[str, list[int]]] = {
        "T_S": ("I", capped((65536 + mulq(c["GS"], s, fs) for s in trails), U32_MAX)),
        "T_G": ("I", capped((mulq(c["GG"], g, fg) for g in trails), U32_MAX)),
        "A_S": ("I", capped((65536 + mulq(c["AS"], s, fs) for s in trails), U32_MAX)),
        "A_G": ("I", capped((mulq(c["AG"], g, fg) for g in trails), U32_MAX)),
        # g += rshr(DG * s_new, 16 + fs - fg), saturated to u8
        "DEP_G": ("B", capped((rshr(c["DG"] * s, 16 + fs - fg) for s in trails), 255)),
    }
    if cfg.consolidation.enabled:
        tables["RECIP"] = ("H", [int(v) for v in recip_table(fc)])
        tables["PULL"] = ("I", [int(mulq(c["LAM"], cc, fc)) for cc in trails])
        tables["KAPPA_G"] = ("B", capped((rshr(c["KAPPA"] * g, 16 + fg - fc) for g in trails), 255))
        if max(tables["PULL"][1]) > U32_MAX:
            tables["PULL"] = ("I", capped(tables["PULL"][1], U32_MAX))  # viper refuses it anyway

    return View(
        name=cfg.name, module=f"lpn_{cfg.name}", viper_module=f"lpn_{cfg.name}_viper",
        data_module=f"lpn_{cfg.name}_data", state_file=f"{cfg.name}.lpnstate",
        version=_version(), model_hash=model_hash(model), n_layers=n, sizes=sizes,
        dims=int(topo.positions[0].shape[1]), n_tasks=cfg.tasks.count,
        hidden_error=cfg.hidden_error, layers=layers, fields=fields,
        state_nbytes=sum(f.nbytes for f in fields), state=model.state_bytes(),
        consts=dict(c), fs=fs, fg=fg, fc=fc, cfg=cfg, masks=masks, tables=tables,
        positions=[[int(v) for v in p.ravel()] for p in topo.positions],
        tags=[[int(v) for v in t] for t in topo.tags])


def viper_bounds(view: View) -> list[str]:
    """Why the viper variant cannot hold this model exactly in 32-bit words ([] if it can)."""
    problems = []
    if view.consolidation and max(view.tables["PULL"][1]) > PULL_TABLE_MAX:
        problems.append(f"consolidation pull factor mulq(LAM, 255, fc) = {max(view.tables['PULL'][1])} "
                        f"exceeds {PULL_TABLE_MAX} (consolidation.lam far above 1)")
    if view.feedback:
        for lv in view.layers[:-1]:
            if lv.up_units > FEEDBACK_FAN_OUT_MAX:
                problems.append(f"layer {lv.index + 1} has {lv.up_units} units; feedback sums "
                                f"support at most {FEEDBACK_FAN_OUT_MAX}")
    return problems


def u32_expr(v: int) -> str:
    """A viper expression of type uint with value v (0 <= v < 2^32) on 32- and 64-bit ports.

    Integer literals of 2^30 and more are not small ints on a 32-bit port, and viper
    then treats them as objects, so larger constants are built from two halves.
    """
    if not 0 <= v <= U32_MAX:
        raise ValueError(f"{v} is not a 32-bit unsigned value")
    if v < 2**30:
        return f"uint({v})"
    return f"(uint({v >> 16}) << 16 | uint({v & 0xFFFF}))"


def i32_expr(v: int) -> str:
    """A viper int expression with value v (-2^31 < v < 2^31), built like `u32_expr`.

    A constant expression such as `32767 << 16` would be folded by the compiler into a
    literal too large for a small int, so the halves go through uint() casts.
    """
    if -(2**30) <= v < 2**30:
        return str(v)
    if not -(2**31) < v < 2**31:
        raise ValueError(f"{v} is not a 31-bit signed value")
    return ("-" if v < 0 else "") + f"int({u32_expr(abs(v))})"
