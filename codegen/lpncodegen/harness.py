"""The generated C learner on the desktop, through cffi, with the Python model's methods.

`CompiledLearner(model)` generates the C for a FixedLPN, compiles it into a
shared library (cached by the hash of everything that goes into the build, in
the user's cache directory, never in the source tree) and loads it in cffi's
ABI mode, so no Python headers are needed. It offers the integer-level methods
of `lpn.fixed.FixedLPN` (learn_q, predict_q, contrast_q, consolidate, replay,
structural, state_bytes, load_state_bytes) and, through the shared
`EstimatorMixin`, fit / partial_fit / predict / score / learn_one / predict_one.

A sanitizer build (sanitize=True) needs the ASan runtime loaded before Python
starts: run such code in a process started with `sanitizer_env()`.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cffi import FFI

from lpn import layout
from lpn.config import LPNConfig
from lpn.estimator import EstimatorMixin
from lpn.fixed import FixedLPN
from lpn.fixedpoint import I16_MAX, I16_MIN, quantise

from .generator import core_dir, core_sources, render
from .toolchains import ToolchainError, run, version

OPS = {"learn": 0, "contrast": 1, "consolidate": 2, "replay": 3, "structural": 4}
OPTIMISE = ("-O3",)
SANITIZE = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all")


def _status_table() -> list[tuple[int, str, str]]:
    """(code, name, meaning) of lpn_status, read from the one place it is defined (lpn_core.h)."""
    text = (core_dir() / "lpn_core.h").read_text(encoding="utf-8")
    rows = re.findall(r"\b(LPN_(?:OK|ERR_\w+))\s*=\s*(-?\d+),?\s*(?:/\*\s*(.*?)\s*\*/)?", text)
    return [(int(code), name, meaning) for name, code, meaning in rows]


def status_names() -> dict[int, str]:
    """{code: name} of lpn_status."""
    return {code: name for code, name, _ in _status_table()}


class LearnerError(ValueError):
    """The C learner returned an error status."""

    def __init__(self, status: int, what: str):
        self.status = status
        known = {code: (name, meaning) for code, name, meaning in _status_table()}
        name, meaning = known.get(status, (f"status {status}", "unknown status"))
        super().__init__(f"{what}: {meaning} ({name})")


def cache_root() -> Path:
    """Where compiled harness libraries are kept: $LPN_CACHE_DIR, else the user cache dir."""
    if os.environ.get("LPN_CACHE_DIR"):
        return Path(os.environ["LPN_CACHE_DIR"]) / "harness"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = Path(base) / "lpn-edge" / "harness"
    try:
        root.mkdir(parents=True, exist_ok=True)
        return root
    except OSError:
        return Path(tempfile.gettempdir()) / "lpn-edge-harness"


def _cdef(prefix: str, n_layers: int) -> str:
    p = prefix
    return f"""
typedef struct {p}_model {p}_model;
typedef struct {{
    uint32_t step; uint32_t saturations; uint32_t seen; uint32_t replay_filled; uint8_t task;
    uint16_t budget[{n_layers}]; int32_t loss_fast[{n_layers}]; int32_t loss_slow[{n_layers}];
}} {p}_stats;
int {p}_init({p}_model *m);
int {p}_predict({p}_model *m, const int16_t *x, size_t n_x, int16_t *y, size_t n_y);
int {p}_predict_class({p}_model *m, const int16_t *x, size_t n_x, uint8_t task);
int {p}_learn({p}_model *m, const int16_t *x, size_t n_x, const int16_t *t, size_t n_t, uint8_t task);
int {p}_contrast({p}_model *m, const int16_t *x, size_t n_x);
int {p}_consolidate({p}_model *m);
int {p}_replay({p}_model *m, uint32_t n);
int {p}_structural({p}_model *m);
int {p}_export_state(const {p}_model *m, uint8_t *buf, size_t len);
int {p}_import_state({p}_model *m, const uint8_t *buf, size_t len);
int {p}_get_stats(const {p}_model *m, {p}_stats *out);
size_t {p}_harness_model_size(void);
size_t {p}_harness_state_ram(void);
size_t {p}_harness_work_ram(void);
int {p}_harness_run({p}_model *m, uint32_t n, const uint8_t *op, const uint8_t *task,
    const uint32_t *arg, const int16_t *xs, const int16_t *ts, uint8_t *scratch,
    uint32_t *crc, int32_t *status);
int {p}_harness_learn_many({p}_model *m, uint32_t n, const int16_t *xs, const int16_t *ts,
    const uint8_t *tasks);
"""


@dataclass
class Build:
    """One compiled learner: the library and the sources it was built from."""
    library: Path
    sources: dict[str, str]
    prefix: str


def compile_learner(model: FixedLPN, prefix: str = "lpnh", sanitize: bool = False,
                    compiler: str | None = None) -> Build:
    """Generate and compile the learner of `model` into a shared library, reusing a cached one."""
    compiler = compiler or os.environ.get("CC") or "gcc"
    sources = render(model, prefix, harness=True)
    flags = ["-std=c99", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
             *(SANITIZE if sanitize else OPTIMISE)]
    key = hashlib.sha256()
    for part in [compiler, version(compiler), *flags]:
        key.update(part.encode() + b"\0")
    for name in sorted(sources):
        key.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    core = [*core_sources(), *sorted(core_dir().glob("*.h"))]
    for path in core:
        key.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest = key.hexdigest()[:24]
    root = cache_root()
    library = root / f"lib{prefix}-{digest}{'-san' if sanitize else ''}.so"
    if library.is_file():
        return Build(library, sources, prefix)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lpnh-", dir=root) as tmp:
        tmpdir = Path(tmp)
        c_files = []
        for name, text in sources.items():
            (tmpdir / name).write_text(text, encoding="utf-8")
            if name.endswith(".c"):
                c_files.append(str(tmpdir / name))
        out = tmpdir / library.name
        cmd = [compiler, *flags, "-I", str(tmpdir), "-I", str(core_dir()), *c_files,
               *(str(p) for p in core_sources()), "-o", str(out)]
        try:
            run(cmd)
        except ToolchainError as exc:
            raise ToolchainError(f"compiling the generated learner failed:\n{exc}") from None
        os.replace(out, library)  # atomic: parallel test workers may race to build the same key
    return Build(library, sources, prefix)


def sanitizer_env(compiler: str = "gcc") -> dict[str, str]:
    """Environment for a process that loads sanitizer builds: the runtimes preloaded."""
    libs = []
    for lib in ("libasan.so", "libubsan.so"):
        path = subprocess.run([compiler, f"-print-file-name={lib}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        if not os.path.isabs(path):
            raise ToolchainError(f"{compiler} has no {lib} (install its sanitizer runtime)")
        libs.append(path)
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(libs)
    # Python itself keeps memory to the end; leak reports would be about the interpreter.
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=86"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
    return env


class CompiledLearner(EstimatorMixin):
    """The generated C learner of a FixedLPN, running in this process."""
    kind = "fixed"

    def __init__(self, model: FixedLPN | LPNConfig | str = "digits", sanitize: bool = False,
                 prefix: str = "lpnh", compiler: str | None = None):
        if not isinstance(model, FixedLPN):
            model = FixedLPN(model)
        self.config = model.config
        self.topology = model.topology
        self.formats = model.formats
        self.n_layers = len(self.config.layers)
        self.classes_ = None
        self.sanitize = sanitize
        self.build = compile_learner(model, prefix, sanitize, compiler)
        self._ffi = FFI()
        self._ffi.cdef(_cdef(prefix, self.n_layers))
        self._lib = self._ffi.dlopen(str(self.build.library))
        self._p = prefix
        size = self._call("harness_model_size")
        words = (size + 7) // 8  # uint64 storage: the struct's alignment
        self._storage = self._ffi.new("uint64_t[]", words)
        self._m = self._ffi.cast(f"{prefix}_model *", self._storage)
        self.state_nbytes = layout.state_nbytes(self.fields)
        self._scratch = self._ffi.new("uint8_t[]", self.state_nbytes)
        self._check(self._call("init", self._m), "init")

    # ------------------------------------------------------------------ plumbing
    def _call(self, name: str, *args: Any) -> Any:
        return getattr(self._lib, f"{self._p}_{name}")(*args)

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status < 0:
            raise LearnerError(status, what)

    def _i16(self, values: np.ndarray) -> Any:
        arr = np.ascontiguousarray(values, dtype=np.int16)
        return arr, self._ffi.cast("int16_t *", self._ffi.from_buffer(arr))

    def _check_q(self, v: Any, n: int, what: str) -> np.ndarray:
        """The same checks as the Python model's, with a fast path for int16 input."""
        arr = np.asarray(v)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{what} must be integers (already quantised), got {arr.dtype}")
        if arr.shape != (n,):
            raise ValueError(f"{what} must have shape ({n},), got {arr.shape}")
        if arr.dtype == np.int16:
            return arr
        if arr.size and (arr.min() < I16_MIN or arr.max() > I16_MAX):
            raise ValueError(f"{what} has values outside int16")
        return arr.astype(np.int16)

    def _task(self, task: Any) -> int:
        if isinstance(task, (int, np.integer)) and not isinstance(task, bool) \
                and 0 <= task < self.config.tasks.count:
            return int(task)
        return int(self._check_task(task, 1)[0])  # raises the Python model's error

    @property
    def fields(self) -> list[layout.Field]:
        return layout.state_fields(self.config, self.topology, "fixed")

    @property
    def ram_bytes(self) -> dict[str, int]:
        """Bytes of the learnable state struct and of the scratch space, as compiled here."""
        return {"state": int(self._call("harness_state_ram")), "work": int(self._call("harness_work_ram"))}

    # ------------------------------------------------------------------ estimator hooks
    def _encode_x(self, X: np.ndarray) -> np.ndarray:
        return quantise(X, self.formats.fa[0])

    def _encode_t(self, T: np.ndarray) -> np.ndarray:
        return quantise(T, self.formats.fa[-1])

    def _decode_y(self, Y: np.ndarray) -> np.ndarray:
        return np.asarray(Y, dtype=np.float64) / (1 << self.formats.fa[-1])

    def _reset(self) -> None:
        """Back to the state the learner was generated with (as the C init does)."""
        self._check(self._call("init", self._m), "init")

    def _learn(self, x: np.ndarray, t: np.ndarray, task: int) -> None:
        keep_x, px = self._i16(x)
        keep_t, pt = self._i16(t)
        self._check(self._call("learn", self._m, px, len(keep_x), pt, len(keep_t), int(task)), "learn")

    def _predict_raw(self, x: np.ndarray) -> np.ndarray:
        keep, px = self._i16(x)
        y = np.zeros(self.n_outputs, dtype=np.int16)
        py = self._ffi.cast("int16_t *", self._ffi.from_buffer(y))
        self._check(self._call("predict", self._m, px, len(keep), py, len(y)), "predict")
        return y.astype(np.int64)

    # ------------------------------------------------------------------ integer-level API
    def predict_q(self, x_q: Any) -> np.ndarray:
        return self._predict_raw(self._check_q(x_q, self.n_inputs, "x"))

    def predict_class_q(self, x_q: Any, task: int = 0) -> int:
        keep, px = self._i16(self._check_q(x_q, self.n_inputs, "x"))
        out = self._call("predict_class", self._m, px, len(keep), self._task(task))
        self._check(out, "predict_class")
        return int(out)

    def learn_q(self, x_q: Any, t_q: Any, task: int = 0) -> None:
        x = self._check_q(x_q, self.n_inputs, "x")
        t = self._check_q(t_q, self.n_outputs, "target")
        self._learn(x, t, self._task(task))

    def contrast_q(self, x_q: Any) -> None:
        keep, px = self._i16(self._check_q(x_q, self.n_inputs, "x"))
        self._check(self._call("contrast", self._m, px, len(keep)), "contrast")

    def learn_unlabelled(self, X: Any) -> None:
        for x in self._encode_x(self._check_X(X)):
            self.contrast_q(x)

    def consolidate(self) -> None:
        self._check(self._call("consolidate", self._m), "consolidate")

    def replay(self, n: int = 1) -> None:
        if not isinstance(n, (int, np.integer)) or not 0 <= n < 2**32:
            raise ValueError(f"replay count must be an integer in [0, 2^32), got {n!r}")
        self._check(self._call("replay", self._m, int(n)), "replay")

    def structural(self) -> None:
        self._check(self._call("structural", self._m), "structural")

    def state_bytes(self) -> bytes:
        self._check(self._call("export_state", self._m, self._scratch, self.state_nbytes), "export_state")
        return bytes(self._ffi.buffer(self._scratch, self.state_nbytes))

    def load_state_bytes(self, data: bytes) -> None:
        data = bytes(data)
        buf = self._ffi.from_buffer("uint8_t[]", data)
        self._check(self._call("import_state", self._m, buf, len(data)), "import_state")

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The state decoded by field name (a copy: changing it changes nothing)."""
        return layout.unpack_state(self.fields, self.state_bytes())

    def stats(self) -> dict[str, Any]:
        out = self._ffi.new(f"{self._p}_stats *")
        self._check(self._call("get_stats", self._m, out), "get_stats")
        return {"step": out.step, "saturations": out.saturations, "seen": out.seen,
                "replay_filled": out.replay_filled, "task": out.task,
                "budget": list(out.budget), "loss_fast": list(out.loss_fast),
                "loss_slow": list(out.loss_slow)}

    # ------------------------------------------------------------------ batched entry points
    def run_ops(self, ops: "OpStream") -> tuple[np.ndarray, np.ndarray]:
        """Apply a stream of operations; (status, CRC-32 of the state bytes) after each."""
        n = len(ops.op)
        crc = np.zeros(n, dtype=np.uint32)
        status = np.zeros(n, dtype=np.int32)
        arrays = [np.ascontiguousarray(a) for a in (ops.op.astype(np.uint8), ops.task.astype(np.uint8),
                                                    ops.arg.astype(np.uint32), ops.x.astype(np.int16),
                                                    ops.t.astype(np.int16))]
        ptrs = [self._ffi.from_buffer(a) for a in arrays]
        r = self._call("harness_run", self._m, n,
                       self._ffi.cast("uint8_t *", ptrs[0]), self._ffi.cast("uint8_t *", ptrs[1]),
                       self._ffi.cast("uint32_t *", ptrs[2]), self._ffi.cast("int16_t *", ptrs[3]),
                       self._ffi.cast("int16_t *", ptrs[4]), self._scratch,
                       self._ffi.cast("uint32_t *", self._ffi.from_buffer(crc)),
                       self._ffi.cast("int32_t *", self._ffi.from_buffer(status)))
        self._check(r, "harness_run")
        return status, crc

    def learn_many_q(self, X_q: np.ndarray, T_q: np.ndarray, tasks: np.ndarray) -> None:
        """Learn every row in one C call (no Python between samples)."""
        X = np.ascontiguousarray(X_q, dtype=np.int16)
        T = np.ascontiguousarray(T_q, dtype=np.int16)
        K = np.ascontiguousarray(tasks, dtype=np.uint8)
        if X.shape != (len(K), self.n_inputs) or T.shape != (len(K), self.n_outputs):
            raise ValueError("learn_many_q: X, T and tasks must have one row per sample")
        if len(K) and int(K.max()) >= self.config.tasks.count:
            raise ValueError(f"learn_many_q: unknown task id {int(K.max())}")
        f = self._ffi
        self._check(self._call("harness_learn_many", self._m, len(K),
                               f.cast("int16_t *", f.from_buffer(X)), f.cast("int16_t *", f.from_buffer(T)),
                               f.cast("uint8_t *", f.from_buffer(K))), "learn_many")

    def __repr__(self) -> str:
        return f"CompiledLearner({self.config.name!r}, {self.build.library.name})"


@dataclass
class OpStream:
    """A stream of learner operations, one row each (x and t are ignored where unused)."""
    op: np.ndarray     # OPS codes
    task: np.ndarray
    arg: np.ndarray    # replay count
    x: np.ndarray      # (n, inputs) int16
    t: np.ndarray      # (n, outputs) int16

    def __len__(self) -> int:
        return len(self.op)

    def apply(self, model: Any, i: int) -> int:
        """Apply row i to a Python-side model; returns 0 or -1 if the model raised ValueError."""
        code = int(self.op[i])
        try:
            if code == OPS["learn"]:
                model.learn_q(self.x[i], self.t[i], int(self.task[i]))
            elif code == OPS["contrast"]:
                model.contrast_q(self.x[i])
            elif code == OPS["consolidate"]:
                model.consolidate()
            elif code == OPS["replay"]:
                model.replay(int(self.arg[i]))
            elif code == OPS["structural"]:
                model.structural()
            else:
                raise KeyError(f"unknown op code {code}")
        except ValueError:
            return -1
        return 0
