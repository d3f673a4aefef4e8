"""The serial protocol: its one definition, the generated C table, the C library and the host client.

The C side runs as `tests/protocol_fixtures/fake_device.c`, compiled here with the
protocol library under AddressSanitizer and UndefinedBehaviorSanitizer. Behind its
ops struct sits a FAKE learner (a byte array with a CRC, changed visibly by each
command): these tests are about the protocol carrying the right bytes to the right
callback and rejecting bad frames without side effects, not about learning. The
real `lpn.device.Device` talks to it through pyserial, over a local TCP socket
(`socket://`) and over a pseudo-terminal.
"""
from __future__ import annotations

import random
import re
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lpn.docgen import markers
from hypothesis import given, settings
from hypothesis import strategies as st

from lpn import protocol as P
from lpn.device import Device, DeviceError, DeviceTimeout

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "firmware" / "lib" / "lpn_protocol" / "src"
LIB_SOURCES = [LIB / "lpn_frame.c", LIB / "lpn_protocol.c"]
FAKE_SOURCE = REPO / "tests" / "protocol_fixtures" / "fake_device.c"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
SANITIZE = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


# ---------------------------------------------------------------------------
# The definition and what is generated from it
def test_c_header_is_generated_from_the_definition():
    header = LIB / "lpn_protocol_table.h"
    assert header.read_text(encoding="utf-8") == P.render_c_header(), (
        f"{P.C_HEADER_PATH} is out of date: run `python -m lpn.protocol --write-c {P.C_HEADER_PATH}`")
    assert "GENERATED, DO NOT EDIT" in P.render_c_header() and "host/lpn/protocol.py" in P.render_c_header()


def test_doc_tables_are_generated_from_the_definition():
    text = (REPO / P.DOC_PATH).read_text(encoding="utf-8")
    assert P.render_doc(text) == text, (
        f"{P.DOC_PATH} is out of date: run `python -m lpn.protocol --write-doc {P.DOC_PATH}`")
    for c in P.COMMANDS:
        assert f"`{c.name}`" in text
    for s in P.STATUSES:
        assert f"`{s.name}`" in text


def test_generator_cli_reports_and_rewrites_stale_files(tmp_path, capsys):
    header = tmp_path / "table.h"
    header.write_text("stale\n")
    doc = tmp_path / "protocol.md"
    doc.write_text("".join(f"{a}\nold\n{b}\n" for a, b in (markers(n, f"python -m lpn.protocol --write-doc {P.DOC_PATH}") for n in P.DOC_TABLES)))
    assert P.main(["--write-c", str(header), "--write-doc", str(doc), "--check"]) == 1
    assert header.read_text() == "stale\n"
    assert P.main(["--write-c", str(header), "--write-doc", str(doc)]) == 0
    assert header.read_text() == P.render_c_header()
    assert P.main(["--write-c", str(header), "--write-doc", str(doc), "--check"]) == 0
    assert "out of date" in capsys.readouterr().out


def test_learner_codes_mirror_lpn_core():
    core = (REPO / "firmware" / "lib" / "lpn_core" / "src" / "lpn_core.h").read_text()
    in_c = {name.lower(): int(code) for name, code in re.findall(r"LPN_ERR_(\w+)\s*=\s*(-\d+)", core)}
    assert in_c, "no lpn_status codes found in lpn_core.h"
    assert in_c == {s.name: s.code for s in P.LEARNER_ERRORS}


def test_table_is_consistent():
    assert len({c.code for c in P.COMMANDS}) == len(P.COMMANDS)
    for required in ("hello", "info", "predict", "learn", "consolidate", "replay", "structural", "contrast",
                     "stats", "get_state", "put_state_begin", "put_state_chunk", "put_state_commit", "reset",
                     "save", "load"):
        assert required in P.BY_NAME
    for required in ("malformed", "bad_crc", "unknown_command", "bad_length", "oversized", "out_of_order",
                     "task", "unsupported"):
        assert required in P.STATUS_BY_NAME
    # The largest fixed reply must fit the smallest frame a device may choose.
    info = P.BY_NAME["info"]
    assert P.REPLY_HEADER + P.payload_size(info.reply, {}) + P.CRC_SIZE <= P.MAX_FRAME
    with pytest.raises(ValueError):
        P.Field("x", "i16", "widgets")


@pytest.mark.parametrize("cmd", P.COMMANDS, ids=lambda c: c.name)
def test_pack_unpack_round_trip(cmd):
    dims = {"inputs": 5, "outputs": 3, "layers": 2}
    rng = random.Random(cmd.code)

    def value(item):
        if isinstance(item, P.Group):
            return [{f.name: rng.randint(-1000, 1000) if f.type[0] == "i" else rng.randint(0, 1000)
                     for f in item.fields} for _ in range(dims[item.count])]
        if item.type == "char":
            return "ab"[: rng.randint(0, 2)]
        if item.type == "bytes":
            n = rng.randint(0, 9) if item.count == P.REST else item.size(dims)
            return bytes(rng.randrange(256) for _ in range(n))
        lo, hi = (-(1 << (8 * item.item_size - 1)), (1 << (8 * item.item_size - 1)) - 1) \
            if item.type[0] == "i" else (0, (1 << (8 * item.item_size)) - 1)
        if item.count is None:
            return rng.randint(lo, hi)
        n = item.count if isinstance(item.count, int) else dims[item.count]
        return [rng.randint(lo, hi) for _ in range(n)]

    for items in (cmd.request, cmd.reply):
        values = {i.name: value(i) for i in items}
        data = P.pack(items, values, dims)
        assert P.unpack(items, data, dims) == values
        if not any(isinstance(i, P.Field) and i.count == P.REST for i in items):
            with pytest.raises(ValueError):
                P.unpack(items, data + b"\x01", dims)


# ---------------------------------------------------------------------------
# Python framing
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_round_trip(data):
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= P.cobs_max_encoded(len(data))
    assert P.cobs_decode(enc) == data


def _replies(payloads):
    return [P.reply_frame(0x11, i, 0, p) for i, p in enumerate(payloads)]


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6), cuts=st.lists(st.integers(0, 4000)))
def test_frames_survive_any_chunking(payloads, cuts):
    stream = b"".join(_replies(payloads))
    reader = P.FrameReader()
    got = []
    last = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        got += reader.feed(stream[last:cut])
        last = cut
    assert [P.parse_reply(b).payload for b in got] == payloads
    assert [P.parse_reply(b).seq for b in got] == list(range(len(payloads)))


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=600), payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=4))
def test_reader_resynchronises_after_garbage(garbage, payloads):
    frames = _replies(payloads)
    # Garbage ended by a delimiter: every frame after it arrives intact.
    reader = P.FrameReader()
    got = reader.feed(garbage + b"\x00" + b"".join(frames))
    assert [P.parse_reply(b).payload for b in got] == payloads
    # Garbage glued to the first frame can cost that frame, never a later one.
    reader = P.FrameReader()
    got = [P.parse_reply(b).payload for b in reader.feed(garbage + b"".join(frames))]
    assert got == payloads[len(payloads) - len(got):]
    assert len(got) >= len(payloads) - 1


def test_reader_drops_runs_longer_than_a_frame_and_recovers():
    reader = P.FrameReader(max_frame=64)
    good = P.reply_frame(0x02, 9, 0, b"ok")
    assert reader.feed(b"\x01" * 500 + b"\x00" + good) == [P.check_crc(P.cobs_decode(good[:-1]))]
    assert reader.dropped == 1


def test_corrupted_frames_are_dropped():
    good = P.reply_frame(0x02, 9, 0, b"payload")
    for i in range(len(good) - 1):
        bad = bytearray(good)
        bad[i] ^= 0x10
        if bad[i] == 0:
            continue
        reader = P.FrameReader()
        assert reader.feed(bytes(bad)) == []
        assert reader.dropped == 1


def test_python_framing_throughput():
    """Encode and decode learn-sized frames; the floor is far below what is measured (tens of MB/s)
    and only catches an accidental slowdown of orders of magnitude."""
    rng = random.Random(4)
    payloads = [bytes(rng.randrange(256) for _ in range(40 + i % 100)) for i in range(200)] * 10
    t0 = time.perf_counter()
    wire = b"".join(P.request_frame(0x11, i, p) for i, p in enumerate(payloads))
    got = P.FrameReader().feed(wire)
    elapsed = time.perf_counter() - t0
    assert [b[2:] for b in got] == payloads
    assert len(wire) / elapsed > 1_000_000, f"framing at {len(wire) / elapsed:.0f} B/s"


# ---------------------------------------------------------------------------
# Building the C side
def _compile(tmp: Path, name: str, extra: list[str], compiler: str = "gcc") -> Path:
    out = tmp / name
    cmd = [compiler, *STRICT, *extra, f"-I{LIB}", str(FAKE_SOURCE), *map(str, LIB_SOURCES), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def fake_binary(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the protocol test device")
    return _compile(tmp_path_factory.mktemp("fake_device"), "fake_device", SANITIZE)


def _require(tool: str) -> None:
    """The set-up installs every tool these checks use, so a missing one is a failure, never a skip
    (as in test_c_strict.py): a skipped strictness check would pass unnoticed."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (not on PATH); the set-up installs it: "
                    f"run `make setup` or `bash scripts/install-system-deps.sh`")


@pytest.mark.parametrize("compiler,flags", [
    ("gcc", ["-O2", "-Wconversion", "-Wshadow"]),
    ("clang", ["-O2", "-Wconversion", "-Wshadow"]),
    ("arm-none-eabi-gcc", ["-Os", "-mcpu=cortex-m4", "-mthumb"]),
    ("arm-none-eabi-gcc", ["-Os", "-mcpu=cortex-m0plus", "-mthumb"]),
    ("avr-gcc", ["-Os", "-mmcu=atmega328p"]),
], ids=["gcc", "clang", "cortex-m4", "cortex-m0plus", "avr"])
def test_library_compiles_strictly(compiler, flags, tmp_path):
    _require(compiler)
    for src in LIB_SOURCES:
        r = subprocess.run([compiler, *STRICT, *flags, "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_cppcheck_is_clean():
    _require("cppcheck")
    r = subprocess.run(["cppcheck", "--std=c99", "--enable=warning,portability,performance", "--error-exitcode=1",
                        "--inline-suppr", "--quiet", f"-I{LIB}", *map(str, LIB_SOURCES)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------
# C framing against the Python definition
def _run_cobs(binary: Path, records: list[tuple[bytes, bytes]]) -> bytes:
    stdin = b"".join(op + struct.pack("<H", len(d)) + d for op, d in records)
    r = subprocess.run([str(binary), "cobs"], input=stdin, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert b"runtime error" not in r.stderr and b"Sanitizer" not in r.stderr, r.stderr.decode()
    return r.stdout


def test_c_cobs_matches_python(fake_binary):
    rng = random.Random(1)
    inputs = [b"", b"\x00", b"\x00\x00", bytes(range(1, 255)), bytes(range(1, 256)), b"\x01" * 254 + b"\x00",
              b"\x07" * 508, b"\x07" * 509]
    for _ in range(300):
        n = rng.choice([rng.randint(0, 20), rng.randint(200, 800)])
        zero_rate = rng.choice([0.0, 0.01, 0.3])
        inputs.append(bytes(0 if rng.random() < zero_rate else rng.randint(1, 255) for _ in range(n)))
    out = _run_cobs(fake_binary, [(b"E", d) for d in inputs])
    pos = 0
    for d in inputs:
        (n,) = struct.unpack_from("<H", out, pos)
        assert out[pos + 2:pos + 2 + n] == P.cobs_encode(d)
        pos += 2 + n
    assert pos == len(out)


def test_c_cobs_decoder_matches_python_on_garbage(fake_binary):
    rng = random.Random(2)
    cases = [P.cobs_encode(bytes(rng.randrange(256) for _ in range(rng.randint(0, 600)))) for _ in range(100)]
    cases += [bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))) for _ in range(300)]
    cases += [c[: rng.randint(0, len(c))] for c in cases[:100]]
    out = _run_cobs(fake_binary, [(b"D", c) for c in cases])
    pos = 0
    for c in cases:
        ok, n = out[pos], struct.unpack_from("<H", out, pos + 1)[0]
        decoded = out[pos + 3:pos + 3 + n]
        pos += 3 + n
        try:
            want = P.cobs_decode(c)
        except P.FramingError:
            assert ok == 0, c.hex()
        else:
            assert ok == 1 and decoded == want, c.hex()
    assert pos == len(out)


def _assembler_model(capacity: int, stream: bytes) -> list[tuple[str, bytes]]:
    """The frame assembler's contract (lpn_protocol.h), in Python."""
    events, buf, overflow = [], bytearray(), False
    for b in stream:
        if b == 0:
            if overflow:
                events.append(("O", bytes(buf)))
            elif buf:
                events.append(("R", bytes(buf)))
            buf, overflow = bytearray(), False
        elif len(buf) < capacity:
            buf.append(b)
        else:
            overflow = True
    return events


def test_c_frame_assembler_is_bounded_and_resynchronises(fake_binary):
    rng = random.Random(3)
    cases = []
    for _ in range(300):
        capacity = rng.choice([1, 2, 7, 64, 300])
        stream = bytes(0 if rng.random() < rng.choice([0.02, 0.2]) else rng.randint(1, 255)
                       for _ in range(rng.randint(0, 900)))
        cases.append((capacity, stream))
    out = _run_cobs(fake_binary, [(b"A", struct.pack("<H", c) + s) for c, s in cases])
    pos = 0
    for capacity, stream in cases:
        got = []
        while True:
            kind, n = chr(out[pos]), struct.unpack_from("<H", out, pos + 1)[0]
            pos += 3
            if kind == "E":
                break
            got.append((kind, out[pos:pos + n]))
            pos += n
        assert got == _assembler_model(capacity, stream)


# ---------------------------------------------------------------------------
# The device: the C library with the fake learner, over a real byte pipe
class FakeDevice:
    def __init__(self, binary: Path, mode: str = "tcp", *options: str):
        self.proc = subprocess.Popen([str(binary), mode, *options], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("FAKE "):
            self.proc.kill()
            raise RuntimeError(f"fake device did not start: {line!r} {self.proc.stderr.read().decode()}")
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        self.layout = {k: int(v) for k, v in fields.items() if k not in ("port", "path")}
        self.url = f"socket://127.0.0.1:{fields['port']}" if "port" in fields else fields["path"]

    def stop(self) -> None:
        """Ends the fake cleanly and fails on any sanitizer finding."""
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("fake device did not stop")
        err = self.proc.stderr.read().decode()
        assert code == 0 and "Sanitizer" not in err and "runtime error" not in err, err


@pytest.fixture
def fake(fake_binary):
    started = []

    def start(*options: str, mode: str = "tcp") -> FakeDevice:
        dev = FakeDevice(fake_binary, mode, *options)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        dev.stop()


def _vectors(rng: np.random.Generator, layout: dict) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(-32768, 32768, layout["inputs"])
    t = rng.integers(-32768, 32768, layout["outputs"])
    return x, t


def _i16(data: bytes, offset: int, n: int) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2", count=n, offset=offset)


def test_info_hello_and_stats(fake):
    f = fake()
    with Device(f.url) as dev:
        info = dev.info()
        assert info.protocol_version == P.VERSION
        assert (info.inputs, info.outputs, info.tasks, info.layers, info.state_bytes) == tuple(
            f.layout[k] for k in ("inputs", "outputs", "tasks", "layers", "state_bytes"))
        assert info.firmware_version == "fake-1.0"
        assert info.board == "desktop-fake-boa"  # cut to the 16-byte field
        assert bytes.fromhex(info.model_hash) == bytes((i * 7 + 1) & 0xFF for i in range(32))
        assert info.max_frame == dev.max_frame == 256
        assert (info.synapses, info.free_ram) == (1234, 4321)
        stats = dev.stats()
        assert stats.step == 0 and len(stats.layers) == f.layout["layers"]
        assert [layer.budget for layer in stats.layers] == [10, 11]
        assert stats.layers[1].loss_fast == -1  # negative i32 survives the trip


def test_learn_delivers_exact_vectors_and_predict_matches(fake):
    f = fake()
    lay = f.layout
    rng = np.random.default_rng(5)
    with Device(f.url) as dev:
        for i in range(30):
            x, t = _vectors(rng, lay)
            if i == 0:
                x[:4] = [-32768, 32767, -1, 0]
            task = i % lay["tasks"]
            dev.learn(x, t, task=task)
            state = dev.get_state()
            assert struct.unpack_from("<I", state, lay["off_step"])[0] == i + 1
            assert state[lay["off_task"]] == task
            assert np.array_equal(_i16(state, lay["off_x"], lay["inputs"]), x)
            assert np.array_equal(_i16(state, lay["off_t"], lay["outputs"]), t)
            assert dev.stats().task == task
            # The fake's forward pass, from the state just pulled.
            mem = np.frombuffer(state, np.uint8, lay["outputs"], lay["off_mem"]).astype(np.int64)
            y = np.clip(x[: lay["outputs"]] - x[::-1][: lay["outputs"]] + mem, -32768, 32767)
            for ptask in (None, *range(lay["tasks"])):
                allowed = np.array([ptask is None or j % lay["tasks"] == ptask for j in range(lay["outputs"])])
                cls, out = dev.predict(x, task=ptask)
                assert np.array_equal(out, y)
                assert cls == int(np.flatnonzero(allowed)[np.argmax(y[allowed])])
        assert dev.stats().step == 30  # predict and get_state changed nothing


def test_learner_and_protocol_errors_reach_the_host_by_name(fake):
    f = fake()
    lay = f.layout
    x, t = _vectors(np.random.default_rng(0), lay)
    with Device(f.url) as dev:
        cases = [
            (lambda: dev.replay(1), "replay_empty"),            # nothing learnt yet
            (lambda: dev.contrast(x), "disabled"),              # the fake has no contrastive layer
            (lambda: dev.learn(x, t, task=lay["tasks"]), "task"),
            (lambda: dev.predict(x, task=lay["tasks"]), "task"),
            (lambda: dev.replay(lay["replay_alien"]), "learner_failed"),
            (dev.save, "unsupported"),
            (dev.load, "unsupported"),
        ]
        for call, name in cases:
            before = dev.get_state()
            with pytest.raises(DeviceError) as err:
                call()
            assert err.value.name == name and err.value.code == P.STATUS_BY_NAME[name].code
            assert dev.get_state() == before
        for command in ("consolidate", "structural"):
            before = dev.stats().step
            getattr(dev, command)()
            assert dev.stats().step == before + 1
        dev.learn(x, t, task=0)
        dev.replay(3)
        assert dev.stats().step == 2 + 1 + 3
        dev.reset()
        assert dev.stats().step == 0


def test_raw_frames_get_the_documented_errors(fake):
    f = fake()
    with Device(f.url) as dev:
        def status(code, payload=b""):
            return dev.exchange(code, payload).status_name

        before = dev.get_state()
        dev.hello()  # ends the snapshot that get_state took
        assert status(0x7E) == "unknown_command"
        assert status(0x02 | P.REPLY_FLAG) == "unknown_command"  # a reply is not a request
        assert status(P.BY_NAME["info"].code, b"\x00") == "bad_length"
        assert status(P.BY_NAME["learn"].code, b"\x00" * 5) == "bad_length"
        assert status(P.BY_NAME["consolidate"].code, b"\x01") == "bad_length"
        assert status(P.BY_NAME["get_state"].code, struct.pack("<IH", 8, 16)) == "out_of_order"
        assert status(P.BY_NAME["put_state_chunk"].code, struct.pack("<I", 0) + b"x") == "out_of_order"
        assert status(P.BY_NAME["put_state_commit"].code) == "out_of_order"
        assert status(P.BY_NAME["put_state_begin"].code, struct.pack("<II", 999, 0)) == "bad_length"
        reply = dev.exchange(P.BY_NAME["hello"].code, struct.pack("<H", P.VERSION + 1))
        assert reply.status_name == "version"
        assert P.unpack(P.BY_NAME["hello"].reply, reply.payload, {})["protocol_version"] == P.VERSION
        assert dev.get_state() == before

        # Frames the device cannot even parse: answered, matched by their seq.
        link = dev.link
        reader = P.FrameReader()

        def raw(wire):
            link.write(wire)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for body in reader.feed(link.read(max(1, link.in_waiting))):
                    return P.parse_reply(body)
            raise AssertionError("no reply")

        body = bytes((0x02, 0x55)) + b"\x00\x00\x00\x00"  # info with a wrong CRC
        r = raw(b"\x00" + P.cobs_encode(body) + b"\x00")
        assert (r.status_name, r.code, r.seq) == ("bad_crc", 0x02, 0x55)
        r = raw(b"\x00" + P.cobs_encode(b"\x02\x56\x01") + b"\x00")
        assert (r.status_name, r.seq) == ("malformed", 0x56)
        r = raw(b"\x00\x05\x02\x57\x00")  # a COBS block running past the frame's end
        assert r.status_name == "malformed"
        huge = P.request_frame(0x02, 0x58, b"\x01" * 400)
        r = raw(b"\x00" + huge)
        assert (r.status_name, r.code, r.seq) == ("oversized", 0x02, 0x58)
        assert dev.get_state() == before
        assert dev.info().inputs == f.layout["inputs"]  # still in step


def test_hello_refuses_another_protocol_version(fake, monkeypatch):
    f = fake()
    monkeypatch.setattr(P, "VERSION", P.VERSION + 1)
    with pytest.raises(DeviceError) as err:
        Device(f.url)
    assert err.value.name == "version" and "speaks protocol version" in str(err.value)


def test_state_round_trip_in_chunks(fake):
    f = fake()
    lay = f.layout
    rng = np.random.default_rng(8)
    with Device(f.url) as dev:
        for _ in range(5):
            dev.learn(*_vectors(rng, lay), task=1)
        saved = dev.get_state()
        assert len(saved) == lay["state_bytes"] > dev.max_frame  # really several chunks
        dev.reset()
        assert dev.get_state() != saved
        dev.put_state(saved)
        assert dev.get_state() == saved
        assert dev.stats().step == 5


def test_state_upload_is_all_or_nothing(fake):
    f = fake()
    lay = f.layout
    rng = np.random.default_rng(9)
    with Device(f.url) as dev:
        dev.learn(*_vectors(rng, lay), task=0)
        good = dev.get_state()
        dev.learn(*_vectors(rng, lay), task=2)
        current = dev.get_state()
        begin, chunk, commit = (P.BY_NAME[n].code for n in ("put_state_begin", "put_state_chunk",
                                                             "put_state_commit"))

        def status(code, payload=b""):
            return dev.exchange(code, payload).status_name

        # Interrupted: begun, half sent, then abandoned for a download.
        assert status(begin, struct.pack("<II", len(good), P.crc32(good))) == "ok"
        assert status(chunk, struct.pack("<I", 0) + good[:200]) == "ok"
        assert status(chunk, struct.pack("<I", 100) + good[100:200]) == "out_of_order"  # a gap or repeat
        assert status(chunk, struct.pack("<I", 200) + b"") == "bad_length"
        assert status(commit) == "out_of_order"                                         # incomplete
        assert dev.get_state() == current                                               # ends the upload
        assert status(chunk, struct.pack("<I", 200) + good[200:300]) == "out_of_order"  # nothing open now

        # Complete but not what was announced: refused, nothing imported, still open.
        assert status(begin, struct.pack("<II", len(good), P.crc32(good) ^ 1)) == "ok"
        for off in range(0, len(good), 200):
            assert status(chunk, struct.pack("<I", off) + good[off:off + 200]) == "ok"
        assert status(chunk, struct.pack("<I", len(good)) + b"x") == "bad_length"       # past the end
        assert status(commit) == "state_crc"
        assert dev.stats().saturations == struct.unpack_from("<I", current, lay["off_crc"])[0]

        # Intact transport, but a state the learner refuses (its own check).
        bad = bytearray(good)
        bad[lay["off_mem"]] ^= 0xFF
        with pytest.raises(DeviceError) as err:
            dev.put_state(bytes(bad))
        assert err.value.name == "state"
        with pytest.raises(DeviceError) as err:
            dev.put_state(good[:-1])
        assert err.value.name == "bad_length"
        assert dev.get_state() == current

        dev.put_state(good)
        assert dev.get_state() == good


def test_download_is_one_consistent_snapshot(fake):
    f = fake()
    lay = f.layout
    rng = np.random.default_rng(10)
    with Device(f.url) as dev:
        dev.learn(*_vectors(rng, lay), task=0)
        expected = dev.get_state()
        get = P.BY_NAME["get_state"]
        first = P.unpack(get.reply, dev.exchange(get.code, struct.pack("<IH", 0, 100)).payload, {})
        dev.learn(*_vectors(rng, lay), task=1)           # the device learns mid-download
        rest = P.unpack(get.reply, dev.exchange(get.code, struct.pack("<IH", 100, 5000)).payload, {})
        assert first["crc"] == rest["crc"] == P.crc32(expected)
        assert first["data"] + rest["data"][: len(expected) - 100] == expected[: 100 + len(rest["data"])]
        end = P.unpack(get.reply, dev.exchange(get.code, struct.pack("<IH", len(expected), 10)).payload, {})
        assert end["data"] == b""
        assert dev.exchange(get.code, struct.pack("<IH", len(expected) + 1, 1)).status_name == "bad_argument"
        assert dev.get_state() != expected                # a new snapshot sees the new state


def test_without_a_staging_buffer_state_transfers_are_unsupported(fake):
    f = fake("--no-state-buffer")
    with Device(f.url) as dev:
        for call in (dev.get_state, lambda: dev.put_state(b"\x00" * f.layout["state_bytes"])):
            with pytest.raises(DeviceError) as err:
                call()
            assert err.value.name == "unsupported"
        assert dev.stats().step == 0


@pytest.mark.parametrize("option", ["--drop-every", "--garble-every"])
def test_lost_and_garbled_exchanges_are_retried_without_running_twice(fake, option):
    f = fake(option, "4")
    lay = f.layout
    rng = np.random.default_rng(11)
    with Device(f.url, timeout=0.1, retries=8) as dev:
        samples = [_vectors(rng, lay) for _ in range(24)]
        for x, t in samples:
            dev.learn(x, t, task=2)
        state = dev.get_state()
        assert dev.stats().step == len(samples)          # each learn ran exactly once
        assert np.array_equal(_i16(state, lay["off_x"], lay["inputs"]), samples[-1][0])
        assert dev.link_counters["resent"] > 0


def test_resynchronises_after_line_noise(fake):
    f = fake()
    rng = random.Random(12)
    with Device(f.url) as dev:
        for _ in range(20):
            noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
            dev.link.write(noise)
            assert dev.info().inputs == f.layout["inputs"]
        assert dev.stats().step == 0


def test_device_over_a_pseudo_terminal(fake):
    f = fake(mode="pty")
    assert f.url.startswith("/dev/")
    lay = f.layout
    x, t = _vectors(np.random.default_rng(13), lay)
    with Device(f.url, baudrate=115200) as dev:
        assert dev.info().inputs == lay["inputs"]
        dev.learn(x, t, task=1)
        state = dev.get_state()
        assert np.array_equal(_i16(state, lay["off_x"], lay["inputs"]), x)
        dev.put_state(state)
        assert dev.stats().step == 1


def test_timeouts_resend_the_same_frame():
    """A device that never answers: the same frame (same seq) goes out retries+1 times, then DeviceTimeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = bytearray()

    def swallow():
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(4096):
                received.extend(chunk)

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    dev = Device(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.1, retries=2, handshake=False)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout) as err:
        dev.consolidate()
    assert err.value.name == "timeout" and 0.25 < time.monotonic() - t0 < 3
    dev.close()
    thread.join(5)
    server.close()
    frames = [P.check_crc(P.cobs_decode(bytes(p))) for p in bytes(received).split(b"\x00") if p]
    assert len(frames) == 3 and len(set(frames)) == 1
    assert frames[0][0] == P.BY_NAME["consolidate"].code


def test_host_checks_before_sending(fake):
    f = fake()
    with Device(f.url) as dev:
        with pytest.raises(ValueError):
            dev.learn(np.zeros(3, int), np.zeros(f.layout["outputs"], int))
        with pytest.raises(ValueError):
            dev.learn(np.full(f.layout["inputs"], 40000), np.zeros(f.layout["outputs"], int))
        with pytest.raises(ValueError):
            dev.predict(np.zeros(f.layout["inputs"]))  # floats: not quantised
        with pytest.raises(DeviceError) as err:
            dev.exchange(0x11, b"\x00" * 300)
        assert err.value.name == "oversized"
        assert dev.stats().step == 0


# ---------------------------------------------------------------------------
# Fuzz
def _fuzz_frames(rng: random.Random, n: int, dims: dict) -> list[bytes]:
    """Encoded, zero-free frame bodies: random, well-formed with random content, and mutated."""
    codes = [c.code for c in P.COMMANDS] + [0x00, 0x7F, 0x80, 0x91, 0xFF]
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.25:
            body = bytes(rng.randint(1, 255) for _ in range(rng.choice([rng.randint(1, 12), rng.randint(1, 420)])))
            out.append(body)
            continue
        code = rng.choice(codes)
        cmd = P.BY_CODE.get(code)
        if cmd is not None and rng.random() < 0.6:
            size = P.payload_size(cmd.request, dims, rng.randint(0, 60))
            size = max(0, size + rng.choice([0, 0, 0, -1, 1, rng.randint(-5, 5)]))
        else:
            size = rng.randint(0, 80)
        payload = bytearray(rng.randrange(256) for _ in range(size))
        if payload and rng.random() < 0.5:
            payload[0] = rng.randrange(4)  # plausible task ids and small offsets
        raw = bytes((code, rng.randrange(256))) + bytes(payload)
        raw += struct.pack("<I", P.crc32(raw))
        if kind < 0.65:
            out.append(P.cobs_encode(raw))
            continue
        m = bytearray(raw if rng.random() < 0.5 else P.cobs_encode(raw))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            i = rng.randrange(len(m))
            if op == 0:
                m[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                del m[i:i + rng.randint(1, 4)]
            elif op == 2:
                m[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif len(m) > 2:
                m = m[: rng.randint(1, len(m))]
            if not m:
                m = bytearray(b"\x01")
        m = bytes(m)
        # Mutated before encoding: usually a bad CRC; after: usually bad COBS.
        enc = P.cobs_encode(m) if rng.random() < 0.5 else m.replace(b"\x00", b"\x01")
        out.append(enc)
    return out


def test_fuzz_every_frame_answered_and_rejections_change_nothing(fake):
    f = fake()
    lay = f.layout
    dims = {k: lay[k] for k in ("inputs", "outputs", "layers")}
    frames = _fuzz_frames(random.Random(2024), 10_000, dims)
    reader = P.FrameReader()
    counts: dict[str, int] = {}
    with Device(f.url) as dev:
        link = dev.link
        x, t = _vectors(np.random.default_rng(14), lay)
        dev.learn(x, t, task=0)

        def fingerprint():
            s = dev.stats()
            return s.step, s.saturations  # the fake reports its state CRC as saturations

        before = fingerprint()
        t0 = time.monotonic()
        for i, body in enumerate(frames):
            link.write(b"\x00" + body + b"\x00")
            deadline = time.monotonic() + 5
            reply = None
            while reply is None:
                assert time.monotonic() < deadline, f"no answer to fuzz frame {i}: {body.hex()}"
                for b in reader.feed(link.read(max(1, link.in_waiting))):
                    reply = P.parse_reply(b)
            counts[reply.status_name] = counts.get(reply.status_name, 0) + 1
            after = fingerprint()
            if reply.status != 0:
                assert after == before, f"rejected frame {i} ({reply.status_name}) changed the state: {body.hex()}"
            before = after
        elapsed = time.monotonic() - t0
        # Still fully working afterwards.
        dev.learn(x, t, task=1)
        assert dev.get_state()[lay["off_task"]] == 1
    print("fuzz replies by status:", dict(sorted(counts.items(), key=lambda kv: -kv[1])))
    assert sum(counts.values()) == len(frames)
    for name in ("malformed", "bad_crc", "unknown_command", "bad_length", "oversized", "ok"):
        assert counts.get(name, 0) > 0, counts
    assert elapsed < 60
