"""Render the C learner of one fixed-point model from the templates."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2

from .model_view import ModelView, build_view

TEMPLATES = ("learner.h.j2", "learner.c.j2")
HARNESS_TEMPLATE = "harness.c.j2"  # desktop-only entry points, never part of `lpn codegen` output


def c_literal(value: int, ctype: str = "int") -> str:
    """An integer literal of `ctype` that is valid C99 on 16- and 32-bit targets alike."""
    value = int(value)
    if ctype == "int32_t":
        return "(-2147483647L - 1)" if value == -2**31 else f"{value}L"
    if ctype == "uint32_t":
        return f"{value}UL"
    if ctype in ("uint8_t", "uint16_t"):
        return f"{value}u"
    return str(value)


def c_array(values: list[int], ctype: str = "int", per_line: int = 16) -> str:
    items = [c_literal(v, ctype) if ctype in ("int32_t", "uint32_t") else str(int(v)) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + line for line in lines)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lpncodegen", "templates"),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["carray"] = c_array
    env.filters["clit"] = c_literal
    return env


def render(model: Any, prefix: str | None = None, harness: bool = False) -> dict[str, str]:
    """{file name: C source} of the learner for `model` (a FixedLPN).

    With harness=True it adds `<prefix>_harness.c`, the desktop harness's batched
    entry points.
    """
    view: ModelView = build_view(model, prefix)
    env = _environment()
    ctx = {"v": view, "p": view.prefix, "P": view.prefix.upper()}
    out = {}
    for name in TEMPLATES:
        target = f"{view.prefix}{Path(name).suffixes[0]}"
        out[target] = env.get_template(name).render(**ctx)
    if harness:
        out[f"{view.prefix}_harness.c"] = env.get_template(HARNESS_TEMPLATE).render(**ctx)
    return out


def generate(model: Any, out_dir: str | os.PathLike, prefix: str | None = None) -> list[Path]:
    """Write `<prefix>.h` and `<prefix>.c` into out_dir (created if missing); returns their paths.

    `model` is a FixedLPN, or the path of a model file holding one. Everything
    is rendered before the first file is written, so an error writes nothing.
    """
    if isinstance(model, (str, os.PathLike)):
        from lpn.modelfile import load
        model = load(model)
    sources = render(model, prefix)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in sources.items():
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def core_dir() -> Path:
    """The lpn_core library's source folder (firmware/lib/lpn_core/src in the source tree)."""
    here = Path(__file__).resolve()
    for base in here.parents:
        candidate = base / "firmware" / "lib" / "lpn_core" / "src"
        if (candidate / "lpn_core.h").is_file():
            return candidate
    raise FileNotFoundError("lpn_core (firmware/lib/lpn_core/src) not found next to lpncodegen; "
                            "the harness needs the project's source tree")


def core_sources() -> list[Path]:
    return sorted(core_dir().glob("*.c"))
