"""The LPN model file: one versioned, checksummed binary file for float and fixed models.

The byte layout is defined once, here: the header table `HEADER`, the order of the
blocks that follow it (`BLOCKS`), and, through `layout`, the formats and state
blocks. `docs/model-file.md` holds tables generated from these definitions and a
test regenerates them, so the document cannot drift from the code
(`python -m lpn.modelfile docs/model-file.md` rewrites them after a change).

Reading is all-or-nothing: every check runs on the bytes before any model object
exists, so a bad file raises `ModelFileError` and nothing is half-loaded. Writing
goes through a temporary file in the same directory that replaces the old file
only once it is complete and on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import layout
from .docgen import render_tables
from .config import InputConfig, LayerConfig, LPNConfig
from .topology import build_topology

MAGIC = b"LPNMODEL"
VERSION = 1
KIND_CODES = {"float": 0, "fixed": 1}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}


class ModelFileError(ValueError):
    """A model file is unreadable, truncated, corrupted or of the wrong kind or version."""


@dataclass(frozen=True)
class HeaderField:
    name: str
    code: str        # struct code, little-endian
    meaning: str

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.code)


# The header, in file order. Sizes are u32, so each block is below 4 GiB.
HEADER = (
    HeaderField("magic", "8s", f"the ASCII bytes `{MAGIC.decode()}`"),
    HeaderField("version", "H", f"format version; this is version {VERSION}"),
    HeaderField("kind", "B", "model kind: " + ", ".join(f"{c} = {n}" for n, c in KIND_CODES.items())),
    HeaderField("flags", "B", "reserved, must be 0"),
    HeaderField("config_size", "I", "bytes of the config block"),
    HeaderField("formats_size", "I", "bytes of the formats block (0 for a float model)"),
    HeaderField("state_size", "I", "bytes of the state block"),
)
HEADER_STRUCT = struct.Struct("<" + "".join(f.code for f in HEADER))
HEADER_SIZE = HEADER_STRUCT.size
CRC_STRUCT = struct.Struct("<I")

# The blocks after the header, in file order; each one's size is `<name>_size`.
BLOCKS = (
    ("config", "the model's `LPNConfig` as compact JSON (`LPNConfig.to_json`), UTF-8"),
    ("formats", "fixed models only: the number formats and constants, in the order of the "
                "formats table below"),
    ("state", "the learnable state, in the order of the state table below "
              "(the model's `state_bytes()`)"),
)


# ---------------------------------------------------------------------------
# Writing
def _blocks(model: Any) -> tuple[str, dict[str, bytes]]:
    """The model's kind and the bytes of each block, checked against the layout."""
    kind = getattr(model, "kind", None)
    if kind not in KIND_CODES:
        raise TypeError(f"not an LPN model (kind {kind!r}); expected one of {tuple(KIND_CODES)}")
    cfg = model.config
    config = cfg.to_json().encode("utf-8")
    formats = b""
    if kind == "fixed":
        formats = layout.pack_state(layout.format_fields(cfg), model.formats.to_dict())
    state = model.state_bytes()
    need = layout.state_nbytes(layout.state_fields(cfg, model.topology, kind))
    if len(state) != need:
        raise ValueError(f"model state is {len(state)} bytes, the layout needs {need}")
    return kind, {"config": config, "formats": formats, "state": state}


def to_bytes(model: Any) -> bytes:
    """The whole model file as bytes."""
    kind, blocks = _blocks(model)
    values = {"magic": MAGIC, "version": VERSION, "kind": KIND_CODES[kind], "flags": 0}
    values.update({f"{name}_size": len(blocks[name]) for name, _ in BLOCKS})
    head = HEADER_STRUCT.pack(*(values[f.name] for f in HEADER))
    body = head + b"".join(blocks[name] for name, _ in BLOCKS)
    return body + CRC_STRUCT.pack(zlib.crc32(body))


def save(model: Any, path: str | os.PathLike) -> None:
    """Write `model` to `path` atomically: a crash or an error leaves any old file intact."""
    data = to_bytes(model)  # every model-level error happens before the disk is touched
    path = Path(path)
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            os.chmod(tmp, _file_mode(path))
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ModelFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        raise
    _sync_directory(directory)


def _file_mode(path: Path) -> int:
    # mkstemp makes the file private; the model file should get the permissions a
    # plain open() would give it, or keep those of the file it replaces.
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_directory(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed too.
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def model_hash(model: Any) -> str:
    """SHA-256 (hex) identifying a model's kind, config, formats and state.

    Each part is preceded by its length as u32 little-endian, so no two different
    models hash the same bytes. The header and checksum are not part of it: the
    hash names the model, not one file version's packaging.
    """
    kind, blocks = _blocks(model)
    h = hashlib.sha256()
    for part in (kind.encode("ascii"), blocks["config"], blocks["formats"], blocks["state"]):
        h.update(CRC_STRUCT.pack(len(part)))
        h.update(part)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Reading
def load(path: str | os.PathLike, expect_kind: str | None = None) -> Any:
    """Read a model file, returning a FloatLPN or FixedLPN. Raises ModelFileError."""
    if expect_kind is not None and expect_kind not in KIND_CODES:
        raise ValueError(f"expect_kind must be one of {tuple(KIND_CODES)}, got {expect_kind!r}")
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return from_bytes(data, expect_kind=expect_kind, name=str(path))


def from_bytes(data: bytes, expect_kind: str | None = None, name: str = "model file") -> Any:
    def fail(why: str) -> ModelFileError:
        return ModelFileError(f"{name}: {why}")

    if len(data) < HEADER_SIZE:
        if not data:
            raise fail("truncated: the file is empty")
        if not MAGIC.startswith(data[: len(MAGIC)]):
            raise fail("not an LPN model file (wrong magic bytes)")
        raise fail(f"truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    header = dict(zip((f.name for f in HEADER), HEADER_STRUCT.unpack_from(data)))
    if header["magic"] != MAGIC:
        raise fail("not an LPN model file (wrong magic bytes)")
    if header["version"] != VERSION:
        raise fail(f"unsupported format version {header['version']} (this lpn reads version {VERSION})")
    if header["kind"] not in KIND_NAMES:
        raise fail(f"unknown model kind code {header['kind']} (known: {KIND_NAMES})")
    if header["flags"] != 0:
        raise fail(f"unsupported flags {header['flags']:#04x} in the header (expected 0)")
    total = HEADER_SIZE + sum(header[f"{b}_size"] for b, _ in BLOCKS) + CRC_STRUCT.size
    if len(data) < total:
        raise fail(f"truncated: {len(data)} bytes, the header announces {total}")
    if len(data) > total:
        raise fail(f"corrupted: {len(data) - total} unexpected bytes after the checksum")
    (stored_crc,) = CRC_STRUCT.unpack_from(data, total - CRC_STRUCT.size)
    if zlib.crc32(data[: total - CRC_STRUCT.size]) != stored_crc:
        raise fail("corrupted: CRC32 checksum mismatch")
    kind = KIND_NAMES[header["kind"]]
    if expect_kind is not None and kind != expect_kind:
        raise fail(f"wrong kind: this is a {kind} model, a {expect_kind} model is needed")

    blocks: dict[str, bytes] = {}
    pos = HEADER_SIZE
    for block, _ in BLOCKS:
        size = header[f"{block}_size"]
        blocks[block] = data[pos: pos + size]
        pos += size
    return _build_model(kind, blocks, fail)


def _build_model(kind: str, blocks: dict[str, bytes], fail) -> Any:
    try:
        cfg = LPNConfig.from_json(blocks["config"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise fail(f"config block is invalid: {exc}") from exc
    try:
        topo = build_topology(cfg)
    except ValueError as exc:
        raise fail(f"config block describes no valid network: {exc}") from exc

    format_fields = layout.format_fields(cfg) if kind == "fixed" else []
    state_fields = layout.state_fields(cfg, topo, kind)
    for block, fields in (("formats", format_fields), ("state", state_fields)):
        need = layout.state_nbytes(fields)
        if len(blocks[block]) != need:
            raise fail(f"{block} block is {len(blocks[block])} bytes, the config's layout needs {need}")
    try:
        state = layout.unpack_state(state_fields, blocks["state"])
        if kind == "fixed":
            from .fixed import FixedLPN, Formats
            formats = Formats.from_dict(layout.unpack_state(format_fields, blocks["formats"]))
            return FixedLPN.from_parts(cfg, formats, state)
        from .float_model import FloatLPN
        return FloatLPN.from_parts(cfg, state)
    except (ValueError, KeyError) as exc:
        raise fail(f"the stored {kind} model is inconsistent: {exc}") from exc


# ---------------------------------------------------------------------------
# The tables of docs/model-file.md
def _type_name(dtype: str) -> str:
    dt = np.dtype(dtype)
    return f"{dt.kind}{8 * dt.itemsize}"


def header_table() -> str:
    rows = ["| offset | field | type | bytes | meaning |", "|---|---|---|---|---|"]
    offset = 0
    for f in HEADER:
        typ = f"{f.size} bytes" if f.code.endswith("s") else _type_name("<" + f.code)
        rows.append(f"| {offset} | `{f.name}` | {typ} | {f.size} | {f.meaning} |")
        offset += f.size
    return "\n".join(rows)


def blocks_table() -> str:
    rows = ["| # | part | size | contents |", "|---|---|---|---|",
            f"| 1 | header | {HEADER_SIZE} | see the header table |"]
    for i, (name, meaning) in enumerate(BLOCKS, start=2):
        rows.append(f"| {i} | {name} | `{name}_size` | {meaning} |")
    rows.append(f"| {len(BLOCKS) + 2} | checksum | {CRC_STRUCT.size} | u32: zlib CRC-32 of every "
                "byte before it |")
    return "\n".join(rows)


# A config whose sizes are all different, so every number in a field's shape maps
# back to one symbol. Only the doc tables use it.
_EXAMPLE = dict(n0=11, n1=5, k1=4, n2=6, k2=5, m=7)


def _example_config(consolidation: bool = True, replay: bool = True, n0: int | None = None) -> LPNConfig:
    e = _EXAMPLE
    cfg = LPNConfig(
        input=InputConfig(shape=[n0 or e["n0"]]),
        layers=[LayerConfig(shape=[e["n1"]], position="center", fan_in=e["k1"]),
                LayerConfig(shape=[e["n2"]], position="center", fan_in=e["k2"])])
    return cfg.replace(**{"consolidation.enabled": consolidation, "replay.enabled": replay,
                          "replay.capacity": e["m"]})


def _symbolic(shape: tuple[int, ...], symbols: dict[int, str]) -> str:
    if not shape:
        return "1"
    return " × ".join(symbols[d] for d in shape)


def formats_table() -> str:
    cfg = _example_config()
    n_layers = len(cfg.layers)
    symbols = {n_layers + 1: "L+1", n_layers: "L"}
    assert len(symbols) == 2
    rows = ["| field | type | count |", "|---|---|---|"]
    for f in layout.format_fields(cfg):
        rows.append(f"| `{f.name}` | {_type_name(f.dtype)} | {_symbolic(f.shape, symbols)} |")
    return "\n".join(rows)


def state_table() -> str:
    e = _EXAMPLE
    layer_symbols = {e["n1"]: "N_l", e["k1"]: "K_l"}
    replay_symbols = {e["m"]: "M", e["n0"]: "N_0", e["n2"]: "N_L"}
    assert len(layer_symbols) == 2 and len(replay_symbols) == 3

    def fields(cfg: LPNConfig, kind: str) -> list[layout.Field]:
        return layout.state_fields(cfg, build_topology(cfg), kind)

    full = _example_config()
    plain = {f.name for f in fields(_example_config(False, False), "fixed")}
    with_consolidation = {f.name for f in fields(_example_config(True, False), "fixed")}
    wide = {f.name: f.dtype for f in fields(_example_config(n0=257), "fixed")}
    fixed, real = fields(full, "fixed"), fields(full, "float")
    assert [f.name for f in fixed] == [f.name for f in real]

    rows = ["| field | fixed | float | shape | present when |", "|---|---|---|---|---|"]
    for f, r in zip(fixed, real):
        if f.name.startswith("L") and not f.name.startswith("L1."):
            continue  # every layer repeats layer 1's fields
        name, symbols = f.name, replay_symbols
        if f.name.startswith("L1."):
            name, symbols = "L<l>." + f.name[3:], layer_symbols
        fixed_type = _type_name(f.dtype)
        if wide[f.name] != f.dtype:
            fixed_type += f" (N_(l-1) ≤ 256) or {_type_name(wide[f.name])}"
        float_type = _type_name(r.dtype)
        if wide[f.name] != f.dtype:
            float_type = fixed_type
        when = ("always" if f.name in plain else
                "consolidation.enabled" if f.name in with_consolidation else "replay.enabled")
        rows.append(f"| `{name}` | {fixed_type} | {float_type} | {_symbolic(f.shape, symbols)} | {when} |")
    return "\n".join(rows)


DOC_TABLES = {"header": header_table, "blocks": blocks_table,
              "formats": formats_table, "state": state_table}


def render_doc(text: str) -> str:
    """`text` with every generated table replaced by the one the code defines now."""
    return render_tables(text, DOC_TABLES, "python -m lpn.modelfile docs/model-file.md", "model-file doc")


if __name__ == "__main__":  # regenerate the doc's tables in place
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lpn.modelfile docs/model-file.md")
    doc = Path(sys.argv[1])
    doc.write_text(render_doc(doc.read_text(encoding="utf-8")), encoding="utf-8")
