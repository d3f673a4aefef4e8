"""The model file: exact round trips, every kind of damage rejected by name, atomic saves."""
from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import small_config, stream
from lpn import layout, modelfile
from lpn.fixed import FixedLPN
from lpn.float_model import FloatLPN
from lpn.modelfile import HEADER_SIZE, ModelFileError

REPO = Path(__file__).resolve().parents[1]
MODELS = [FloatLPN, FixedLPN]


def trained(kind, n: int = 120, seed: int = 0):
    """A model of the all-mechanisms config that has learnt, replayed and consolidated."""
    cfg = small_config()
    model = kind(cfg)
    _learn(model, n, seed)
    st = model.state
    # The round trip must carry real values in every optional block, not zeros.
    assert st["seen"] > 0 and np.any(st["replay.x"] != 0)
    assert np.any(st["L1.c"] != 0) and np.any(st["L2.a"] != 0)
    return model


def _learn(model, n: int, seed: int) -> None:
    samples = list(stream(model.config, n, seed=seed))
    X = np.array([s[0] for s in samples])
    y = np.array([s[1] for s in samples])
    tasks = np.array([s[2] for s in samples])
    model.partial_fit(X, y, classes=list(range(model.config.outputs)), task=tasks)


@pytest.fixture(scope="module", params=MODELS, ids=lambda k: k.kind)
def model(request):
    return trained(request.param)


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "m.lpn"
    modelfile.save(model, path)
    return path


def _blocks(data: bytes) -> dict[str, bytes]:
    """Split a file by the header's sizes, read at the documented offsets."""
    sizes = struct.unpack_from("<III", data, 12)
    out, pos = {}, HEADER_SIZE
    for name, size in zip(("config", "formats", "state"), sizes):
        out[name] = data[pos: pos + size]
        pos += size
    return out


def _expect(data: bytes, tmp_path: Path, *words: str, expect_kind: str | None = None) -> str:
    path = tmp_path / "bad.lpn"
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as info:
        modelfile.load(path, expect_kind=expect_kind)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


# ---------------------------------------------------------------------------
# round trips
def test_round_trip_is_exact(model, saved):
    loaded = modelfile.load(saved)
    assert type(loaded) is type(model) and loaded.kind == model.kind
    assert loaded.config == model.config
    assert loaded.state_bytes() == model.state_bytes()
    for field in layout.state_fields(model.config, model.topology, model.kind):
        assert np.array_equal(np.asarray(loaded.state[field.name]), np.asarray(model.state[field.name])), field.name
    if model.kind == "fixed":
        assert loaded.formats == model.formats
    assert modelfile.model_hash(loaded) == modelfile.model_hash(model)


def test_loaded_model_learns_exactly_like_the_original(model, saved):
    original, loaded = trained(type(model)), modelfile.load(saved)
    _learn(original, 40, seed=5)
    _learn(loaded, 40, seed=5)
    assert loaded.state_bytes() == original.state_bytes()


def test_file_bytes_follow_the_documented_layout(model, saved):
    data = saved.read_bytes()
    assert data[:8] == b"LPNMODEL"
    assert struct.unpack_from("<HBB", data, 8) == (modelfile.VERSION, {"float": 0, "fixed": 1}[model.kind], 0)
    blocks = _blocks(data)
    assert blocks["config"].decode() == model.config.to_json()
    assert blocks["state"] == model.state_bytes()
    formats_size = layout.state_nbytes(layout.format_fields(model.config)) if model.kind == "fixed" else 0
    assert len(blocks["formats"]) == formats_size
    assert len(data) == HEADER_SIZE + sum(map(len, blocks.values())) + 4
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_model_hash_is_sha256_of_length_prefixed_parts(model, saved):
    blocks = _blocks(saved.read_bytes())
    h = hashlib.sha256()
    for part in (model.kind.encode(), blocks["config"], blocks["formats"], blocks["state"]):
        h.update(struct.pack("<I", len(part)) + part)
    assert modelfile.model_hash(model) == h.hexdigest()


def test_model_hash_changes_with_one_learning_step(model):
    other = trained(type(model))
    before = modelfile.model_hash(other)
    _learn(other, 1, seed=9)
    assert modelfile.model_hash(other) != before


def test_expect_kind_accepts_the_matching_kind(model, saved):
    assert modelfile.load(saved, expect_kind=model.kind).kind == model.kind


# ---------------------------------------------------------------------------
# damaged files
def test_every_truncation_inside_the_header_is_named(saved, tmp_path):
    data = saved.read_bytes()
    for n in range(HEADER_SIZE):
        _expect(data[:n], tmp_path, "truncated")


def test_truncations_inside_the_body_are_named(saved, tmp_path):
    data = saved.read_bytes()
    config_end = HEADER_SIZE + len(_blocks(data)["config"])
    for n in (HEADER_SIZE, HEADER_SIZE + 1, config_end - 1, config_end + 3,
              (config_end + len(data)) // 2, len(data) - 5, len(data) - 4, len(data) - 1):
        _expect(data[:n], tmp_path, "truncated", f"{n} bytes")


@pytest.mark.parametrize("where", ["config", "state start", "state middle", "state end", "crc"])
def test_flipped_bytes_fail_the_checksum(saved, tmp_path, where):
    data = bytearray(saved.read_bytes())
    state_start = len(data) - 4 - len(_blocks(bytes(data))["state"])
    offset = {"config": HEADER_SIZE + 5, "state start": state_start,
              "state middle": (state_start + len(data)) // 2, "state end": len(data) - 5,
              "crc": len(data) - 2}[where]
    data[offset] ^= 0x10
    _expect(bytes(data), tmp_path, "corrupted", "CRC32")


def test_flipped_byte_in_formats_fails_the_checksum(tmp_path):
    path = tmp_path / "f.lpn"
    modelfile.save(FixedLPN(small_config()), path)
    data = bytearray(path.read_bytes())
    blocks = _blocks(bytes(data))
    data[HEADER_SIZE + len(blocks["config"]) + 1] ^= 0x01
    _expect(bytes(data), tmp_path, "CRC32")


def test_wrong_magic_is_named(saved, tmp_path):
    data = saved.read_bytes()
    _expect(b"NOTMODEL" + data[8:], tmp_path, "not an LPN model file")
    _expect(b"x", tmp_path, "not an LPN model file")
    _expect(b"", tmp_path, "empty")


@pytest.mark.parametrize("fix_crc", [True, False])
def test_wrong_version_is_named(saved, tmp_path, fix_crc):
    data = bytearray(saved.read_bytes())
    struct.pack_into("<H", data, 8, modelfile.VERSION + 1)
    if fix_crc:
        data = bytearray(_with_crc(bytes(data[:-4])))
    _expect(bytes(data), tmp_path, "unsupported format version", str(modelfile.VERSION + 1))


def test_unknown_kind_and_flags_are_named(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    data[10] = 7
    _expect(_with_crc(bytes(data[:-4])), tmp_path, "unknown model kind", "7")
    data = bytearray(saved.read_bytes())
    data[11] = 1
    _expect(_with_crc(bytes(data[:-4])), tmp_path, "flags")


def test_wrong_kind_is_named(model, saved, tmp_path):
    other = "fixed" if model.kind == "float" else "float"
    _expect(saved.read_bytes(), tmp_path, "wrong kind", model.kind, other, expect_kind=other)


def test_trailing_bytes_are_rejected(saved, tmp_path):
    _expect(saved.read_bytes() + b"\0", tmp_path, "corrupted", "after the checksum")


def test_checksummed_but_inconsistent_state_is_rejected(model, saved, tmp_path):
    """A file a buggy writer made: valid CRC, but a state no model can hold."""
    data = saved.read_bytes()
    state_start = len(data) - 4 - len(_blocks(data)["state"])
    body = bytearray(data[:-4])
    struct.pack_into("<I", body, state_start + 4, 0)  # prng = 0: xorshift32 would be stuck
    _expect(_with_crc(bytes(body)), tmp_path, "inconsistent", "prng")


def test_block_size_disagreeing_with_the_config_is_rejected(saved, tmp_path):
    body = bytearray(saved.read_bytes()[:-4])
    state_size = struct.unpack_from("<I", body, 20)[0]
    struct.pack_into("<I", body, 20, state_size - 1)
    _expect(_with_crc(bytes(body[:-1])), tmp_path, "state block", str(state_size - 1))


def test_invalid_config_block_is_rejected(saved, tmp_path):
    data = saved.read_bytes()
    blocks = _blocks(data)
    bad_config = blocks["config"].replace(b'"seed":7', b'"seed":0')
    assert bad_config != blocks["config"]
    body = data[:HEADER_SIZE] + bad_config + blocks["formats"] + blocks["state"]
    _expect(_with_crc(body), tmp_path, "config block is invalid", "seed")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read"):
        modelfile.load(tmp_path / "nope.lpn")


def test_unknown_expect_kind_is_a_programming_error(saved):
    with pytest.raises(ValueError, match="expect_kind"):
        modelfile.load(saved, expect_kind="double")


# ---------------------------------------------------------------------------
# atomic saves
def _no_temp_files(directory: Path) -> bool:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_save_leaves_the_old_file_intact(model, saved, tmp_path, monkeypatch, failing):
    old = saved.read_bytes()
    other = trained(type(model), n=60, seed=3)

    def boom(*args, **kwargs):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(ModelFileError, match="cannot write"):
        modelfile.save(other, saved)
    monkeypatch.undo()
    assert saved.read_bytes() == old
    assert _no_temp_files(tmp_path)


def test_an_interrupted_write_leaves_the_old_file_intact(model, saved, tmp_path, monkeypatch):
    old = saved.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def fileno(self):
            return self.handle.fileno()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-write

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        modelfile.save(trained(type(model), n=60, seed=3), saved)
    monkeypatch.undo()
    assert saved.read_bytes() == old
    assert _no_temp_files(tmp_path)


def test_a_model_that_cannot_serialise_never_touches_the_disk(model, saved, tmp_path, monkeypatch):
    old = saved.read_bytes()
    broken = trained(type(model), n=60, seed=3)
    monkeypatch.setattr(broken, "state_bytes", lambda: b"\0" * 3)
    with pytest.raises(ValueError, match="layout needs"):
        modelfile.save(broken, saved)
    assert saved.read_bytes() == old
    assert _no_temp_files(tmp_path)


def test_save_into_a_missing_directory_is_named(model, tmp_path):
    with pytest.raises(ModelFileError, match="cannot write"):
        modelfile.save(model, tmp_path / "no" / "such" / "m.lpn")


def test_saved_file_gets_ordinary_permissions(model, tmp_path):
    path = tmp_path / "m.lpn"
    modelfile.save(model, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    modelfile.save(model, path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_rejects_objects_that_are_not_models(tmp_path):
    with pytest.raises(TypeError, match="not an LPN model"):
        modelfile.save(object(), tmp_path / "x.lpn")
    assert not (tmp_path / "x.lpn").exists()


# ---------------------------------------------------------------------------
# the document
def test_doc_tables_match_the_code():
    doc = REPO / "docs" / "model-file.md"
    text = doc.read_text(encoding="utf-8")
    assert modelfile.render_doc(text) == text, (
        "docs/model-file.md is out of date: run `python -m lpn.modelfile docs/model-file.md`")
    for make in modelfile.DOC_TABLES.values():
        assert make() in text


def test_doc_state_table_covers_every_state_field():
    table = modelfile.state_table()
    cfg = small_config()
    model = FloatLPN(cfg)
    for field in layout.state_fields(cfg, model.topology, "float"):
        name = field.name
        if name.startswith("L"):
            name = "L<l>." + name.split(".", 1)[1]
        assert f"`{name}`" in table, name


def test_render_doc_refuses_a_doc_without_markers():
    with pytest.raises(ValueError, match="markers"):
        modelfile.render_doc("# no tables here\n")
