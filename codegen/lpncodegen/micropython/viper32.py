"""Run generated MicroPython modules in CPython, with viper's machine words modelled.

The unix port that the tests run is 64-bit: there a viper `int` is 64 bits wide, so
a kernel that lets a value pass 32 bits still gives the right answer, and the
same kernel would be wrong on a 32-bit board. No 32-bit MicroPython runs here, so
this module models viper's integer semantics in CPython instead, on both word sizes
at once: every viper value carries the word a 32-bit port would hold and the word
the 64-bit port holds, each wrapped at its width after every operation. Wherever
the program can observe a value (a branch, an index, a store to memory, a return)
the two must agree, or `WordSizeDivergence` is raised. A kernel that runs through
without one computes the same on 32-bit and 64-bit ports for that input.

What it models: `int` (signed) and `uint` (unsigned) words; `+ - * // % & | ^ << >>`
(arithmetic shift for int, logical for uint), unary minus and comparisons;
`ptr8/ptr16/ptr32` loads (zero-extended, except a ptr32 load into a 32-bit
register, which is the signed word) and stores (the low bytes); the casts `int()`
and `uint()`; argument and return conversion by annotation. It also rejects what
viper rejects (mixing int and uint, div/mod on uint, comparing a uint with an int
literal) and what the hardware leaves undefined (shift counts outside 0..31), and
bounds-checks every pointer access, which viper does not.
"""
from __future__ import annotations

import builtins
import functools
import importlib.util
import operator
import sys
import types
from pathlib import Path
from typing import Any, Callable

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1


class WordSizeDivergence(AssertionError):
    """A viper kernel observed a value that differs between 32-bit and 64-bit ports."""


class ViperError(TypeError):
    """Code that viper would reject or whose result the hardware leaves undefined."""


B31 = 1 << 31
B63 = 1 << 63


def _s(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _wrap(kind: str, a: int, b: int) -> "W":
    if kind == "int":
        return W(kind, ((a + B31) & M32) - B31, ((b + B63) & M64) - B63)
    return W(kind, a & M32, b & M64)


def _operands(self: "W", o: Any, op: str) -> tuple[int, int]:
    if o.__class__ is W:
        if o.kind is not self.kind:
            raise ViperError(f"viper: can't do binary op {op} between '{self.kind}' and '{o.kind}'")
        return o.a, o.b
    if o.__class__ is not builtins.int:
        raise ViperError(f"viper: {op} with a {type(o).__name__} object")
    return o, o  # a literal: wrapping it first would not change the wrapped result


def _arith(op: str, f: Callable[[int, int], int], reverse: bool) -> Callable[["W", Any], "W"]:
    # + - * & | ^ commute with wrapping, so each word is wrapped once, after the operation.
    def method(self: "W", o: Any) -> "W":
        oa, ob = _operands(self, o, op)
        a, b = (f(oa, self.a), f(ob, self.b)) if reverse else (f(self.a, oa), f(self.b, ob))
        if self.kind == "int":
            return W("int", ((a + B31) & M32) - B31, ((b + B63) & M64) - B63)
        return W("uint", a & M32, b & M64)
    return method


class W:
    """One viper value: `a` as a 32-bit port holds it, `b` as the 64-bit unix port does."""
    __slots__ = ("kind", "a", "b")

    def __init__(self, kind: str, a: int, b: int):
        self.kind, self.a, self.b = kind, a, b

    def __repr__(self) -> str:
        return f"W({self.kind}, a={self.a}, b={self.b})"

    __add__ = _arith("+", operator.add, False)
    __radd__ = _arith("+", operator.add, True)
    __sub__ = _arith("-", operator.sub, False)
    __rsub__ = _arith("-", operator.sub, True)
    __mul__ = _arith("*", operator.mul, False)
    __rmul__ = _arith("*", operator.mul, True)
    __and__ = _arith("&", operator.and_, False)
    __rand__ = _arith("&", operator.and_, True)
    __or__ = _arith("|", operator.or_, False)
    __ror__ = _arith("|", operator.or_, True)
    __xor__ = _arith("^", operator.xor, False)
    __rxor__ = _arith("^", operator.xor, True)

    def _divmod(self, o: Any, op: str, f: Callable[[int, int], int], rev: bool = False) -> "W":
        if self.kind == "uint":
            raise ViperError("viper: div/mod not implemented for uint")
        oa, ob = _operands(self, o, op)
        w = _wrap("int", oa, ob)
        x, y = (w, self) if rev else (self, w)
        if y.a == 0 or y.b == 0:
            raise ZeroDivisionError("viper: division by zero")
        return _wrap("int", f(x.a, y.a), f(x.b, y.b))

    def __floordiv__(self, o): return self._divmod(o, "//", operator.floordiv)
    def __rfloordiv__(self, o): return self._divmod(o, "//", operator.floordiv, True)
    def __mod__(self, o): return self._divmod(o, "%", operator.mod)
    def __rmod__(self, o): return self._divmod(o, "%", operator.mod, True)

    def _shift(self, o: Any, left: bool, rev: bool = False) -> "W":
        oa, ob = _operands(self, o, "<<" if left else ">>")
        w = _wrap(self.kind, oa, ob)
        x, n = (w, self) if rev else (self, w)
        if n.a != n.b or not 0 <= n.a <= 31:
            raise ViperError(f"viper: shift count {n!r} outside 0..31 (undefined on a 32-bit port)")
        if left:
            return _wrap(x.kind, x.a << n.a, x.b << n.a)
        return W(x.kind, x.a >> n.a, x.b >> n.a)  # stays within the width: no wrap needed

    def __lshift__(self, o): return self._shift(o, True)
    def __rlshift__(self, o): return self._shift(o, True, True)
    def __rshift__(self, o): return self._shift(o, False)
    def __rrshift__(self, o): return self._shift(o, False, True)

    def __neg__(self): return _wrap(self.kind, -self.a, -self.b)
    def __pos__(self): return self

    # -- observations: both words must agree
    def _cmp(self, o: Any, op: str, f: Callable[[int, int], bool]) -> bool:
        if self.kind == "uint" and o.__class__ is not W:
            raise ViperError("viper: comparison of uint and int")
        oa, ob = _operands(self, o, op)
        if o.__class__ is not W:
            oa, ob = _wrap(self.kind, oa, ob).a, _wrap(self.kind, oa, ob).b
        ra, rb = f(self.a, oa), f(self.b, ob)
        if ra != rb:
            raise WordSizeDivergence(f"{self!r} {op} {o!r}: {ra} on a 32-bit port, {rb} on a 64-bit one")
        return ra

    def __lt__(self, o): return self._cmp(o, "<", operator.lt)
    def __le__(self, o): return self._cmp(o, "<=", operator.le)
    def __gt__(self, o): return self._cmp(o, ">", operator.gt)
    def __ge__(self, o): return self._cmp(o, ">=", operator.ge)
    def __eq__(self, o): return self._cmp(o, "==", operator.eq)  # type: ignore[override]
    def __ne__(self, o): return self._cmp(o, "!=", operator.ne)  # type: ignore[override]
    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        ra, rb = self.a != 0, self.b != 0
        if ra != rb:
            raise WordSizeDivergence(f"truth of {self!r} differs between 32-bit and 64-bit ports")
        return ra

    def __index__(self) -> int:
        if self.a != self.b:
            raise WordSizeDivergence(f"index {self!r} differs between 32-bit and 64-bit ports")
        return self.a

    def result(self, kind: str) -> int:
        """The Python int a viper function returning `kind` hands back (both ports must agree)."""
        if kind == "uint":
            a, b = self.a & M32, self.b & M64
        else:
            a, b = _s(self.a, 32), _s(self.b, 64)
        if a != b:
            raise WordSizeDivergence(f"return value {self!r} differs between 32-bit and 64-bit ports")
        return a


class _IntMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, builtins.int) and not isinstance(obj, W)


class ViperInt(metaclass=_IntMeta):
    """Stands for the name `int` in an emulated module: a cast inside kernels, the builtin elsewhere."""

    def __new__(cls, x: Any = 0, *args: Any) -> Any:  # type: ignore[misc]
        if isinstance(x, W):
            return W("int", _s(x.a, 32), _s(x.b, 64))
        return builtins.int(x, *args)


class ViperUInt(metaclass=_IntMeta):
    """Stands for `uint`: the cast to an unsigned machine word."""

    def __new__(cls, x: Any) -> Any:  # type: ignore[misc]
        if isinstance(x, W):
            return W("uint", x.a & M32, x.b & M64)
        if isinstance(x, bool) or not isinstance(x, builtins.int):
            raise ViperError(f"uint() of a {type(x).__name__}")
        return W("uint", x & M32, x & M64)


class _Ptr:
    size = 1

    def __init__(self, buf: Any):
        if isinstance(buf, W):
            raise ViperError("raw addresses are not modelled")
        self.mv = memoryview(buf).cast("B")

    def _span(self, i: Any) -> slice:
        i = i.__index__() if isinstance(i, W) else builtins.int(i)
        n = self.size
        if i < 0 or (i + 1) * n > len(self.mv):
            raise IndexError(f"ptr{8 * n} access at index {i} outside a buffer of {len(self.mv)} bytes")
        return slice(i * n, (i + 1) * n)

    def __getitem__(self, i: Any) -> W:
        raw = builtins.int.from_bytes(self.mv[self._span(i)], "little")
        if self.size == 4:  # a 32-bit register holds the word itself; the unix port zero-extends it
            return W("int", _s(raw, 32), raw)
        return W("int", raw, raw)

    def __setitem__(self, i: Any, value: Any) -> None:
        bits = 8 * self.size
        mask = (1 << bits) - 1
        if isinstance(value, W):
            if (value.a & mask) != (value.b & mask):
                raise WordSizeDivergence(f"store of {value!r} to a ptr{bits}: the stored bytes differ")
            raw = value.a & mask
        else:
            raw = builtins.int(value) & mask
        self.mv[self._span(i)] = raw.to_bytes(self.size, "little")


class Ptr8(_Ptr):
    size = 1


class Ptr16(_Ptr):
    size = 2


class Ptr32(_Ptr):
    size = 4


def _convert_arg(value: Any, kind: str | None) -> Any:
    if kind is None:
        return value
    v = builtins.int(value)
    return _wrap(kind, v, v)


def _kind(annotation: Any) -> str | None:
    if annotation is ViperInt or annotation == "int":
        return "int"
    if annotation is ViperUInt or annotation == "uint":
        return "uint"
    return None


def viper(fn: Callable) -> Callable:
    """The emulated @micropython.viper: converts arguments and the return value by annotation."""
    ann = dict(fn.__annotations__)
    ret = _kind(ann.pop("return", None))
    names = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    kinds = [_kind(ann.get(n)) for n in names]

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        out = fn(*(_convert_arg(a, k) for a, k in zip(args, kinds)))
        if isinstance(out, W):
            return out.result(ret or out.kind)
        return out

    return call


def _fake_micropython() -> types.ModuleType:
    m = types.ModuleType("micropython")
    m.viper = viper  # type: ignore[attr-defined]
    m.native = lambda f: f  # type: ignore[attr-defined]
    m.const = lambda v: v  # type: ignore[attr-defined]
    return m


def load_module(path: str | Path, data_path: str | Path | None = None) -> types.ModuleType:
    """Execute a generated module (and its data module, found beside it) in CPython.

    Viper kernels run on modelled machine words; the rest of the module is plain
    Python that CPython runs as MicroPython would. Nothing stays in sys.modules.
    """
    path = Path(path)
    saved = {k: sys.modules.get(k) for k in ("micropython",)}
    sys.modules["micropython"] = _fake_micropython()
    try:
        source = path.read_text(encoding="utf-8")
        data_name = _data_module_name(source)
        data_file = Path(data_path) if data_path else path.with_name(data_name + ".py")
        spec = importlib.util.spec_from_file_location(data_name, data_file)
        assert spec is not None and spec.loader is not None
        data = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(data)
        saved[data_name] = sys.modules.get(data_name)
        sys.modules[data_name] = data
        module = types.ModuleType(path.stem)
        module.__file__ = str(path)
        module.__dict__.update(ptr8=Ptr8, ptr16=Ptr16, ptr32=Ptr32, uint=ViperUInt, int=ViperInt)
        # dont_inherit: this file's `from __future__ import annotations` would turn the
        # module's annotations into strings, and viper reads them as types.
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
        return module
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _data_module_name(source: str) -> str:
    for line in source.splitlines():
        if line.startswith("import ") and line.rstrip().endswith(" as _D"):
            return line.split()[1]
    raise ValueError("not a generated LPN module: no data module import")
