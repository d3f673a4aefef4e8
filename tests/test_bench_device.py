"""`lpn bench device`: exact per-step cost in QEMU (instructions) and simavr (cycles).

- The command builds the bench firmware for the three targets at reduced
  repetitions and prints the table and the JSON: every count positive, two runs
  identical, the markers' own cost the known 2.
- The dense baseline is real: its C (firmware/src/bench/lpn_dense.c), compiled
  for this computer, predicts and learns exactly as a numpy reimplementation of
  the integer arithmetic documented in lpn_dense.h, saturation included.
- The counts follow the work: the digits learner costs more instructions than
  the tiny one, on the same core, in the same firmware.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import bench_device
from lpn.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BENCH_SRC = REPO / "firmware" / "src" / "bench"
REPS = 4


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-device")


@pytest.fixture(scope="module")
def report(build_root) -> tuple[str, list[dict]]:
    out = build_root / "bench.json"
    result = CliRunner().invoke(main, ["bench", "device", "--reps", str(REPS), "--no-production",
                                       "--build-dir", str(build_root), "--json", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())


def test_bench_device_prints_exact_repeatable_counts(report):
    output, results = report
    assert [r["target"] for r in results] == ["Cortex-M4", "Cortex-M3", "ATmega328P"]
    assert "LPN/dense" in output and "Flash and RAM" in output
    for r in results:
        assert r["repeatable"] is True and r["reps"] == REPS
        assert r["marker_cost"] == 2          # bx lr + bl on Arm; SBI on AVR
        for name in ("lpn_predict", "lpn_learn", "dense_predict", "dense_learn"):
            steps = r["steps"][name]["per_step"]
            assert len(steps) == REPS and min(steps) > 0
        # Predict does the same work on every sample: on Arm its count does not vary
        # (every path is the same length); on AVR, data-dependent helpers vary a little.
        predict = r["steps"]["lpn_predict"]["per_step"]
        if r["unit"] == "instructions":
            assert len(set(predict)) == 1
        else:
            assert max(predict) - min(predict) < max(predict) // 100
        assert r["predict_per_synapse"] == pytest.approx(r["steps"]["lpn_predict"]["mean"] / r["synapses"])
        # Same size, to the nearest hidden unit: one unit more or less would be further off.
        per_unit = r["dense_params"] // r["dense_hidden"]   # n_in + n_out + 1, plus a little
        assert abs(r["dense_params"] - r["params"]) <= per_unit // 2 + 1
        sizes = r["sizes"]
        assert sizes["bench firmware"]["flash"] > sizes["dense module alone"]["flash"] > 0
    assert results[2]["unit"] == "cycles" and results[0]["unit"] == "instructions"


def test_bad_target_is_a_clear_error():
    result = CliRunner().invoke(main, ["bench", "device", "--targets", "m7"])
    assert result.exit_code == 2 and "unknown target m7" in result.output


# ---- The dense baseline against numpy --------------------------------------------------
N_IN, N_H, N_OUT, IN_FRAC, OUT_FRAC = 12, 5, 3, 14, 12
W_FRAC, H_FRAC, LR_SHIFT, W_INIT = 12, 12, 5, 410

HARNESS = r"""
#include <stdio.h>
#include "lpn_dense.h"
/* Reads steps from stdin: "p x..." predicts, "l x... t..." learns; prints y, then the parameters. */
int main(void)
{
    int16_t x[LPN_DENSE_INPUTS], t[LPN_DENSE_OUTPUTS], y[LPN_DENSE_OUTPUTS];
    char op;
    int i, v;
    const int16_t *p;
    lpn_dense_init(7u);
    while (scanf(" %c", &op) == 1) {
        for (i = 0; i < LPN_DENSE_INPUTS; i++) { if (scanf("%d", &v) != 1) return 2; x[i] = (int16_t)v; }
        if (op == 'l') {
            for (i = 0; i < LPN_DENSE_OUTPUTS; i++) { if (scanf("%d", &v) != 1) return 2; t[i] = (int16_t)v; }
            lpn_dense_learn(x, t);
        } else {
            lpn_dense_predict(x, y);
            for (i = 0; i < LPN_DENSE_OUTPUTS; i++) printf("%d ", y[i]);
            printf("\n");
        }
    }
    p = lpn_dense_parameters();
    printf("params");
    for (i = 0; i < LPN_DENSE_HIDDEN * (LPN_DENSE_INPUTS + LPN_DENSE_OUTPUTS + 1) + LPN_DENSE_OUTPUTS; i++)
        printf(" %d", p[i]);
    printf("\n");
    return 0;
}
"""


class NumpyDense:
    """lpn_dense.h's arithmetic, written again with numpy's int64 (>> is a floor there)."""

    def __init__(self, seed: int):
        state = seed
        draws = []
        for _ in range(N_H * N_IN + N_OUT * N_H):
            state ^= (state << 13) & 0xFFFFFFFF
            state ^= state >> 17
            state ^= (state << 5) & 0xFFFFFFFF
            draws.append(state % (2 * W_INIT) - W_INIT)
        self.w1 = np.array(draws[:N_H * N_IN], dtype=np.int64).reshape(N_H, N_IN)
        self.w2 = np.array(draws[N_H * N_IN:], dtype=np.int64).reshape(N_OUT, N_H)
        self.b1 = np.zeros(N_H, dtype=np.int64)
        self.b2 = np.zeros(N_OUT, dtype=np.int64)

    @staticmethod
    def sat(v, bits=16):
        return np.clip(v, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)

    def forward(self, x):
        acc = self.w1 @ x + (self.b1 << IN_FRAC)
        h = np.where(acc > 0, self.sat(acc >> (IN_FRAC + W_FRAC - H_FRAC)), 0)
        y = self.sat((self.w2 @ h + (self.b2 << H_FRAC)) >> (H_FRAC + W_FRAC - OUT_FRAC))
        return h, y

    def learn(self, x, t):
        h, y = self.forward(x)
        e = y - t
        d = np.where(h > 0, self.sat((self.w2.T @ e) >> W_FRAC, 32), 0)
        self.w2 = self.sat(self.w2 - ((e[:, None] * h[None, :]) >> (OUT_FRAC + H_FRAC - W_FRAC + LR_SHIFT)))
        self.b2 = self.sat(self.b2 - (e >> (OUT_FRAC - W_FRAC + LR_SHIFT)))
        self.w1 = self.sat(self.w1 - ((d[:, None] * x[None, :]) >> (OUT_FRAC + IN_FRAC - W_FRAC + LR_SHIFT)))
        self.b1 = self.sat(self.b1 - (d >> (OUT_FRAC - W_FRAC + LR_SHIFT)))

    def parameters(self):
        return np.concatenate([self.w1.ravel(), self.b1, self.w2.ravel(), self.b2])


def test_dense_baseline_matches_numpy(tmp_path):
    (tmp_path / "harness.c").write_text(HARNESS)
    exe = tmp_path / "dense"
    defines = [f"-DLPN_DENSE_INPUTS={N_IN}", f"-DLPN_DENSE_OUTPUTS={N_OUT}", f"-DLPN_DENSE_HIDDEN={N_H}",
               f"-DLPN_DENSE_IN_FRAC={IN_FRAC}", f"-DLPN_DENSE_OUT_FRAC={OUT_FRAC}"]
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", *defines, "-I", str(BENCH_SRC), str(BENCH_SRC / "lpn_dense.c"),
                    str(tmp_path / "harness.c"), "-o", str(exe)], check=True, capture_output=True, timeout=60)
    rng = np.random.default_rng(3)
    ref = NumpyDense(7)
    lines, expected = [], []
    for step in range(300):
        x = rng.integers(0, 1 << IN_FRAC, N_IN)
        if step % 50 == 7:
            x = rng.integers(-32768, 32768, N_IN)   # extremes: saturation and negative shifts
        t = np.zeros(N_OUT, dtype=np.int64)
        t[step % N_OUT] = 1 << OUT_FRAC
        if step % 40 == 3:
            t = rng.integers(-32768, 32768, N_OUT)
        lines.append("p " + " ".join(map(str, x)))
        expected.append(ref.forward(x.astype(np.int64))[1])
        lines.append("l " + " ".join(map(str, x)) + " " + " ".join(map(str, t)))
        ref.learn(x.astype(np.int64), t.astype(np.int64))
    done = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=60, check=True)
    rows = done.stdout.splitlines()
    got = np.array([[int(v) for v in row.split()] for row in rows[:-1]])
    assert np.array_equal(got, np.array(expected))
    params = np.array([int(v) for v in rows[-1].split()[1:]])
    assert np.array_equal(params, ref.parameters())
    assert len(set(map(tuple, got))) > 50                 # it really learns: outputs move


def test_counts_scale_with_the_config(report, build_root):
    _, results = report
    digits = results[0]
    tiny = bench_device.measure_target("m4", REPS, "tiny", build_root, runs=1, production=False)
    assert tiny.synapses < digits["synapses"]
    assert tiny.steps["lpn_predict"].mean < digits["steps"]["lpn_predict"]["mean"]
    assert tiny.steps["lpn_learn"].mean < digits["steps"]["lpn_learn"]["mean"]
    assert tiny.steps["dense_learn"].mean < digits["steps"]["dense_learn"]["mean"]
