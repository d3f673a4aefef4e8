"""Shipped configs: they validate, build, fit their targets; user configs name bad fields."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lpn import configs, layout
from lpn.config import ConfigError, LPNConfig
from lpn.fixed import FixedLPN
from lpn.float_model import FloatLPN
from lpn.topology import build_topology

ATMEGA328P_RAM = 2048


def test_the_documented_configs_are_shipped():
    assert {"digits", "tiny"} <= set(configs.names())
    assert configs.names() == sorted(configs.names())


@pytest.mark.parametrize("name", configs.names())
def test_shipped_config_validates_builds_and_round_trips(name):
    cfg = configs.named(name)
    assert cfg.name == name
    topo = build_topology(cfg)
    for lt in topo.layers:
        assert lt.count.min() >= 1
    assert LPNConfig.from_json(cfg.to_json()) == cfg
    for model_class in (FloatLPN, FixedLPN):
        model = model_class.new(cfg)
        assert len(model.state_bytes()) == layout.state_nbytes(
            layout.state_fields(cfg, topo, model.kind))


def test_digits_structure():
    cfg = configs.named("digits")
    assert cfg.input.shape == [8, 8]
    hidden, output = cfg.layers
    assert hidden.position == "grid" and hidden.activation == "relu"
    assert 2.5 <= hidden.radius <= 3.0 and hidden.fan_in == 16
    assert output.units == 10 and output.position == "center" and math.isinf(output.radius)
    assert output.activation == "identity"
    topo = build_topology(cfg)
    # Every output reads every hidden unit.
    assert np.all(topo.layers[1].count == hidden.units)
    assert cfg.tasks.count == 5
    assert cfg.tasks.masks == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert cfg.consolidation.enabled and cfg.replay.enabled
    replay_bytes = sum(f.nbytes for f in layout.state_fields(cfg, topo, "fixed")
                       if f.name.startswith("replay."))
    assert 0 < replay_bytes <= 4096


def test_tiny_fits_an_atmega328p():
    cfg = configs.named("tiny")
    topo = build_topology(cfg)
    state = layout.state_nbytes(layout.state_fields(cfg, topo, "fixed"))
    formats = layout.state_nbytes(layout.format_fields(cfg))
    # Well under 1 KB, leaving the rest of the 2 KB for the stack and a protocol buffer.
    assert state + formats < 1024 * 3 // 4
    assert state + formats < ATMEGA328P_RAM // 2
    assert cfg.sizes[0] <= 16 and cfg.outputs == 4
    assert all(layer.fan_in <= 8 for layer in cfg.layers)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError) as info:
        configs.named("digitz")
    assert "digitz" in str(info.value) and "digits" in str(info.value)


def test_resolve_reads_names_and_paths(tmp_path):
    assert configs.resolve("tiny") == configs.named("tiny")
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[[layers]]\nshape = [3]\nposition = "center"\n')
    assert configs.resolve(str(path)).name == "mine"
    json_path = tmp_path / "mine.json"
    json_path.write_text(configs.named("tiny").to_json())
    assert configs.resolve(json_path) == configs.named("tiny")


@pytest.mark.parametrize("body, field", [
    ('[[layers]]\nshape = [3]\nposition = "center"\n[learning]\neta = "fast"\n', "learning.eta"),
    ('[[layers]]\nshape = [3]\nposition = "center"\n[replay]\ncapacty = 3\n', "replay.capacty"),
    ('[[layers]]\nshape = [3]\nposition = "center"\nactivation = "tanh"\n', "layers[0].activation"),
    ('[[layers]]\nposition = "center"\n', "layers[0].shape"),
])
def test_bad_user_toml_names_the_file_and_field(tmp_path, body, field):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        configs.resolve(str(path))
    assert str(path) in str(info.value) and field in str(info.value)


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[learning\neta = 1\n")
    with pytest.raises(ConfigError, match="not valid"):
        configs.resolve(str(path))


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        configs.resolve(str(tmp_path / "absent.toml"))
