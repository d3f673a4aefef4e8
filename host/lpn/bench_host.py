"""`lpn bench host`: learning throughput of the float and fixed models on the host.

The baseline is scikit-learn's MLPClassifier learning the same samples one at a
time with partial_fit, sized to the same number of parameters, measured in the
same run so the ratios do not depend on the machine.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from .config import LPNConfig
from .configs import named
from .datasets import digits


def parameter_count(cfg: LPNConfig) -> int:
    from .topology import build_topology
    topo = build_topology(cfg)
    return topo.synapses + sum(lt.units for lt in topo.layers)


def mlp_hidden_for(params: int, n_in: int, n_out: int) -> int:
    """Hidden width of a one-hidden-layer MLP with about `params` weights and biases."""
    return max(1, round((params - n_out) / (n_in + 1 + n_out)))


def _time(fn: Callable[[], Any], repeats: int) -> float:
    """Best wall time of `repeats` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(config: str | LPNConfig = "digits", samples: int = 500, repeats: int = 3) -> list[dict[str, Any]]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    import warnings

    from .fixed import FixedLPN
    from .float_model import FloatLPN

    cfg = named(config) if isinstance(config, str) else config
    X, y = digits()
    X, y = X[:samples], y[:samples]
    classes = np.unique(y)
    rows = []
    params = parameter_count(cfg)
    for kind in (FloatLPN, FixedLPN):
        holder: dict[str, Any] = {}

        def run() -> None:
            m = kind(cfg)
            m.partial_fit(X[:1], y[:1], classes=classes)  # declare classes outside the loop
            m.synapse_updates = 0
            for i in range(len(X)):
                m.partial_fit(X[i:i + 1], y[i:i + 1])
            holder["m"] = m
        sec = _time(run, repeats)
        rows.append(dict(name=f"LPN {kind.kind}", params=params, seconds=sec,
                         samples_per_s=len(X) / sec, updates_per_s=holder["m"].synapse_updates / sec))
    hidden = mlp_hidden_for(params, cfg.sizes[0], cfg.sizes[-1])
    mlp_params = cfg.sizes[0] * hidden + hidden + hidden * cfg.sizes[-1] + cfg.sizes[-1]

    def run_mlp() -> None:
        mlp = MLPClassifier(hidden_layer_sizes=(hidden,), random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.partial_fit(X[:1], y[:1], classes=classes)
            for i in range(len(X)):
                mlp.partial_fit(X[i:i + 1], y[i:i + 1])
    sec = _time(run_mlp, repeats)
    rows.append(dict(name=f"sklearn MLP ({hidden} hidden)", params=mlp_params, seconds=sec,
                     samples_per_s=len(X) / sec, updates_per_s=mlp_params * len(X) / sec))
    return rows


@click.command("host")
@click.option("--config", "config", default="digits", show_default=True, help="Shipped config name or a .toml/.json path.")
@click.option("--samples", default=500, show_default=True, help="Samples learnt one at a time per run.")
@click.option("--repeats", default=3, show_default=True, help="Runs per model; the best is kept.")
def bench_host(config: str, samples: int, repeats: int) -> None:
    """Learning throughput of the float and fixed models against scikit-learn's MLP."""
    cfg = LPNConfig.load(config) if config.endswith((".toml", ".json")) else named(config)
    rows = measure(cfg, samples, repeats)
    base = rows[-1]["samples_per_s"]
    table = Table(title=f"Host learning throughput, config {cfg.name!r}, {samples} samples one at a time")
    for col in ("model", "parameters", "samples/s", "updates/s", "vs MLP"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for r in rows:
        table.add_row(r["name"], str(r["params"]), f"{r['samples_per_s']:,.0f}",
                      f"{r['updates_per_s']:,.0f}", f"{r['samples_per_s'] / base:.2f}x")
    Console().print(table)
