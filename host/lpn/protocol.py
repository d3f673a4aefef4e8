"""The serial protocol between the host and a learning device, defined once.

Everything a byte on the wire means is defined in this module: the protocol version,
the framing, the command table (codes and payload layouts) and the status codes. The
C side is generated from it (`firmware/lib/lpn_protocol/src/lpn_protocol_table.h`),
and so are the tables of `docs/protocol.md`; tests regenerate both and fail if the
committed files differ. After a change, run

    python -m lpn.protocol --write-c firmware/lib/lpn_protocol/src/lpn_protocol_table.h \
                           --write-doc docs/protocol.md

Framing. A frame is `[cmd u8][seq u8][payload][crc u32]` for a request and
`[cmd|0x80 u8][seq u8][status i8][payload][crc u32]` for a reply, where `crc` is the
zlib CRC-32 of every byte before it. The frame is COBS-encoded, so it holds no 0x00,
and is followed by one 0x00 delimiter. A 0x00 always ends a frame, whatever came
before, so a receiver resynchronises after garbage at the next delimiter. All
integers are little-endian.

The learner's own status codes (`LEARNER_ERRORS`) mirror the C enum `lpn_status` in
`firmware/lib/lpn_core/src/lpn_core.h`; a test checks the two against each other.
"""
from __future__ import annotations

import argparse
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .docgen import render_tables

VERSION = 1

# Largest decoded frame (header, payload and CRC) the protocol allows. A device
# accepts frames up to its own, possibly smaller, limit, which `hello` reports.
MAX_FRAME = 4096
REQUEST_HEADER = 2       # cmd, seq
REPLY_HEADER = 3         # cmd | REPLY_FLAG, seq, status
CRC_SIZE = 4
REPLY_FLAG = 0x80        # set in the command byte of every reply, never in a request
ALL_TASKS = 0xFF         # predict's task value meaning "argmax over every output"
MAX_LAYERS = 8           # largest number of learning layers `stats` reports
LEARNER_CODE_MIN = -31   # status codes -31..-1 belong to the learner and pass through
DELIMITER = 0x00


# ---------------------------------------------------------------------------
# Payload layouts
_SCALARS = {"u8": "B", "u16": "H", "u32": "I", "i8": "b", "i16": "h", "i32": "i"}
_C_NAMES = {"u8": "uint8", "u16": "uint16", "u32": "uint32", "i8": "int8", "i16": "int16",
            "i32": "int32", "char": "char", "bytes": "bytes"}
# The sizes a layout may depend on; each is known to both sides from `info`.
SYMBOLS = ("inputs", "outputs", "layers")
REST = "rest"            # a last field that takes the rest of the frame


@dataclass(frozen=True)
class Field:
    """One payload field: a scalar, a fixed array, or an array sized by a symbol."""

    name: str
    type: str                          # u8 u16 u32 i8 i16 i32, char (text), bytes
    count: int | str | None = None     # None: scalar; int: fixed; a SYMBOLS name or REST
    doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in _C_NAMES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")
        if self.type in ("char", "bytes") and self.count is None:
            raise ValueError(f"field {self.name}: {self.type} needs a count")
        if isinstance(self.count, str) and self.count not in SYMBOLS + (REST,):
            raise ValueError(f"field {self.name}: unknown count {self.count!r}")

    @property
    def item_size(self) -> int:
        return 1 if self.type in ("char", "bytes") else struct.calcsize("<" + _SCALARS[self.type])

    def size(self, dims: Mapping[str, int]) -> int:
        if self.count is None:
            return self.item_size
        n = self.count if isinstance(self.count, int) else dims[self.count]
        return self.item_size * n

    def type_text(self) -> str:
        if self.count is None:
            return self.type
        return f"{self.type}[{self.count}]"


@dataclass(frozen=True)
class Group:
    """A record of scalar fields repeated `count` times (a SYMBOLS name)."""

    name: str
    count: str
    fields: tuple[Field, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        if self.count not in SYMBOLS:
            raise ValueError(f"group {self.name}: unknown count {self.count!r}")
        if any(f.count is not None for f in self.fields):
            raise ValueError(f"group {self.name}: only scalar fields may repeat")

    @property
    def record_size(self) -> int:
        return sum(f.item_size for f in self.fields)

    def size(self, dims: Mapping[str, int]) -> int:
        return self.record_size * dims[self.count]

    def type_text(self) -> str:
        return "{" + ", ".join(f"{f.name} {f.type}" for f in self.fields) + f"}}[{self.count}]"


Item = Field | Group


@dataclass(frozen=True)
class Command:
    name: str
    code: int
    request: tuple[Item, ...]
    reply: tuple[Item, ...]
    doc: str

    @property
    def c_name(self) -> str:
        return self.name.upper()


def _check_layout(items: Sequence[Item], where: str) -> None:
    for i, item in enumerate(items):
        if isinstance(item, Field) and item.count == REST and i != len(items) - 1:
            raise ValueError(f"{where}: only the last field may take the rest of the frame")


X = Field("x", "i16", "inputs", "the input vector, in the input format `fa[0]`")
TASK = Field("task", "u8", None, "task id, below the model's task count")

COMMANDS: tuple[Command, ...] = (
    Command("hello", 0x01,
            (Field("host_version", "u16", None, "the protocol version the host speaks"),),
            (Field("protocol_version", "u16", None, "the protocol version the device speaks"),
             Field("max_frame", "u16", None, "the longest decoded frame the device accepts and sends")),
            "Version handshake; starts a session. The device answers `version` (with this same payload) "
            "when `host_version` differs from its own. Never answered from the reply cache; discards "
            "any state transfer in progress."),
    Command("info", 0x02, (),
            (Field("protocol_version", "u16"),
             Field("firmware_version", "char", 16, "NUL-padded text"),
             Field("board", "char", 16, "NUL-padded text"),
             Field("model_hash", "bytes", 32, "SHA-256 of the model the learner was generated from"),
             Field("inputs", "u16"), Field("outputs", "u16"),
             Field("tasks", "u8"), Field("layers", "u8", None, "learning layers"),
             Field("state_bytes", "u32", None, "size of the exported state"),
             Field("synapses", "u32"),
             Field("free_ram", "u32", None, "bytes of RAM still free, as the board measures it"),
             Field("max_frame", "u16")),
            "Firmware, model and sizes."),
    Command("stats", 0x03, (),
            (Field("step", "u32"), Field("saturations", "u32"), Field("seen", "u32"),
             Field("task", "u8", None, "the current task"),
             Group("layer", "layers", (Field("budget", "u16"), Field("loss_fast", "i32"),
                                       Field("loss_slow", "i32")), "one record per learning layer")),
            "Learning statistics."),
    Command("predict", 0x10,
            (Field("task", "u8", None, f"task whose outputs the class is chosen among; {ALL_TASKS} = all"), X),
            (Field("class", "u16", None, "index of the largest allowed output, ties to the lower index"),
             Field("y", "i16", "outputs", "the outputs, in the output format `fa[L]`")),
            "Forward pass; changes nothing."),
    Command("learn", 0x11,
            (TASK, X, Field("t", "i16", "outputs", "the target vector, in the output format")),
            (),
            "One learning step, with the task switch, replay and periodic steps it triggers."),
    Command("contrast", 0x12, (X,), (), "One unlabelled (contrastive) step."),
    Command("consolidate", 0x13, (), (), "Consolidate every synapse now."),
    Command("replay", 0x14, (Field("count", "u16", None, "replayed samples"),), (),
            "Replay `count` samples from the replay buffer."),
    Command("structural", 0x15, (), (), "One structural step (prune and regrow)."),
    Command("reset", 0x16, (), (),
            "Back to the model compiled into the firmware; discards any state transfer in progress."),
    Command("get_state", 0x20,
            (Field("offset", "u32"), Field("length", "u16", None, "bytes wanted; fewer come back at the end")),
            (Field("total", "u32", None, "size of the whole state"),
             Field("crc", "u32", None, "CRC-32 of the whole state snapshot"),
             Field("data", "bytes", REST, "the state bytes from `offset`")),
            "Read the state in chunks. Offset 0 takes a snapshot of the state, and later offsets read "
            "that snapshot, so a state pulled in chunks is consistent even if the device learns in "
            "between. A later offset without a snapshot is `out_of_order`."),
    Command("put_state_begin", 0x21,
            (Field("total", "u32", None, "size of the whole state; must equal `info.state_bytes`"),
             Field("crc", "u32", None, "CRC-32 of the whole state")),
            (),
            "Open an upload (discarding any other transfer); nothing changes until the commit."),
    Command("put_state_chunk", 0x22,
            (Field("offset", "u32", None, "must equal the number of bytes received so far"),
             Field("data", "bytes", REST, "at least one byte")),
            (),
            "Stage the next bytes of the upload."),
    Command("put_state_commit", 0x23, (), (),
            "Check the staged upload (complete, CRC) and import it in one step; a rejected commit "
            "changes nothing and leaves the upload open."),
    Command("save", 0x30, (), (),
            "Store the state in the board's persistent storage (two slots, power-loss safe: see "
            "docs/persistence.md); `unsupported` on a board without storage. A failed or interrupted "
            "save leaves the previous saved state loadable. Discards any state transfer in progress."),
    Command("load", 0x31, (), (),
            "Replace the state with the newest complete saved one (the firmware also does this at boot); "
            "`no_saved_state` if there is none, and then nothing changes. Discards any state transfer "
            "in progress."),
    Command("storage", 0x32, (),
            (Field("present", "u8", None, "1 if the board has persistent storage, else 0"),
             Field("boot_status", "i8", None, "status of the load at boot: 0 = the saved state was "
                                              "restored, else why not (e.g. `no_saved_state`)"),
             Field("capacity", "u32", None, "largest state a slot holds, bytes (0 without storage)"),
             Field("saves", "u32", None, "successful saves since boot")),
            "What the board's persistent storage holds and what happened to it at boot."),
)

BY_NAME = {c.name: c for c in COMMANDS}
BY_CODE = {c.code: c for c in COMMANDS}


@dataclass(frozen=True)
class Status:
    name: str
    code: int
    doc: str

    @property
    def c_name(self) -> str:
        return self.name.upper()


OK = Status("ok", 0, "success")

# Mirrors `lpn_status` in lpn_core.h (checked by a test); passed through unchanged.
LEARNER_ERRORS: tuple[Status, ...] = (
    Status("arg", -1, "learner: a required pointer is NULL"),
    Status("length", -2, "learner: a buffer length differs from the model's size"),
    Status("task", -3, "learner or protocol: task id not below the model's task count"),
    Status("replay_empty", -4, "learner: replay requested but no sample is buffered yet"),
    Status("disabled", -5, "learner: the mechanism is not enabled in this model"),
    Status("state", -6, "learner: imported state holds a value no learner can reach"),
    Status("connectivity", -7, "learner: imported connectivity differs from the fixed table"),
)

PROTOCOL_ERRORS: tuple[Status, ...] = (
    Status("malformed", -32, "the frame is not valid COBS or is shorter than a header and CRC"),
    Status("bad_crc", -33, "the frame's CRC-32 does not match; the request was not run"),
    Status("unknown_command", -34, "no command has this code"),
    Status("bad_length", -35, "the payload length does not fit the command, or a state size differs"),
    Status("oversized", -36, "the frame is longer than the device's `max_frame`"),
    Status("out_of_order", -37, "a state chunk or commit out of sequence, or without begin"),
    Status("bad_argument", -38, "a field's value is out of range (e.g. an offset beyond the state)"),
    Status("state_crc", -39, "the uploaded state's CRC-32 differs from the one announced"),
    Status("unsupported", -40, "the device does not offer this command (a callback is missing, "
                               "or the board has no persistent storage)"),
    Status("learner_failed", -41, "the learner returned a code outside the learner's range"),
    Status("version", -42, "the host speaks another protocol version"),
    Status("no_saved_state", -43, "load: the storage holds no complete saved state; nothing changed"),
    Status("storage_failed", -44, "save or load: the storage medium failed; the previous saved state "
                                  "is still loadable and the learner is unchanged"),
    Status("storage_full", -45, "save: the state is larger than a storage slot"),
    Status("saved_model_differs", -46, "load: the saved state was made by a firmware of another model "
                                       "(its SHA-256 differs); nothing changed"),
)

STATUSES: tuple[Status, ...] = (OK,) + LEARNER_ERRORS + PROTOCOL_ERRORS
STATUS_BY_CODE = {s.code: s for s in STATUSES}
STATUS_BY_NAME = {s.name: s for s in STATUSES}
# A request rejected for one of these never reached the dispatcher, so resending it is safe.
TRANSIENT = frozenset({"malformed", "bad_crc"})


def status_name(code: int) -> str:
    s = STATUS_BY_CODE.get(code)
    if s is not None:
        return s.name
    if LEARNER_CODE_MIN <= code < 0:
        return f"learner_error_{-code}"
    return f"status_{code}"


def _validate_tables() -> None:
    codes = [c.code for c in COMMANDS]
    if len(set(codes)) != len(codes) or len(BY_NAME) != len(COMMANDS):
        raise ValueError("command codes and names must be unique")
    if any(not 0 < c < REPLY_FLAG for c in codes):
        raise ValueError("command codes must be in 1..127")
    if len(STATUS_BY_CODE) != len(STATUSES) or len(STATUS_BY_NAME) != len(STATUSES):
        raise ValueError("status codes and names must be unique")
    if any(not LEARNER_CODE_MIN <= s.code < 0 for s in LEARNER_ERRORS):
        raise ValueError("learner codes must be in the learner range")
    if any(not -128 <= s.code < LEARNER_CODE_MIN for s in PROTOCOL_ERRORS):
        raise ValueError("protocol codes must be below the learner range and fit an int8")
    for c in COMMANDS:
        _check_layout(c.request, f"{c.name} request")
        _check_layout(c.reply, f"{c.name} reply")


_validate_tables()


# ---------------------------------------------------------------------------
# Packing payloads
def _fmt(t: str) -> str:
    return "<" + _SCALARS[t]


def payload_size(items: Sequence[Item], dims: Mapping[str, int], rest: int = 0) -> int:
    """Bytes of a payload for the given sizes; `rest` is the length of a trailing REST field."""
    total = 0
    for item in items:
        total += rest if isinstance(item, Field) and item.count == REST else item.size(dims)
    return total


def fixed_size(items: Sequence[Item]) -> int:
    """Bytes of the fields whose size does not depend on any symbol."""
    return sum(i.size({}) for i in items
               if isinstance(i, Field) and not isinstance(i.count, str))


def pack(items: Sequence[Item], values: Mapping[str, Any], dims: Mapping[str, int]) -> bytes:
    """Payload bytes for `values` (one entry per field name; arrays as sequences)."""
    out = bytearray()
    for item in items:
        if item.name not in values:
            raise ValueError(f"missing payload field {item.name!r}")
        v = values[item.name]
        if isinstance(item, Group):
            records = list(v)
            if len(records) != dims[item.count]:
                raise ValueError(f"{item.name}: expected {dims[item.count]} records, got {len(records)}")
            for rec in records:
                for f in item.fields:
                    out += struct.pack(_fmt(f.type), int(rec[f.name]))
        elif item.type == "char":
            raw = v.encode("ascii") if isinstance(v, str) else bytes(v)
            if len(raw) > item.count:
                raise ValueError(f"{item.name}: text longer than {item.count} bytes")
            out += raw.ljust(item.count, b"\0")
        elif item.type == "bytes":
            raw = bytes(v)
            if item.count != REST and len(raw) != item.size(dims):
                raise ValueError(f"{item.name}: expected {item.size(dims)} bytes, got {len(raw)}")
            out += raw
        elif item.count is None:
            out += struct.pack(_fmt(item.type), int(v))
        else:
            seq = [int(e) for e in v]
            n = item.count if isinstance(item.count, int) else dims[item.count]
            if len(seq) != n:
                raise ValueError(f"{item.name}: expected {n} values, got {len(seq)}")
            out += struct.pack("<" + _SCALARS[item.type] * n, *seq)
    return bytes(out)


def unpack(items: Sequence[Item], data: bytes, dims: Mapping[str, int]) -> dict[str, Any]:
    """Field values of a payload; raises ValueError if its length does not fit."""
    rest = len(data) - payload_size(items, dims, 0)
    has_rest = any(isinstance(i, Field) and i.count == REST for i in items)
    if rest < 0 or (rest and not has_rest):
        raise ValueError(f"payload of {len(data)} bytes does not fit the layout "
                         f"({payload_size(items, dims, 0)} bytes{' and more' if has_rest else ''})")
    out: dict[str, Any] = {}
    pos = 0
    for item in items:
        if isinstance(item, Group):
            records = []
            for _ in range(dims[item.count]):
                rec = {}
                for f in item.fields:
                    (rec[f.name],) = struct.unpack_from(_fmt(f.type), data, pos)
                    pos += f.item_size
                records.append(rec)
            out[item.name] = records
            continue
        size = rest if item.count == REST else item.size(dims)
        chunk = data[pos:pos + size]
        pos += size
        if item.type == "char":
            out[item.name] = chunk.split(b"\0", 1)[0].decode("ascii", errors="replace")
        elif item.type == "bytes":
            out[item.name] = bytes(chunk)
        elif item.count is None:
            (out[item.name],) = struct.unpack(_fmt(item.type), chunk)
        else:
            out[item.name] = list(struct.unpack("<" + _SCALARS[item.type] * (size // item.item_size), chunk))
    return out


# ---------------------------------------------------------------------------
# CRC and COBS
def crc32(data: bytes, value: int = 0) -> int:
    """CRC-32 as zlib computes it (reflected 0x04C11DB7, init and final xor 0xFFFFFFFF)."""
    return zlib.crc32(data, value) & 0xFFFFFFFF


def cobs_max_encoded(n: int) -> int:
    """Longest COBS encoding of n bytes, without the delimiter."""
    return n + n // 254 + 1


def cobs_encode(data: bytes) -> bytes:
    """COBS encoding (no zero byte in the result, delimiter not included).

    Each zero-free run becomes blocks of at most 254 bytes, each led by its
    length + 1; a full block (code 0xFF) implies no zero after it.
    """
    out = bytearray()
    for run in bytes(data).split(b"\x00"):
        while len(run) >= 254:
            out.append(0xFF)
            out += run[:254]
            run = run[254:]
        out.append(len(run) + 1)
        out += run
    return bytes(out)


class FramingError(ValueError):
    pass


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; raises FramingError on a zero byte or a truncated block."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FramingError("zero byte inside a COBS frame")
        end = i + code
        if end > n:
            raise FramingError("COBS block runs past the end of the frame")
        block = data[i + 1:end]
        if 0 in block:
            raise FramingError("zero byte inside a COBS frame")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def frame(raw: bytes) -> bytes:
    """`raw` with its CRC-32 appended, COBS-encoded and delimited: ready for the wire."""
    return cobs_encode(raw + struct.pack("<I", crc32(raw))) + b"\x00"


def request_frame(code: int, seq: int, payload: bytes = b"") -> bytes:
    return frame(bytes((code & 0xFF, seq & 0xFF)) + payload)


def reply_frame(code: int, seq: int, status: int, payload: bytes = b"") -> bytes:
    return frame(bytes(((code | REPLY_FLAG) & 0xFF, seq & 0xFF, status & 0xFF)) + payload)


def check_crc(decoded: bytes) -> bytes:
    """The frame without its CRC, or FramingError if it is too short or the CRC differs."""
    if len(decoded) < CRC_SIZE:
        raise FramingError("frame shorter than its CRC")
    body, (crc,) = decoded[:-CRC_SIZE], struct.unpack("<I", decoded[-CRC_SIZE:])
    if crc32(body) != crc:
        raise FramingError("bad CRC")
    return body


@dataclass(frozen=True)
class Reply:
    code: int      # the request's command code (REPLY_FLAG removed)
    seq: int
    status: int    # signed
    payload: bytes

    @property
    def status_name(self) -> str:
        return status_name(self.status)


def parse_reply(body: bytes) -> Reply:
    """A reply from a CRC-checked frame body; FramingError if it is not a reply."""
    if len(body) < REPLY_HEADER or not body[0] & REPLY_FLAG:
        raise FramingError("not a reply frame")
    status = body[2] - 256 if body[2] >= 128 else body[2]
    return Reply(body[0] & ~REPLY_FLAG & 0xFF, body[1], status, bytes(body[3:]))


class FrameReader:
    """Splits a byte stream into frames at 0x00; survives any garbage.

    `feed(bytes)` returns the COBS-decoded, CRC-checked frame bodies completed by
    these bytes. Undecodable frames, bad CRCs and runs longer than `max_encoded`
    are dropped and counted in `dropped`; the reader is back in step at the next
    delimiter.
    """

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_encoded = cobs_max_encoded(max_frame)
        self.buffer = bytearray()
        self.overflow = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self.overflow:
                self.buffer += piece
                if len(self.buffer) > self.max_encoded:
                    self.overflow = True
                    self.buffer.clear()
            if end < 0:
                return out
            if self.overflow:
                self.dropped += 1
            elif self.buffer:
                try:
                    out.append(check_crc(cobs_decode(bytes(self.buffer))))
                except FramingError:
                    self.dropped += 1
            self.buffer.clear()
            self.overflow = False
            start = end + 1


# ---------------------------------------------------------------------------
# Generating the C header
C_HEADER_PATH = "firmware/lib/lpn_protocol/src/lpn_protocol_table.h"
DOC_PATH = "docs/protocol.md"
_REGEN = f"python -m lpn.protocol --write-c {C_HEADER_PATH} --write-doc {DOC_PATH}"


def _c_expr(terms: list[tuple[int, str | None]]) -> tuple[str, list[str]]:
    """A C size expression from (bytes, symbol) terms, and the symbols it uses."""
    const = sum(n for n, s in terms if s is None)
    scaled: dict[str, int] = {}
    for n, s in terms:
        if s is not None:
            scaled[s] = scaled.get(s, 0) + n
    syms = [s for s in SYMBOLS if s in scaled]
    if not syms:
        return f"{const}u", []
    parts = ([f"{const}u"] if const else []) + [f"{scaled[s]}u * (size_t)({s})" for s in syms]
    return "(" + " + ".join(parts) + ")", syms


def _define(name: str, terms: list[tuple[int, str | None]], doc: str = "") -> str:
    expr, syms = _c_expr(terms)
    head = f"{name}({', '.join(syms)})" if syms else name
    line = f"#define {head} {expr}"
    return line + (f" /* {doc} */" if doc else "")


def _layout_defines(prefix: str, items: Sequence[Item]) -> list[str]:
    lines = []
    terms: list[tuple[int, str | None]] = []
    has_rest = False
    for item in items:
        fname = f"{prefix}_{item.name.upper()}"
        lines.append(_define(fname + "_AT", terms, f"offset of {item.name}, {item.type_text()}"))
        if isinstance(item, Group):
            lines.append(f"#define {fname}_RECORD {item.record_size}u")
            rec = 0
            for f in item.fields:
                lines.append(f"#define {fname}_{f.name.upper()}_AT {rec}u /* in the record, {f.type} */")
                rec += f.item_size
            terms.append((item.record_size, item.count))
        elif item.count == REST:
            has_rest = True
        elif isinstance(item.count, str):
            terms.append((item.item_size, item.count))
        else:
            terms.append((item.size({}), None))
    lines.append(_define(prefix + ("_MIN_SIZE" if has_rest else "_SIZE"), terms,
                         "payload bytes" + (" before the trailing data" if has_rest else "")))
    return lines


def render_c_header() -> str:
    out = [
        "/*",
        " * lpn_protocol_table.h: GENERATED, DO NOT EDIT.",
        " *",
        f" * Generated by lpn.protocol (host/lpn/protocol.py), protocol version {VERSION},",
        " * which defines the serial protocol once for the host and the device. To change",
        f" * it, edit that file and run:\n *   {_REGEN}",
        " *",
        " * Offsets and sizes are of the payload, which follows the frame's header",
        " * (LPN_PROTO_REQUEST_HEADER or LPN_PROTO_REPLY_HEADER bytes). Multi-byte",
        " * fields are little-endian.",
        " */",
        "#ifndef LPN_PROTOCOL_TABLE_H",
        "#define LPN_PROTOCOL_TABLE_H",
        "",
        "#include <stddef.h>",
        "",
        f"#define LPN_PROTO_VERSION {VERSION}u",
        f"#define LPN_PROTO_MAX_FRAME {MAX_FRAME}u /* the largest decoded frame any device may accept */",
        f"#define LPN_PROTO_REQUEST_HEADER {REQUEST_HEADER}u /* cmd, seq */",
        f"#define LPN_PROTO_REPLY_HEADER {REPLY_HEADER}u /* cmd | reply flag, seq, status */",
        f"#define LPN_PROTO_CRC_SIZE {CRC_SIZE}u /* CRC-32 (zlib) of the frame before it */",
        f"#define LPN_PROTO_REPLY_FLAG 0x{REPLY_FLAG:02X}u",
        f"#define LPN_PROTO_ALL_TASKS 0x{ALL_TASKS:02X}u /* predict: choose the class among every output */",
        f"#define LPN_PROTO_MAX_LAYERS {MAX_LAYERS}u /* most learning layers stats reports */",
        f"#define LPN_PROTO_LEARNER_CODE_MIN ({LEARNER_CODE_MIN}) /* -31..-1: learner codes, passed through */",
        "",
        "/* Command codes. */",
        "enum lpn_proto_command {",
    ]
    for i, c in enumerate(COMMANDS):
        comma = "," if i < len(COMMANDS) - 1 else ""
        out.append(f"    LPN_PROTO_CMD_{c.c_name} = 0x{c.code:02X}{comma}")
    out += ["};", "", "/* Reply status codes: 0 is success, every error is negative. */", "enum lpn_proto_status {"]
    for i, s in enumerate(STATUSES):
        comma = "," if i < len(STATUSES) - 1 else ""
        name = "LPN_PROTO_OK" if s is OK else f"LPN_PROTO_ERR_{s.c_name}"
        out.append(f"    {name} = {s.code}{comma} /* {s.doc} */")
    out += ["};", ""]
    for c in COMMANDS:
        out.append(f"/* {c.name} (0x{c.code:02X}) */")
        out += _layout_defines(f"LPN_PROTO_{c.c_name}_REQ", c.request)
        out += _layout_defines(f"LPN_PROTO_{c.c_name}_REP", c.reply)
        out.append("")
    out += ["#endif /* LPN_PROTOCOL_TABLE_H */", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Generating the document's tables
def _offset_text(terms: list[tuple[int, str | None]]) -> str:
    const = sum(n for n, s in terms if s is None)
    scaled: dict[str, int] = {}
    for n, s in terms:
        if s is not None:
            scaled[s] = scaled.get(s, 0) + n
    parts = [str(const)] if const or not scaled else []
    parts += [f"{n}*{s}" if n != 1 else s for s, n in scaled.items()]
    return " + ".join(parts)


def _layout_rows(items: Sequence[Item]) -> str:
    if not items:
        return "(empty)"
    rows = []
    terms: list[tuple[int, str | None]] = []
    for item in items:
        rows.append(f"`{item.name}` {item.type_text()} @{_offset_text(terms)}")
        if isinstance(item, Group):
            terms.append((item.record_size, item.count))
        elif isinstance(item.count, str):
            if item.count != REST:
                terms.append((item.item_size, item.count))
        else:
            terms.append((item.size({}), None))
    return "<br>".join(rows)


def commands_table() -> str:
    lines = ["| code | command | request payload | reply payload | what it does |", "|---|---|---|---|---|"]
    for c in COMMANDS:
        lines.append(f"| 0x{c.code:02X} | `{c.name}` | {_layout_rows(c.request)} | "
                     f"{_layout_rows(c.reply)} | {c.doc} |")
    return "\n".join(lines)


def fields_table() -> str:
    lines = ["| command | direction | field | type | meaning |", "|---|---|---|---|---|"]
    for c in COMMANDS:
        for direction, items in (("request", c.request), ("reply", c.reply)):
            for item in items:
                if item.doc:
                    lines.append(f"| `{c.name}` | {direction} | `{item.name}` | {item.type_text()} | {item.doc} |")
    return "\n".join(lines)


def statuses_table() -> str:
    lines = ["| code | name | meaning |", "|---|---|---|"]
    for s in STATUSES:
        lines.append(f"| {s.code} | `{s.name}` | {s.doc} |")
    return "\n".join(lines)


def constants_table() -> str:
    rows = [
        ("protocol version", str(VERSION)),
        ("largest decoded frame (`MAX_FRAME`)", f"{MAX_FRAME} bytes"),
        ("request header", f"{REQUEST_HEADER} bytes: cmd, seq"),
        ("reply header", f"{REPLY_HEADER} bytes: cmd \\| 0x{REPLY_FLAG:02X}, seq, status (int8)"),
        ("frame check", f"{CRC_SIZE} bytes: zlib CRC-32 of the frame before it, little-endian"),
        ("`predict` task meaning all outputs", f"0x{ALL_TASKS:02X}"),
        ("layers `stats` can report", str(MAX_LAYERS)),
        ("learner status range", f"{LEARNER_CODE_MIN}..-1"),
    ]
    return "\n".join(["| constant | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])


DOC_TABLES = {"constants": constants_table, "commands": commands_table,
              "fields": fields_table, "statuses": statuses_table}


def render_doc(text: str) -> str:
    """`text` with every generated table replaced by the one defined here now."""
    return render_tables(text, DOC_TABLES, f"python -m lpn.protocol --write-doc {DOC_PATH}", "protocol doc")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lpn.protocol", description=__doc__.split("\n")[0])
    parser.add_argument("--write-c", metavar="HEADER", type=Path, help="write the generated C header")
    parser.add_argument("--write-doc", metavar="DOC", type=Path, help="regenerate the tables in the doc")
    parser.add_argument("--check", action="store_true", help="only report whether the files are current")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.write_c and not args.write_doc:
        parser.error("nothing to do: give --write-c and/or --write-doc")
    stale = []
    if args.write_c:
        want = render_c_header()
        have = args.write_c.read_text(encoding="utf-8") if args.write_c.exists() else None
        if have != want:
            stale.append(str(args.write_c))
            if not args.check:
                args.write_c.write_text(want, encoding="utf-8")
    if args.write_doc:
        have = args.write_doc.read_text(encoding="utf-8")
        want = render_doc(have)
        if have != want:
            stale.append(str(args.write_doc))
            if not args.check:
                args.write_doc.write_text(want, encoding="utf-8")
    for path in stale:
        print(("out of date: " if args.check else "rewrote ") + path)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
