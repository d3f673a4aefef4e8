"""Tables in the docs that are generated from the code that defines them.

A doc marks each generated table with a pair of HTML comments; the text between
them is rewritten from the code, and a test checks it is current, so a layout or
command table described in docs/ cannot drift from the one the code uses.
"""
from __future__ import annotations

from typing import Callable


def markers(name: str, how: str) -> tuple[str, str]:
    return f"<!-- generated: {name} ({how}) -->", f"<!-- end generated: {name} -->"


def render_tables(text: str, tables: dict[str, Callable[[], str]], how: str, what: str) -> str:
    """`text` with every marked table replaced by what its function makes now."""
    for name, make in tables.items():
        begin, end = markers(name, how)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"{what}: missing the markers of the {name!r} table")
        text = text[: start + len(begin)] + "\n" + make() + "\n" + text[stop:]
    return text
