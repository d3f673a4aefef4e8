"""`lpn codegen MODEL --out DIR [--prefix NAME]`: write the C learner of a fixed-point model file."""
from __future__ import annotations

import click

from .model_view import CodegenError


@click.command("codegen")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <prefix>.h and <prefix>.c (created if missing).")
@click.option("--prefix", default=None,
              help="C name prefix of every symbol (default: the model's config name).")
def codegen(model: str, out_dir: str, prefix: str | None) -> None:
    """Generate fixed-point C that learns, from a fixed-point MODEL file.

    The files build with the lpn_core library (firmware/lib/lpn_core; in
    PlatformIO: lib_deps) and hold bit-identical state to the Python model.
    """
    from lpn.modelfile import ModelFileError, load

    from .generator import generate
    from .model_view import build_view

    try:
        fixed = load(model)
        view = build_view(fixed, prefix)
        paths = generate(fixed, out_dir, view.prefix)
    except (ModelFileError, CodegenError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(f"{view.prefix}: {view.synapses} synapses, {view.state_bytes} state bytes, "
               f"model sha256 {view.model_hash[:16]}...")
