"""The cffi harness: the Python model's methods on the generated C, its errors, and its build cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import small_config, stream
from lpn import layout
from lpn.fixed import FixedLPN
from lpncodegen.harness import CompiledLearner, LearnerError, cache_root, status_names
from test_codegen_cases import case_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _harness_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LPN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lpn-cache"))


@pytest.fixture(scope="module")
def data():
    cfg = small_config()
    rows = list(stream(cfg, 300, seed=4, saturate=True))
    X = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    tasks = np.array([r[2] for r in rows])
    return cfg, X, y, tasks


def test_estimator_methods_match_the_python_model(data):
    cfg, X, y, tasks = data
    py, c = FixedLPN(cfg), CompiledLearner(FixedLPN(cfg))
    classes = list(range(cfg.outputs))
    for m in (py, c):
        m.partial_fit(X[:200], y[:200], classes=classes, task=tasks[:200])
    assert c.state_bytes() == py.state_bytes()
    assert np.array_equal(c.predict(X[200:]), py.predict(X[200:]))
    assert np.array_equal(c.predict(X[200:], task=1), py.predict(X[200:], task=1))
    assert c.score(X[200:], y[200:]) == py.score(X[200:], y[200:])
    assert np.array_equal(c.decision_function(X[200:210]), py.decision_function(X[200:210]))
    for m in (py, c):
        m.learn_one(X[250], y[250], task=int(tasks[250]))
    assert c.state_bytes() == py.state_bytes()
    assert c.predict_one(X[251]) == py.predict_one(X[251])
    assert c.get_params()["config"] is cfg


def test_fit_restarts_from_the_generated_state(data):
    cfg, X, y, _ = data
    c = CompiledLearner(FixedLPN(cfg))
    start = c.state_bytes()
    c.fit(X[:50], y[:50])
    first = c.state_bytes()
    c.fit(X[:50], y[:50])
    assert c.state_bytes() == first != start


def test_a_trained_model_generates_a_learner_in_that_state(data):
    cfg, X, y, tasks = data
    py = FixedLPN(cfg)
    py.partial_fit(X[:120], y[:120], classes=list(range(cfg.outputs)), task=tasks[:120])
    c = CompiledLearner(py)
    assert c.state_bytes() == py.state_bytes()
    stats = c.stats()
    assert stats["step"] == py.state["step"] and stats["seen"] == py.state["seen"]
    assert stats["budget"] == [py.state[f"L{i}.budget"] for i in (1, 2)]
    assert stats["loss_fast"] == [py.state[f"L{i}.loss_fast"] for i in (1, 2)]
    assert stats["replay_filled"] == min(py.state["seen"], cfg.replay.capacity)


def test_predict_class_uses_the_task_mask(data):
    cfg, X, _, _ = data
    py, c = FixedLPN(cfg), CompiledLearner(FixedLPN(cfg))
    for x in py._encode_x(X[:30]):
        out = py.predict_q(x)
        for task in range(cfg.tasks.count):
            mask = np.array(cfg.task_mask(task))
            want = int(np.flatnonzero(mask)[np.argmax(out[mask])])
            assert c.predict_class_q(x, task) == want


def test_refused_calls_change_nothing():
    c = CompiledLearner(case_model("frozen3"))  # no replay, consolidation, structural, contrast
    before = c.state_bytes()
    for call in (c.consolidate, c.structural, lambda: c.replay(1),
                 lambda: c.contrast_q(np.zeros(c.n_inputs, dtype=np.int16))):
        with pytest.raises(LearnerError, match="not enabled in this model"):
            call()
    with pytest.raises(ValueError, match="unknown task"):
        c.learn_q(np.zeros(c.n_inputs, dtype=np.int16), np.zeros(c.n_outputs, dtype=np.int16), task=9)
    with pytest.raises(ValueError, match="shape"):
        c.learn_q(np.zeros(c.n_inputs + 1, dtype=np.int16), np.zeros(c.n_outputs, dtype=np.int16))
    assert c.state_bytes() == before

    r = CompiledLearner(FixedLPN(small_config()))
    with pytest.raises(LearnerError, match="no sample is buffered") as err:
        r.replay(2)
    assert status_names()[err.value.status] == "LPN_ERR_REPLAY_EMPTY"


def _mutations(model: FixedLPN) -> dict[str, bytes]:
    """State byte strings that a learner must refuse, by what is wrong with them."""
    fields = model.fields
    good = layout.unpack_state(fields, model.state_bytes())

    def with_change(name, fn):
        values = {k: v.copy() for k, v in good.items()}
        fn(values[name])
        return layout.pack_state(fields, values)

    out = {
        "prng zero": with_change("prng", lambda v: v.fill(0)),
        "task out of range": with_change("task", lambda v: v.fill(model.config.tasks.count)),
        "budget too large": with_change("L1.budget",
                                        lambda v: v.fill(model.topology.layers[0].budget_max + 1)),
        "budget too small": with_change("L2.budget", lambda v: v.fill(0)),
        "count differs": with_change("L1.count", lambda v: v.__setitem__(0, v[0] - 1)),
    }
    used = model.topology.layers[0].count
    k_unused = [(j, k) for j in range(len(used)) for k in range(used[j], model.topology.layers[0].fan_in)]
    if k_unused:
        j, k = k_unused[0]
        out["unused slot weight"] = with_change("L1.w", lambda v: v.__setitem__((j, k), 5))
    below = model.config.sizes[0]
    out["source past the layer below"] = with_change("L1.src", lambda v: v.__setitem__((0, 0), below))
    if not model.config.structural.enabled:
        other = (int(good["L1.src"][0, 0]) + 1) % below
        out["connectivity differs"] = with_change("L1.src", lambda v: v.__setitem__((0, 0), other))
    return out


@pytest.mark.parametrize("name", ["digits", "small_all", "wide"])
def test_invalid_states_are_refused_like_the_python_model(name):
    model = case_model(name)
    c = CompiledLearner(model)
    before = c.state_bytes()
    for why, data in _mutations(model).items():
        with pytest.raises(ValueError):
            FixedLPN(model.config, model.formats).load_state_bytes(data)
        with pytest.raises(LearnerError) as err:
            c.load_state_bytes(data)
        connectivity = why in ("count differs", "connectivity differs")
        expected = "LPN_ERR_CONNECTIVITY" if connectivity else "LPN_ERR_STATE"
        assert status_names()[err.value.status] == expected, why
        assert c.state_bytes() == before, why
    for size in (0, len(before) - 1, len(before) + 1):
        with pytest.raises(LearnerError, match="buffer length differs"):
            c.load_state_bytes(before[:size] if size < len(before) else before + b"\0")
    assert c.state_bytes() == before


def test_boost_must_be_zero_or_one():
    # docs/fixed-point.md section 3: boost is 0 or 1 (the Python model does not check this).
    model = case_model("small_all")
    values = layout.unpack_state(model.fields, model.state_bytes())
    values["L1.boost"][0] = 2
    with pytest.raises(LearnerError, match="no learner can reach"):
        CompiledLearner(model).load_state_bytes(layout.pack_state(model.fields, values))


def test_state_round_trip_then_identical_learning(data):
    cfg, X, y, tasks = data
    py = FixedLPN(cfg)
    py.partial_fit(X[:60], y[:60], classes=list(range(cfg.outputs)), task=tasks[:60])
    c = CompiledLearner(FixedLPN(cfg))  # generated from a fresh model ...
    c.load_state_bytes(py.state_bytes())  # ... then given the trained state
    c.classes_ = py.classes_
    for m in (py, c):
        m.partial_fit(X[60:160], y[60:160], task=tasks[60:160])
    assert c.state_bytes() == py.state_bytes()
    assert {k: np.asarray(v).tolist() for k, v in c.state.items()} == \
        {k: np.asarray(v).tolist() for k, v in layout.unpack_state(py.fields, py.state_bytes()).items()}


def test_build_cache_is_outside_the_source_tree_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("LPN_CACHE_DIR", str(tmp_path))
    model = FixedLPN(small_config())
    first = CompiledLearner(model)
    assert first.build.library.parent == cache_root() == tmp_path / "harness"
    stamp = first.build.library.stat().st_mtime_ns
    second = CompiledLearner(model)
    assert second.build.library == first.build.library
    assert second.build.library.stat().st_mtime_ns == stamp  # not rebuilt
    monkeypatch.delenv("LPN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "lpn-edge" / "harness"
    assert ROOT not in cache_root().parents


def test_set_params_rebuilds_for_the_new_config():
    c = CompiledLearner(FixedLPN(small_config()))
    c.set_params(learning__eta=0.5)
    assert c.config.learning.eta == 0.5
    py = FixedLPN(c.config)
    assert c.state_bytes() == py.state_bytes()
