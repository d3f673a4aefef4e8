"""MicroPython target: a learner module that runs on a board and learns bit-exactly.

`generate(model, out_dir)` writes, for a fixed-point model named NAME:

- `lpn_NAME.py`: the portable variant (plain bytecode, `array` and ints);
- `lpn_NAME_viper.py`: the fast variant, whose kernels are `@micropython.viper`
  functions that stay exact in 32-bit machine words;
- `lpn_NAME_data.py`: the constant tables both variants import;
- `NAME.lpnstate`: the model's state, in the model file's state layout;
- `manifest.json`: the files, the model hash and the generator version (what
  `lpn mpy deploy` copies).

Every generated file says it is generated, from which model (the hash of
`lpn.modelfile.model_hash`) and by which version.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .view import (TABLE_NOTES, MicroPythonCodegenError, View, build_view, i32_expr, pack_table, u32_expr,
                   viper_bounds)

VARIANTS = ("portable", "viper", "both")
MANIFEST = "manifest.json"

__all__ = ["generate", "generate_from_file", "render", "MicroPythonCodegenError", "VARIANTS", "MANIFEST"]


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=False, lstrip_blocks=False)
    env.filters["bytes_literal"] = lambda values: repr(bytes(values))
    env.filters["packed"] = lambda values, tc: repr(pack_table(tc, list(values)))
    env.globals["u32"] = u32_expr
    env.globals["i32"] = i32_expr
    env.globals["notes"] = TABLE_NOTES
    env.globals["hi32"] = lambda v: v >> 32
    env.globals["lo32"] = lambda v: v & 0xFFFFFFFF
    return env


def _tidy(text: str) -> str:
    # Templates leave runs of blank lines where optional parts are absent.
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and len(out) >= 2 and out[-1] == "" and out[-2] == "":
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def render(model: Any, variant: str = "both") -> dict[str, bytes]:
    """File name -> contents of everything `generate` writes."""
    if variant not in VARIANTS:
        raise MicroPythonCodegenError(f"variant must be one of {VARIANTS}, got {variant!r}")
    view = build_view(model)
    wanted = ("portable", "viper") if variant == "both" else (variant,)
    if "viper" in wanted:
        problems = viper_bounds(view)
        if problems:
            raise MicroPythonCodegenError(
                "the viper variant cannot hold this model in 32-bit words: " + "; ".join(problems)
                + " (the portable variant can: variant='portable')")
    env = _environment()
    files: dict[str, bytes] = {}
    files[view.data_module + ".py"] = _tidy(env.get_template("data.py.j2").render(v=view)).encode()
    for name in wanted:
        module = view.module if name == "portable" else view.viper_module
        text = env.get_template("module.py.j2").render(v=view, variant=name, module_name=module)
        files[module + ".py"] = _tidy(text).encode()
    files[view.state_file] = view.state
    files[MANIFEST] = (json.dumps(_manifest(view, wanted, files), indent=2) + "\n").encode()
    return files


def _manifest(view: View, variants: tuple[str, ...], files: dict[str, bytes]) -> dict[str, Any]:
    modules = {name: (view.module if name == "portable" else view.viper_module) for name in variants}
    return {
        "generator": f"lpncodegen {view.version}",
        "target": "micropython",
        "model": view.name,
        "model_hash": view.model_hash,
        "modules": modules,
        "data_module": view.data_module,
        "state_file": view.state_file,
        "state_bytes": view.state_nbytes,
        "files": sorted(files),
    }


def generate(model: Any, out_dir: str | os.PathLike, variant: str = "both") -> list[Path]:
    """Write the MicroPython learner of a FixedLPN into out_dir; returns the paths written."""
    files = render(model, variant)  # every error happens before the disk is touched
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        written.append(path)
    return written


def generate_from_file(model_path: str | os.PathLike, out_dir: str | os.PathLike,
                       variant: str = "both") -> list[Path]:
    """`lpn codegen MODEL --target micropython --out DIR`: generate from a model file."""
    from lpn import modelfile

    model = modelfile.load(model_path, expect_kind="fixed")
    return generate(model, out_dir, variant)
