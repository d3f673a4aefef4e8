"""`lpn continual`: the metrics, the protocol, the backends' agreement and the command's errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import configs
from lpn.cli import main
from lpn.continual import (BackendSpec, average_accuracy, backward_transfer, digits_stream, forgetting,
                           make_backend, per_task_forgetting, run_method)
from lpn.continual.metrics import just_learnt_accuracy
from lpn.continual.targets import TargetCoding

NAN = math.nan


def invoke(*args):
    return CliRunner().invoke(main, ["continual", *map(str, args)])


# ---------------------------------------------------------------------------- metrics
R3 = [[0.9, NAN, NAN],
      [0.7, 0.8, NAN],
      [0.6, 0.9, 1.0]]


def test_average_accuracy_is_the_mean_of_the_last_row():
    assert average_accuracy(R3) == pytest.approx((0.6 + 0.9 + 1.0) / 3)


def test_forgetting_takes_each_tasks_best_before_the_end():
    # task 0: best of R[0..1][0] = 0.9, final 0.6 -> 0.3; task 1: best 0.8, final 0.9 -> -0.1
    assert per_task_forgetting(R3) == pytest.approx([0.3, -0.1])
    assert forgetting(R3) == pytest.approx(0.1)
    # The best, not the first: a task that improved then dropped forgets from its peak.
    assert forgetting([[0.5, NAN], [0.2, 1.0]]) == pytest.approx(0.3)
    assert forgetting([[0.5, NAN, NAN], [0.9, 1.0, NAN], [0.4, 1.0, 1.0]]) == pytest.approx((0.5 + 0.0) / 2)


def test_backward_transfer_and_just_learnt():
    assert backward_transfer(R3) == pytest.approx(((0.6 - 0.9) + (0.9 - 0.8)) / 2)
    assert just_learnt_accuracy(R3) == pytest.approx(0.9)


def test_single_task_has_no_forgetting_and_bad_matrices_are_refused():
    assert math.isnan(forgetting([[0.7]]))
    assert average_accuracy([[0.7]]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="square"):
        average_accuracy([[0.1, 0.2]])
    with pytest.raises(ValueError, match="missing entry"):
        forgetting([[0.5, NAN], [NAN, 0.5]])


# ---------------------------------------------------------------------------- protocol
def test_reduced_run_writes_a_well_formed_report_and_prints_the_table(tmp_path):
    out = tmp_path / "report.json"
    result = invoke("--backend", "fixed", "--max-train", 30, "--max-test", 20, "--json", out)
    assert result.exit_code == 0, result.output
    assert "LPN fixed: accuracy (%) after learning task i" in result.output
    assert "forgetting" in result.output and "MLP + replay" in result.output
    report = json.loads(out.read_text())
    assert report["scenario"] == "task" and report["task_id_at_test"] is True
    assert report["config"]["name"] == "digits"
    assert report["targets"] == "onehot" and report["epochs"] == 1
    assert [t["train"] for t in report["data"]["tasks"]] == [30] * 5
    assert [t["classes"] for t in report["data"]["tasks"]] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    methods = {m["name"]: m for m in report["methods"]}
    assert {"LPN fixed", "MLP fine-tune", "SGD fine-tune", "MLP + replay", "MLP joint",
            "LPN float joint"} <= set(methods)
    for m in report["methods"]:
        R = m["accuracy_matrix"]
        if m["role"] == "upper bound":
            assert len(R) == 1 and len(R[0]) == 5 and m["forgetting"] is None
            continue
        assert len(R) == 5 and all(len(row) == 5 for row in R)
        for i, row in enumerate(R):  # NaN (null) exactly above the diagonal
            assert all((v is None) == (j > i) for j, v in enumerate(row))
            assert all(0 <= v <= 1 for v in row if v is not None)
        assert m["final_accuracy"] == R[-1]
        assert m["average_accuracy"] == pytest.approx(np.mean(R[-1]))
        assert m["forgetting"] == pytest.approx(forgetting([[NAN if v is None else v for v in r] for r in R]))
        assert len(m["per_task_forgetting"]) == 4
    # The replay budget is the LPN's buffer in the fixed layout; the MLP's fits inside it.
    lpn_bytes = methods["LPN fixed"]["replay_bytes"]
    assert 0 < lpn_bytes <= 4096
    assert 0.9 * lpn_bytes < methods["MLP + replay"]["replay_bytes"] <= lpn_bytes


def test_consolidation_reduces_forgetting_under_conflict():
    """Permuted digits: every task rewrites the same synapses with conflicting inputs, so a
    learner without consolidation forgets; anchoring the consolidated weights must help.
    Single runs are noisy, so the forgetting is averaged over three seeds."""
    cfg = configs.named("digits_domain_incremental").replace(**{"replay.enabled": False})
    forgot = {True: [], False: []}
    for seed in range(3):
        stream = digits_stream("domain", seed=seed, max_train=400, max_test=150)
        for enabled in (True, False):
            spec = BackendSpec(cfg.replace(**{"consolidation.enabled": enabled}), stream.classes,
                               stream.task_classes, seed)
            forgot[enabled].append(run_method(make_backend("float", spec), stream, seed=seed).forgetting)
    with_c, without = np.mean(forgot[True]), np.mean(forgot[False])
    assert without > 0.2  # forgetting really happens here
    assert with_c < without - 0.05, forgot


def test_c_backend_state_equals_the_fixed_backend_after_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LPN_CACHE_DIR", str(tmp_path / "cache"))
    stream = digits_stream("class", max_train=40, max_test=20)
    cfg = configs.named("digits_class_incremental")
    results, states = {}, {}
    for name in ("fixed", "c"):
        backend = make_backend(name, BackendSpec(cfg, stream.classes, stream.task_classes,
                                                 targets=TargetCoding.parse("soft")))
        results[name] = run_method(backend, stream, epochs=2)
        states[name] = backend.state_bytes()
    assert states["c"] == states["fixed"]
    assert np.array_equal(results["c"].matrix, results["fixed"].matrix, equal_nan=True)
    fresh = make_backend("fixed", BackendSpec(cfg, stream.classes, stream.task_classes)).state_bytes()
    assert states["fixed"] != fresh  # something was learnt


# ---------------------------------------------------------------------------- errors
def _write(path, text):
    path.write_text(text)
    return path


N_FEATURES = 16  # the tiny config's 4x4 input
HEADER = ",".join(f"f{i}" for i in range(N_FEATURES))
ZEROS = ",".join(["0"] * N_FEATURES)


@pytest.fixture
def good_files(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for t, labels in enumerate(([0, 1], [2, 3])):
        rows = [HEADER + ",target"]
        for i in range(20):
            rows.append(",".join(f"{v:.3f}" for v in rng.uniform(0, 1, N_FEATURES)) + f",{labels[i % 2]}")
        files.append(_write(tmp_path / f"task{t}.csv", "\n".join(rows) + "\n"))
    return files


@pytest.fixture
def csv_config(tmp_path):
    cfg = configs.named("tiny").replace(**{"tasks.count": 2})
    assert cfg.sizes[0] == N_FEATURES and cfg.outputs == 4
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    return cfg, path


def test_csv_files_run(good_files, csv_config):
    _, path = csv_config
    result = invoke(*sum((["--task-file", f] for f in good_files), []), "--label", "target",
                    "--config", path, "--scenario", "class", "--backend", "fixed", "--no-baselines")
    assert result.exit_code == 0, result.output
    assert "task 1: task1: classes 2, 3" in result.output and "LPN fixed" in result.output


@pytest.mark.parametrize("problem, text, message", [
    ("missing label", f"{HEADER},y\n{ZEROS},1\n", "no label column 'target'"),
    ("ragged", f"{HEADER},target\n{ZEROS},1\n{ZEROS}\n", "line 3: 16 values, the header has 17 columns"),
    ("text", f"{HEADER},target\n{ZEROS},1\n0,0,zero{ZEROS[5:]},1\n", "column 3 ('f2')"),
    ("classes the config cannot hold", f"{HEADER},target\n" + "".join(f"{ZEROS},{k % 9}\n" for k in range(30)),
     "label 4 is not one of config 'tiny'"),
])
def test_bad_csv_file_gives_a_one_line_error(tmp_path, good_files, csv_config, problem, text, message):
    _, path = csv_config
    bad = _write(tmp_path / "bad.csv", text)
    result = invoke("--task-file", good_files[0], "--task-file", bad, "--label", "target",
                    "--config", path, "--backend", "fixed", "--no-baselines")
    assert result.exit_code == 2, result.output  # a user error, not a crash (a traceback exits 1)
    line = result.output.strip()
    assert line.count("\n") == 0 and line.startswith("error: "), line
    assert "bad.csv" in line and message in line, line


def test_fewer_than_two_task_files_and_unknown_backend_are_errors(good_files, csv_config):
    _, path = csv_config
    result = invoke("--task-file", good_files[0], "--label", "target", "--config", path)
    assert result.exit_code == 2 and "at least 2 task files" in result.output, result.output
    result = invoke("--backend", "gpu", "--max-train", 5)
    assert result.exit_code == 2, result.output
    assert "unknown backend 'gpu'" in result.output and "float" in result.output
