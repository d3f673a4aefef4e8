"""`lpn bench ...`: benchmarks that print figures, each backend in its own module."""
from __future__ import annotations

import click

from lpn.cli import LazyGroup

BENCHES = {
    "host": "lpn.bench_host:bench_host",
    "codegen": "lpncodegen.bench:bench_codegen",
    "micropython": "lpncodegen.micropython.bench:bench_micropython",
    "device": "lpn.bench_device:bench_device",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Measure speed and memory; every figure is a ratio against a baseline run alongside."""
