"""`lpn bench micropython`: time per learn and predict step of both generated variants.

Both variants run under the MicroPython unix port on the same model and the same
samples, one after the other in the same run, and the viper/bytecode ratio is
their quotient, so it depends little on the machine. Each variant replays the
stream `repeat` times from the same state and the fastest pass counts (the one a
busy machine disturbed least). A learning step includes any replay it triggers,
as it does on a board.

The unix port on x86-64 is far faster than a microcontroller; the absolute times
say little about a board, the ratio says how much viper gains.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import generate
from .harness import DRIVER, LEARN, PREDICT, Op, encode
from .toolchain import ToolMissing, micropython_command


def _samples(model: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits images when the model reads 8x8 inputs, uniform noise otherwise; labels per task."""
    cfg = model.config
    if cfg.sizes[0] == 64:
        from lpn.datasets import digits
        X, y = digits()
        X, y = X[:n], np.asarray(y[:n]) % cfg.sizes[-1]
    else:
        rng = np.random.default_rng(seed)
        X = rng.uniform(0, 1, (n, cfg.sizes[0]))
        y = rng.integers(0, cfg.sizes[-1], n)
    return X, y


def _ops(model: Any, learns: int, predicts: int, seed: int = 0) -> list[Op]:
    cfg = model.config
    X, y = _samples(model, max(learns, predicts), seed)
    Xq = model.quantise_input(X)
    task_of: dict[int, int] = {}  # output -> the first task that learns it
    for task in range(cfg.tasks.count):
        for o in np.flatnonzero(cfg.task_mask(task)):
            task_of.setdefault(int(o), task)
    ops = []
    for i in range(learns):
        label = int(y[i])
        t = np.zeros((1, cfg.sizes[-1]))
        t[0, label] = 1.0
        ops.append(Op(LEARN, Xq[i], model.quantise_target(t)[0], task_of.get(label, 0)))
    ops += [Op(PREDICT, Xq[i]) for i in range(predicts)]
    return ops


def measure(model: Any, learns: int = 200, predicts: int = 200, repeat: int = 3,
            timeout: float = 1200) -> dict[str, dict[str, float]]:
    """{variant: {"learn_us": ..., "predict_us": ...}} on the unix port."""
    ops = _ops(model, learns, predicts)
    cfg = model.config
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lpn-mpy-bench-") as tmp:
        generate(model, tmp)
        ops_file = Path(tmp) / "ops.bin"
        ops_file.write_bytes(encode(ops, cfg.sizes[0], cfg.sizes[-1]))
        for variant, module in (("bytecode", f"lpn_{cfg.name}"), ("viper", f"lpn_{cfg.name}_viper")):
            cmd = micropython_command() + [str(DRIVER), "bench", module, str(ops_file), str(repeat)]
            proc = subprocess.run(cmd, cwd=tmp, env=dict(os.environ, MICROPYPATH=tmp),
                                  capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"MicroPython ({variant}) failed:\n{proc.stdout}\n{proc.stderr}")
            words = proc.stdout.split()
            figures = {words[i]: float(words[i + 1]) for i in range(0, len(words) - 1, 2)}
            out[variant] = {"learn_us": figures["learn_us"], "predict_us": figures["predict_us"]}
    return out


def _load_model(model_path: str | None, config: str) -> Any:
    if model_path:
        from lpn import modelfile
        return modelfile.load(model_path, expect_kind="fixed")
    from lpn.config import LPNConfig
    from lpn.configs import named
    from lpn.fixed import FixedLPN
    cfg = LPNConfig.load(config) if config.endswith((".toml", ".json")) else named(config)
    return FixedLPN(cfg)


@click.command("micropython")
@click.argument("model_path", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--config", default="digits", show_default=True,
              help="Shipped config name or a .toml/.json path (a new model), when no MODEL is given.")
@click.option("--learns", default=200, show_default=True, help="Learning steps timed per pass.")
@click.option("--predicts", default=200, show_default=True, help="Predictions timed per pass.")
@click.option("--repeat", default=3, show_default=True, help="Passes per variant; the fastest counts.")
def bench_micropython(model_path: str | None, config: str, learns: int, predicts: int, repeat: int) -> None:
    """Time per learn and predict step of the portable and viper MicroPython learners."""
    from rich.console import Console
    from rich.table import Table

    if learns < 1 or predicts < 1 or repeat < 1:
        raise click.BadParameter("--learns, --predicts and --repeat must be at least 1")
    model = _load_model(model_path, config)
    try:
        figures = measure(model, learns, predicts, repeat)
    except ToolMissing as exc:
        raise click.ClickException(str(exc)) from exc
    base = figures["bytecode"]
    table = Table(title=f"MicroPython unix port, model {model.config.name!r}: {learns} learning steps, "
                        f"{predicts} predictions, best of {repeat}")
    for col in ("variant", "learn µs/step", "predict µs/step", "learn vs bytecode", "predict vs bytecode"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for variant, f in figures.items():
        table.add_row(variant, f"{f['learn_us']:,.0f}", f"{f['predict_us']:,.0f}",
                      f"{f['learn_us'] / base['learn_us']:.3f}", f"{f['predict_us'] / base['predict_us']:.3f}")
    Console().print(table)
    v = figures["viper"]
    click.echo(f"viper/bytecode time ratio: learn {v['learn_us'] / base['learn_us']:.3f}, "
               f"predict {v['predict_us'] / base['predict_us']:.3f} "
               f"(speed-up {base['learn_us'] / v['learn_us']:.1f}x and {base['predict_us'] / v['predict_us']:.1f}x)")
