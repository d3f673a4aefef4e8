"""The paper's seven experiments meet their claims on both backends, at the quick
sizes and at the full sizes `lpn experiment all` runs by default, and `lpn
experiment` reports them as tables and well-formed JSON."""
from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from lpn.cli import main
from lpn.experiments import EXPERIMENTS, KINDS, ExperimentResult, run

_cache: dict[tuple[str, str, bool], ExperimentResult] = {}
# Every claim is checked at both sizes: quick for a fast signal, full as users run it.
SIZE = pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])


def result(name: str, kind: str, quick: bool) -> ExperimentResult:
    """Each experiment runs once per backend and size, however many tests read it."""
    if (name, kind, quick) not in _cache:
        _cache[name, kind, quick] = run(name, kind, quick=quick)
    return _cache[name, kind, quick]


@pytest.mark.parametrize("kind", KINDS)
@SIZE
def test_regression_is_within_twice_least_squares(kind, quick):
    r = result("regression", kind, quick)
    assert r["lpn_mse"] <= 2.0 * r["least_squares_mse"]
    assert r["lpn_mse"] < 0.1 * r["mean_predictor_mse"], "the targets are learnt, not averaged"
    assert r.passed


@pytest.mark.parametrize("kind", KINDS)
@SIZE
def test_partitioned_task_a_survives_task_b(kind, quick):
    r = result("partitioned", kind, quick)
    assert r["a_before"] >= 0.85, "task A was learnt in the first place"
    assert r["b_after"] >= 0.80, "task B was learnt too"
    assert r["a_before"] - r["a_after"] <= 0.01
    assert r["unpartitioned_drop"] > 0.5, "without tags and masks, B overwrites A"
    assert r.passed


@pytest.mark.parametrize("kind", KINDS)
@SIZE
def test_conflicting_task_b_overwrites_a(kind, quick):
    r = result("conflicting", kind, quick)
    assert r["a_before"] >= 0.95 and r["b_after"] >= 0.90
    assert r["forgetting"] == pytest.approx(r["a_before"] - r["a_after"])
    assert r["forgetting"] >= 0.30
    assert r.passed


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["consolidated", "replay"])
@SIZE
def test_mechanism_halves_the_forgetting_of_conflict(name, kind, quick):
    r = result(name, kind, quick)
    plain = result("conflicting", kind, quick)
    assert r["forgetting_plain"] == pytest.approx(plain["forgetting"]), "the same conflict as experiment 3"
    assert r["forgetting"] <= 0.5 * plain["forgetting"]
    assert r["b_after"] >= 0.80, "task B is still learnt"
    assert r.passed


@pytest.mark.parametrize("kind", KINDS)
@SIZE
def test_structural_plasticity_reaches_far_inputs(kind, quick):
    r = result("structural", kind, quick)
    assert r["needed_connected_fixed"] < 1.0, "fixed wiring cannot see every needed input"
    assert r["outside_reached"] >= 0.5
    assert r["mse_rewiring"] <= 0.5 * r["mse_fixed_wiring"]
    assert r.passed


@pytest.mark.parametrize("kind", KINDS)
@SIZE
def test_hybrid_memory_needs_trails_and_consolidation(kind, quick):
    r = result("hybrid", kind, quick)
    assert r["old_full"] >= 0.9 and r["recent_full"] >= 0.9
    assert min(r["old_no_trails"], r["recent_no_trails"]) < 0.9
    assert min(r["old_no_consolidation"], r["recent_no_consolidation"]) < 0.9
    assert r.passed


def test_experiments_are_deterministic():
    a, b = run("regression", "fixed", quick=True), run("regression", "fixed", quick=True)
    assert a.to_dict()["metrics"] == b.to_dict()["metrics"]


def test_every_experiment_is_registered_in_the_papers_order():
    assert [e.number for e in EXPERIMENTS.values()] == list(range(1, 8))
    with pytest.raises(ValueError, match="unknown experiment"):
        run("telepathy", "float")
    with pytest.raises(ValueError, match="unknown model kind"):
        run("regression", "double")


# ---------------------------------------------------------------------------- CLI
def test_cli_writes_well_formed_json(tmp_path):
    out = tmp_path / "out.json"
    res = CliRunner().invoke(main, ["experiment", "regression", "--quick", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "Synthetic regression" in res.output and "met" in res.output
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["all_claims_met"] is True
    [entry] = data["experiments"]
    assert entry["name"] == "regression" and entry["number"] == 1
    assert set(entry["results"]) == set(KINDS)
    for kind, r in entry["results"].items():
        assert r["kind"] == kind and r["passed"] is True
        assert all(isinstance(v, float) and math.isfinite(v) for v in r["metrics"].values())
        m = r["metrics"]
        assert m["ratio"] == pytest.approx(m["lpn_mse"] / m["least_squares_mse"])


def test_cli_one_kind_and_failed_claim_exit_code(tmp_path, monkeypatch):
    import lpn.commands.experiment as command
    real = command.run

    def failing(name, kind, quick=False):
        r = real(name, kind, quick=quick)
        r.passed = False
        return r
    monkeypatch.setattr(command, "run", failing)
    out = tmp_path / "out.json"
    res = CliRunner().invoke(main, ["experiment", "regression", "--quick", "--kind", "fixed",
                                    "--json", str(out)])
    assert res.exit_code == 1, res.output
    assert "NOT met" in res.output
    data = json.loads(out.read_text())
    assert data["all_claims_met"] is False
    assert list(data["experiments"][0]["results"]) == ["fixed"]


def test_cli_rejects_unknown_names_and_unwritable_json(tmp_path):
    res = CliRunner().invoke(main, ["experiment", "telepathy", "--quick"])
    assert res.exit_code == 2 and "telepathy" in res.output
    missing = tmp_path / "no-such-dir" / "out.json"
    res = CliRunner().invoke(main, ["experiment", "regression", "--quick", "--json", str(missing)])
    assert res.exit_code == 2 and "does not exist" in res.output
    assert not missing.parent.exists()
