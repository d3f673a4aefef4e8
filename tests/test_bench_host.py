"""`lpn bench host` prints a table of measured figures (no timing is asserted)."""
from click.testing import CliRunner

from lpn.bench_host import measure, mlp_hidden_for, parameter_count
from lpn.cli import main
from lpn.configs import named


def test_baseline_mlp_has_the_same_number_of_parameters():
    cfg = named("digits")
    params = parameter_count(cfg)
    h = mlp_hidden_for(params, 64, 10)
    mlp = 64 * h + h + 10 * h + 10
    assert abs(mlp - params) <= 75 / 2 + 1


def test_measure_reports_three_models():
    rows = measure("digits", samples=15, repeats=1)
    assert [r["name"].split()[0] for r in rows] == ["LPN", "LPN", "sklearn"]
    assert all(r["samples_per_s"] > 0 and r["updates_per_s"] > 0 for r in rows)


def test_cli_prints_the_table():
    result = CliRunner().invoke(main, ["bench", "host", "--samples", "10", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "vs MLP" in result.output and "LPN fixed" in result.output
