"""The harness build under AddressSanitizer and UndefinedBehaviorSanitizer: no finding.

The sanitizer runtimes must be loaded before the interpreter starts, so each
check runs in a child Python started with `lpncodegen.harness.sanitizer_env()`.
Two planted bugs prove that a finding would be reported and fail the run.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lpncodegen.harness import SANITIZE, sanitizer_env
from lpncodegen.toolchains import run

TESTS = Path(__file__).resolve().parent

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from lpn import layout
    from lpncodegen.harness import CompiledLearner, LearnerError
    from lpncodegen.verify import compare, op_stream
    from test_codegen_cases import case_model

    name = sys.argv[1]
    py = case_model(name)
    c = CompiledLearner(case_model(name), sanitize=True)
    ffi, p, m = c._ffi, c._p, c._m

    # Refused calls, each checked to leave the state as it was.
    before = c.state_bytes()
    n_in, n_out = c.n_inputs, c.n_outputs
    x = ffi.new("int16_t[]", n_in + 8)
    t = ffi.new("int16_t[]", n_out + 8)
    buf = ffi.new("uint8_t[]", c.state_nbytes + 8)
    refused = [
        c._call("learn", m, x, n_in + 1, t, n_out, 0),
        c._call("learn", m, x, n_in, t, n_out - 1, 0),
        c._call("learn", m, x, n_in, t, n_out, 255),
        c._call("learn", m, ffi.NULL, n_in, t, n_out, 0),
        c._call("learn", ffi.NULL, x, n_in, t, n_out, 0),
        c._call("predict", m, x, n_in - 1, t, n_out),
        c._call("predict_class", m, x, n_in, 200),
        c._call("contrast", m, x, 0),
        c._call("export_state", m, buf, c.state_nbytes - 1),
        c._call("import_state", m, buf, c.state_nbytes + 1),
        c._call("import_state", m, buf, 0),
        c._call("get_stats", m, ffi.NULL),
    ]
    assert all(r < 0 for r in refused), refused
    assert c.state_bytes() == before

    # Corrupted states: random bytes, and each field set to extreme values.
    rng = np.random.default_rng(0)
    fields = c.fields
    good = c.state_bytes()
    rejected = 0
    for trial in range(120):
        data = bytearray(good)
        if trial < 30:
            data = bytearray(rng.integers(0, 256, len(good), dtype=np.uint8).tobytes())
        else:
            f = fields[trial % len(fields)]
            offset = sum(g.nbytes for g in fields[: fields.index(f)])
            i = int(rng.integers(0, f.count)) * np.dtype(f.dtype).itemsize
            for b in range(np.dtype(f.dtype).itemsize):
                data[offset + i + b] = int(rng.choice([0, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
        try:
            c.load_state_bytes(bytes(data))
        except LearnerError:
            rejected += 1
            assert c.state_bytes() == good
            continue
        # Whatever was accepted must run without a finding.
        c.learn_q(np.full(n_in, 32767, dtype=np.int16), np.full(n_out, -32768, dtype=np.int16), 0)
        for op in ("consolidate", "structural", "replay"):
            try:
                getattr(c, op)()
            except LearnerError:
                pass
        c.load_state_bytes(good)
    assert rejected > 30, rejected

    # Then a stream, compared with the Python model step by step.
    c.load_state_bytes(py.state_bytes())
    result = compare(py, c, op_stream(py, 2000, seed=5))
    assert result.equal, result.detail
    print("CLEAN", name, rejected)
""")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = sanitizer_env()
    e["PYTHONPATH"] = str(TESTS)
    e["LPN_CACHE_DIR"] = str(tmp_path_factory.mktemp("san-cache"))
    return e


def _child(code: str, args: list[str], env: dict, tmp: Path) -> subprocess.CompletedProcess:
    script = tmp / "child.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "small_all", "contrastive", "frozen3", "wide", "uno"])
def test_harness_clean_under_asan_and_ubsan(name, env, tmp_path):
    proc = _child(CHILD, [name], env, tmp_path)
    report = proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, report
    assert f"CLEAN {name}" in proc.stdout, report
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr, report


PLANTED = {
    "use after free": ("#include <stdlib.h>\nint bug(int i) { int *a = malloc(4 * sizeof *a); "
                       "a[0] = i; free(a); return a[0]; }\n", "heap-use-after-free"),
    "signed overflow": ("#include <limits.h>\nint bug(int i) { int x = INT_MAX - 2; return x + i; }\n",
                        "runtime error"),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_planted_bug_is_reported(kind, env, tmp_path):
    source, marker = PLANTED[kind]
    (tmp_path / "bug.c").write_text(source, encoding="utf-8")
    lib = tmp_path / "libbug.so"
    run(["gcc", "-std=c99", "-fPIC", "-shared", *SANITIZE, str(tmp_path / "bug.c"), "-o", str(lib)])
    child = textwrap.dedent(f"""
        from cffi import FFI
        ffi = FFI()
        ffi.cdef("int bug(int i);")
        lib = ffi.dlopen({str(lib)!r})
        print(lib.bug(5))
    """)
    proc = _child(child, [], env, tmp_path)
    assert proc.returncode != 0 and marker in proc.stderr, proc.stdout + proc.stderr
