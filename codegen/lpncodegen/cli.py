"""`lpn codegen MODEL --out DIR`: write the C (or MicroPython) learner of a fixed-point model file."""
from __future__ import annotations

import click

from lpn.commands.errors import UserError

from .model_view import CodegenError


@click.command("codegen")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if missing). c: <prefix>.h and <prefix>.c; "
                   "micropython: the lpn_<name>*.py modules, <name>.lpnstate, manifest.json.")
@click.option("--prefix", default=None,
              help="C name prefix of every symbol (default: the model's config name).")
@click.option("--target", type=click.Choice(["c", "micropython"]), default="c", show_default=True,
              help="c: <prefix>.h/.c for a firmware; micropython: a module to copy to a board.")
@click.option("--variant", type=click.Choice(["both", "portable", "viper"]), default="both",
              show_default=True, help="MicroPython only: plain bytecode, @micropython.viper, or both.")
def codegen(model: str, out_dir: str, prefix: str | None, target: str, variant: str) -> None:
    """Generate a learner (C or MicroPython) from a fixed-point MODEL file.

    Both hold bit-identical state to the Python model. --target c (default)
    writes C that builds with the lpn_core library (firmware/lib/lpn_core; in
    PlatformIO: lib_deps). --target micropython writes a module to copy to a
    board (see lpn mpy deploy and docs/micropython.md).
    """
    from lpn.modelfile import ModelFileError, load

    if target == "micropython":
        from .micropython import generate_from_file
        try:
            for path in generate_from_file(model, out_dir, variant):
                click.echo(f"wrote {path}")
        except (ModelFileError, CodegenError, ValueError, OSError) as exc:
            raise UserError(str(exc)) from None
        return
    from .generator import generate
    from .model_view import build_view

    try:
        fixed = load(model)
        view = build_view(fixed, prefix)
        paths = generate(fixed, out_dir, view.prefix)
    except (ModelFileError, CodegenError, OSError) as exc:
        raise UserError(str(exc)) from None
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(f"{view.prefix}: {view.synapses} synapses, {view.state_bytes} state bytes, "
               f"model sha256 {view.model_hash[:16]}...")
