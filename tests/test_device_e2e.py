"""End to end on the emulated boards: the real PlatformIO build, the firmware in QEMU,
the host commands over the serial line, and the Python fixed model as the reference.

- A fresh Cortex-M4 firmware (the default digits model compiled in) gets a trained
  model pushed, learns 1,100 digits over serial in five task blocks through `lpn
  stream` (task switches consolidate, replay runs every fourth sample, and explicit
  consolidate/replay commands come between blocks), and the state pulled with `lpn
  pull` is bit-identical to the Python model fed the same stream. Each block's
  running accuracy (predict before learn) must equal the reference's count exactly.
- A fuzz run sends 10,000+ distinct random and mutated frames to the firmware
  (counted apart from the retries and the uploads' frames that come on top): every
  frame gets exactly one reply, the device never hangs, and the device's state always
  equals a host mirror that applies only the requests the device accepted, so no
  rejected frame changed anything; an upload interleaved with rejected frames
  still commits.
- A Cortex-M3 firmware built from a converted model (a config with structural
  plasticity) takes a pushed model, learns, consolidates, replays, prunes and
  regrows, and the pulled state is bit-identical.

QEMU is started and stopped by every test itself, under a watchdog timeout.
"""
from __future__ import annotations

import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import build_firmware, datasets, modelfile
from lpn import protocol as P
from lpn.cli import main
from lpn.commands.device import same_model_family
from lpn.device import Device, DeviceError
from raw_link import RawLink
from lpn.emulator import Emulator, qemu_machine_for_env
from lpn.fixed import FixedLPN

pytestmark = pytest.mark.slow

BLOCK = 220           # samples per task block of the digits stream
EMULATOR_LIMIT = 120  # seconds: QEMU is killed after this, whatever happens


# ---------------------------------------------------------------------------
# Fixtures
@pytest.fixture(scope="module")
def m4(tmp_path_factory) -> build_firmware.FirmwareBuild:
    """The default Cortex-M4 firmware (no --model: the shipped digits model)."""
    build_dir = tmp_path_factory.mktemp("m4")
    cold = build_firmware.build("qemu_m4", build_dir=build_dir)
    warm = build_firmware.build("qemu_m4", build_dir=build_dir)
    _report_build(cold, warm)
    return warm


def _report_build(cold: build_firmware.FirmwareBuild, warm: build_firmware.FirmwareBuild) -> None:
    size = warm.size
    print(f"\n{warm.env}: build {cold.seconds:.2f} s cold, {warm.seconds:.2f} s warm; "
          f"flash {size.flash} B (text {size.text}, data {size.data}), RAM {size.ram} B "
          f"(data {size.data}, bss {size.bss}, of which stack {size.sections.get('.stack', 0)})")


def cli(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def digits_split():
    """Digits in dataset order: 150 to pretrain the pushed model, then five task blocks
    (task k holds labels 2k and 2k+1) of BLOCK samples each."""
    X, y = datasets.digits()
    pre = np.arange(150)
    rest = np.arange(150, len(y))
    blocks = []
    for k in range(5):
        members = rest[np.isin(y[rest], (2 * k, 2 * k + 1))][:BLOCK]
        assert len(members) == BLOCK
        blocks.append((X[members], y[members]))
    return (X[pre], y[pre]), blocks


def task_mask(model: FixedLPN, task: int) -> np.ndarray:
    return np.flatnonzero(model.config.task_mask(task))


def device_state(url: str) -> bytes:
    with Device(url, timeout=5) as dev:
        return dev.get_state()


# ---------------------------------------------------------------------------
def _symbol(elf: Path, name: str) -> int:
    import subprocess
    table = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in table.splitlines() if line.split()[-1] == name)


def test_info_names_the_compiled_in_model_and_the_free_ram(m4):
    model = FixedLPN.new("digits")
    with Emulator(m4.program, machine=qemu_machine_for_env("qemu_m4"), timeout=EMULATOR_LIMIT) as emu:
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            stats = dev.stats()
            with pytest.raises(DeviceError, match="unsupported"):
                dev.save()  # no persistent storage yet
    assert info.model_hash == modelfile.model_hash(model)
    assert (info.inputs, info.outputs, info.tasks, info.layers) == (64, 10, 5, 2)
    assert (info.state_bytes, info.synapses) == (len(model.state_bytes()), model.topology.synapses)
    assert (info.firmware_version, info.board, info.max_frame) == ("0.1.0", "mps2_an386", P.MAX_FRAME)
    # No heap: the RAM above the stack reservation is what is free.
    assert info.free_ram == _symbol(m4.program, "_eram") - _symbol(m4.program, "_estack")
    assert 0 < info.free_ram < 4 * 1024 * 1024 - m4.size.ram
    assert (stats.step, stats.seen, stats.task) == (0, 0, 0)
    assert [layer.budget for layer in stats.layers] == [int(model.state[f"L{i}.budget"]) for i in (1, 2)]


def test_pushed_model_learns_a_stream_bit_identical_to_the_python_model(m4, tmp_path):
    compiled_in = FixedLPN.new("digits")
    assert m4.learner.model_hash == modelfile.model_hash(compiled_in)
    (X_pre, y_pre), blocks = digits_split()
    trained = FixedLPN.new("digits")
    trained.partial_fit(X_pre, y_pre, classes=np.arange(10), task=y_pre // 2)
    modelfile.save(trained, tmp_path / "trained.lpn")
    assert modelfile.model_hash(trained) != m4.learner.model_hash
    reference = modelfile.load(tmp_path / "trained.lpn")

    with Emulator(m4.program, machine=qemu_machine_for_env("qemu_m4"), timeout=EMULATOR_LIMIT) as emu:
        assert device_state(emu.url) == compiled_in.state_bytes()
        cli("push", emu.url, tmp_path / "trained.lpn")
        assert device_state(emu.url) == trained.state_bytes()

        rates = []
        for k, (X, y) in enumerate(blocks):
            csv = tmp_path / f"block{k}.csv"
            datasets.write_csv(csv, X, y, label="label")
            # Block 2 names its task; the others let each label's task be inferred.
            output = cli("stream", emu.url, csv, "--label", "label", *(["--task", "2"] if k == 2 else []))
            correct, total = map(int, re.search(r"running accuracy (\d+)/(\d+)", output).groups())
            rates.append(tuple(map(float, re.search(r"([\d.]+) learn steps/s, (\d+) B/s", output).groups())))

            x_q = reference.quantise_input(X)
            t_q = reference.quantise_target(np.eye(10)[y])
            expected = 0
            for i in range(len(y)):
                mask = task_mask(reference, k)
                expected += int(mask[np.argmax(reference.predict_q(x_q[i])[mask])] == y[i])
                reference.learn_q(x_q[i], t_q[i], k)
            assert (correct, total) == (expected, len(y)), f"block {k}: device and reference predicted differently"

            with Device(emu.url, timeout=5) as dev:
                dev.consolidate()
                dev.replay(5)
                stats = dev.stats()
            reference.consolidate()
            reference.replay(5)
            assert (stats.step, stats.task, stats.seen) == (
                int(reference.state["step"]), k, int(reference.state["seen"]))

        cli("pull", emu.url, "--out", tmp_path / "pulled.lpn")
        assert emu.process.poll() is None, emu.output

    pulled = modelfile.load(tmp_path / "pulled.lpn")
    assert pulled.state_bytes() == reference.state_bytes()
    assert modelfile.model_hash(pulled) == modelfile.model_hash(reference)
    # The stream exercised what it claims to: every task, consolidation, replay.
    assert sum(len(y) for _, y in blocks) >= 1000
    assert int(reference.state["task"]) == 4 and reference.filled == reference.config.replay.capacity
    assert np.any(reference.state["L1.c"] > 0) and np.any(reference.state["L2.c"] > 0)
    steps, line = np.mean([r[0] for r in rates]), np.mean([r[1] for r in rates])
    print(f"\nqemu_m4 stream: {steps:.1f} learn steps/s with a predict before each, {line:.0f} B/s on the line")


# ---------------------------------------------------------------------------
# Fuzzing
def body(cmd: int, seq: int, payload: bytes) -> bytes:
    raw = bytes((cmd & 0xFF, seq & 0xFF)) + payload
    return raw + struct.pack("<I", P.crc32(raw))


def with_crc(decoded: bytes) -> bytes:
    return decoded[:-4] + struct.pack("<I", P.crc32(decoded[:-4]))


def crc_ok(decoded: bytes) -> bool:
    return len(decoded) >= 4 and P.crc32(decoded[:-4]) == int.from_bytes(decoded[-4:], "little")


class Fuzzer:
    """Makes request frames: well-formed, mutated, and plain garbage."""

    def __init__(self, rng: np.random.Generator, info, max_frame: int):
        self.rng = rng
        self.info = info
        self.max_frame = max_frame
        self.dims = {"inputs": info.inputs, "outputs": info.outputs, "layers": info.layers}

    def vector(self, n: int) -> list[int]:
        if self.rng.random() < 0.2:
            return self.rng.integers(-32768, 32768, n).tolist()
        return self.rng.integers(-2000, 20000, n).tolist()

    def task(self) -> int:
        r = self.rng.random()
        if r < 0.8:
            return int(self.rng.integers(self.info.tasks))
        return int(self.rng.choice([self.info.tasks, 0x7F, 0xFE, 0xFF]))

    def request(self) -> tuple[int, bytes]:
        """A command with a payload of the right shape (its values may be out of range)."""
        names = ["hello", "info", "stats", "predict", "learn", "contrast", "consolidate", "replay",
                 "structural", "reset", "get_state", "put_state_begin", "put_state_chunk", "put_state_commit",
                 "save", "load", "unknown"]
        name = names[self.rng.integers(len(names))]
        rng, total = self.rng, self.info.state_bytes
        if name == "unknown":
            codes = sorted(set(range(256)) - set(P.BY_CODE))
            return int(rng.choice(codes)), rng.bytes(int(rng.integers(0, 20)))
        values = {
            "hello": {"host_version": P.VERSION if rng.random() < 0.7 else int(rng.integers(65536))},
            "predict": {"task": self.task(), "x": self.vector(self.info.inputs)},
            "learn": {"task": self.task(), "x": self.vector(self.info.inputs), "t": self.vector(self.info.outputs)},
            "contrast": {"x": self.vector(self.info.inputs)},
            "replay": {"count": int(rng.integers(0, 4))},
            # Mostly short reads: a full 4 KB chunk takes the emulated UART a while.
            "get_state": {"offset": int(rng.choice([0, 1, 4000, total, total + 1, rng.integers(1 << 32)])),
                          "length": int(rng.integers(0, 5000) if rng.random() < 0.1 else rng.integers(0, 64))},
            "put_state_begin": {"total": int(rng.choice([total, total - 1, rng.integers(1 << 32)])),
                                "crc": int(rng.integers(1 << 32))},
            "put_state_chunk": {"offset": int(rng.choice([0, 100, total, rng.integers(1 << 32)])),
                                "data": rng.bytes(int(rng.integers(0, 200)))},
        }.get(name, {})
        cmd = P.BY_NAME[name]
        return cmd.code, P.pack(cmd.request, values, self.dims)

    def frame(self) -> bytes:
        """One new random or mutated frame for the wire: delimiter, encoded bytes, delimiter.
        (Retries, exact repeats of the frame before, are the caller's.)"""
        rng = self.rng
        r = rng.random()
        seq = int(rng.integers(256))
        if r < 0.25:
            garbage = bytes(b % 255 + 1 for b in rng.bytes(int(rng.integers(1, 120))))
            return b"\x00" + garbage + b"\x00"                  # noise: mostly malformed or bad CRC
        if r < 0.252:
            # Rare: the emulated UART takes a few tenths of a second per 4 KB.
            size = int(rng.choice([self.max_frame + 1, self.max_frame + 9, 6000]))
            decoded = body(P.BY_NAME["learn"].code, seq, rng.bytes(size - 6))
            return b"\x00" + P.cobs_encode(decoded) + b"\x00"  # oversized, CRC and all
        code, payload = self.request()
        decoded = bytearray(body(code, seq, payload))
        if r < 0.45:
            pass                                               # well-formed
        elif r < 0.65:
            for _ in range(int(rng.integers(1, 4))):           # bit errors on the line
                i = int(rng.integers(len(decoded)))
                decoded[i] ^= 1 << int(rng.integers(8))
        elif r < 0.85:
            decoded = bytearray(with_crc(self.mutate(bytes(decoded))))  # wrong shape, right CRC
        else:
            encoded = P.cobs_encode(bytes(decoded))            # broken encoding
            cut = int(rng.integers(1, len(encoded) + 1))
            return b"\x00" + encoded[:cut] + bytes(b % 255 + 1 for b in rng.bytes(int(rng.integers(0, 3)))) + b"\x00"
        decoded = self.tame(bytes(decoded))
        return b"\x00" + P.cobs_encode(decoded) + b"\x00"

    def mutate(self, decoded: bytes) -> bytes:
        rng = self.rng
        data = bytearray(decoded[:-4])
        how = int(rng.integers(5))
        if how == 0 and len(data) > 2:
            del data[int(rng.integers(2, len(data) + 1)):]               # truncated payload
        elif how == 1:
            data += rng.bytes(int(rng.integers(1, 8)))                  # extra bytes
        elif how == 2:
            data[0] = int(rng.integers(256))                            # another command
        elif how == 3 and len(data) > 2:
            i = int(rng.integers(2, len(data)))
            data[i] = int(rng.integers(256))                            # a field out of range
        else:
            data = data[:2]                                             # no payload at all
        return bytes(data) + b"\0\0\0\0"

    def tame(self, decoded: bytes) -> bytes:
        """A replay request that would run thousands of steps is cut to a few: the fuzz
        run is about rejections, not about waiting."""
        if len(decoded) == 8 and decoded[0] == P.BY_NAME["replay"].code and crc_ok(decoded):
            count = int.from_bytes(decoded[2:4], "little")
            if count > 3:
                return with_crc(decoded[:2] + (count % 4).to_bytes(2, "little") + decoded[4:])
        return decoded


class Mirror:
    """The host's copy of the device: applies exactly the requests the device accepted."""

    CHANGES = {"learn", "contrast", "consolidate", "replay", "structural", "reset", "put_state_commit",
               "put_state_begin"}

    def __init__(self, compiled_in: FixedLPN, info, max_frame: int):
        self.model = FixedLPN(compiled_in.config, compiled_in.formats, compiled_in.topology)
        self.initial = compiled_in.state_bytes()
        self.model.load_state_bytes(self.initial)
        self.info = info
        self.max_frame = max_frame
        self.dims = {"inputs": info.inputs, "outputs": info.outputs, "layers": info.layers}
        self.last: tuple[int, int] | None = None  # (seq, crc) of the last frame the dispatcher ran
        self.last_reply: bytes | None = None
        self.upload_crc: int | None = None
        self.uploads: dict[int, bytes] = {}
        self.counts = {"accepted": 0, "rejected": 0, "cached": 0, "undecodable": 0}
        self.applied: dict[str, int] = {}  # accepted requests by command

    def account(self, wire: bytes, reply_encoded: bytes) -> None:
        """Checks one reply against the frame that caused it and applies the frame if it was run."""
        reply = P.parse_reply(P.check_crc(P.cobs_decode(reply_encoded)))  # the device's reply is always valid
        encoded = wire.strip(b"\x00")
        try:
            decoded = P.cobs_decode(encoded)
        except P.FramingError:
            decoded = None
        if decoded is None or len(decoded) < 6 or len(decoded) > self.max_frame or not crc_ok(decoded):
            assert reply.status_name in ("malformed", "bad_crc", "oversized"), reply
            assert reply.payload == b""
            self.counts["undecodable"] += 1
            return
        cmd, seq, crc = decoded[0], decoded[1], int.from_bytes(decoded[-4:], "little")
        assert (reply.code, reply.seq) == (cmd & 0x7F, seq), (reply, cmd, seq)
        if self.last == (seq, crc) and cmd != P.BY_NAME["hello"].code:
            assert reply_encoded == self.last_reply, "a repeated frame must get the same reply"
            self.counts["cached"] += 1
            return
        self.last, self.last_reply = (seq, crc), reply_encoded
        if reply.status != 0:
            self.counts["rejected"] += 1
            return
        self.counts["accepted"] += 1
        command = P.BY_CODE[cmd]
        values = P.unpack(command.request, decoded[2:-4], self.dims)
        name = command.name
        self.applied[name] = self.applied.get(name, 0) + 1
        if name == "learn":
            self.model.learn_q(np.array(values["x"]), np.array(values["t"]), values["task"])
        elif name == "contrast":
            self.model.contrast_q(np.array(values["x"]))
        elif name == "consolidate":
            self.model.consolidate()
        elif name == "replay":
            self.model.replay(values["count"])
        elif name == "structural":
            self.model.structural()
        elif name == "reset":
            self.model.load_state_bytes(self.initial)
        elif name == "put_state_begin":
            self.upload_crc = values["crc"]
        elif name == "put_state_commit":
            assert self.upload_crc in self.uploads, "the device committed an upload nobody made"
            self.model.load_state_bytes(self.uploads[self.upload_crc])

    def state_crc(self) -> int:
        return P.crc32(self.model.state_bytes())


FUZZ_FRAMES = 10_000  # distinct random or mutated frames, not counting retries and uploads
RETRY_RATE = 0.03     # chance that a frame is the previous one again (answered from the reply cache)
BATCH = 32            # frames in flight at once; the replies come back in order
CHECK_EVERY = 500     # fuzz frames between two state checks
UPLOAD_EVERY = 2_000  # fuzz frames between two uploads through noise


def _check_state(link: RawLink, mirror: Mirror, check_no: int) -> None:
    # A get_state snapshot's reply carries the CRC of the whole state: one cheap
    # exchange. The varying length keeps the frame from matching the reply cache.
    payload = P.pack(P.BY_NAME["get_state"].request, {"offset": 0, "length": 1 + check_no % 200}, {})
    wire = b"\x00" + P.request_frame(P.BY_NAME["get_state"].code, check_no & 0xFF, payload)
    link.send(wire)
    (encoded,) = link.replies(1, timeout=10)
    reply = P.parse_reply(P.check_crc(P.cobs_decode(encoded)))
    assert reply.status == 0, reply
    values = P.unpack(P.BY_NAME["get_state"].reply, reply.payload, {})
    assert values["crc"] == mirror.state_crc(), f"state differs from the mirror at check {check_no}"
    # The check went through the dispatcher like any frame: it is now the one a
    # repeat would be answered from, and its snapshot ended any upload.
    mirror.last = (check_no & 0xFF, int.from_bytes(P.cobs_decode(wire[1:-1])[-4:], "little"))
    mirror.last_reply = encoded
    mirror.upload_crc = None


def _upload_through_noise(link: RawLink, mirror: Mirror, fuzzer: Fuzzer, state: bytes, seq: int) -> int:
    """An upload whose frames are interleaved with frames the device must reject; it must commit."""
    frames = [(P.BY_NAME["put_state_begin"].code, struct.pack("<II", len(state), P.crc32(state)))]
    room = fuzzer.max_frame - 2 - 4 - 4
    frames += [(P.BY_NAME["put_state_chunk"].code, struct.pack("<I", o) + state[o:o + room])
               for o in range(0, len(state), room)]
    frames.append((P.BY_NAME["put_state_commit"].code, b""))
    mirror.uploads[P.crc32(state)] = state
    sent = 0
    for code, payload in frames:
        seq = (seq + 1) & 0xFF
        noise = []
        for _ in range(2):
            damaged = bytearray(body(code, seq ^ 0x55, payload))
            damaged[-1] ^= 0xA5                                         # a CRC that cannot match
            noise.append(b"\x00" + P.cobs_encode(bytes(damaged)) + b"\x00")
        noise.append(b"\x00" + bytes(b % 255 + 1 for b in fuzzer.rng.bytes(40)) + b"\x00")
        real = b"\x00" + P.cobs_encode(body(code, seq, payload)) + b"\x00"
        batch = [*noise, real]
        link.send(b"".join(batch))
        replies = link.replies(len(batch), timeout=10)
        for wire, encoded in zip(batch, replies):
            mirror.account(wire, encoded)
        status = P.parse_reply(P.check_crc(P.cobs_decode(replies[-1]))).status_name
        assert status == "ok", f"{P.BY_CODE[code].name} failed with {status} amid rejected frames"
        sent += len(batch)
    return sent


def test_fuzzed_frames_all_get_answers_and_rejections_change_nothing(m4):
    rng = np.random.default_rng(2024)
    compiled_in = FixedLPN.new("digits")
    with Emulator(m4.program, machine=qemu_machine_for_env("qemu_m4"), timeout=EMULATOR_LIMIT) as emu:
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            max_frame = dev.max_frame
        link = RawLink(emu.url)
        try:
            mirror = Mirror(compiled_in, info, max_frame)
            fuzzer = Fuzzer(rng, info, max_frame)
            started = time.monotonic()
            # Only new frames from the fuzzer count toward FUZZ_FRAMES, and each is sent
            # once: a frame that repeats an earlier one byte for byte (about 6 % of draws,
            # mostly payload-less commands) is drawn again. Retries (the previous frame
            # again, on purpose), the uploads' frames and the state checks come on top.
            distinct: set[bytes] = set()
            fuzzed, redrawn, retries, upload_frames = 0, 0, 0, 0
            previous, checks, uploads = None, 0, 0
            while fuzzed < FUZZ_FRAMES:
                batch = []
                for _ in range(BATCH):
                    if previous is not None and rng.random() < RETRY_RATE:
                        retries += 1                    # a retry: served from the reply cache
                    else:
                        previous = fuzzer.frame()
                        while previous in distinct:
                            redrawn += 1
                            previous = fuzzer.frame()
                        distinct.add(previous)
                        fuzzed += 1
                    batch.append(previous)
                link.send(b"".join(batch))
                for wire, encoded in zip(batch, link.replies(len(batch), timeout=15)):
                    mirror.account(wire, encoded)
                if fuzzed // CHECK_EVERY > checks:
                    _check_state(link, mirror, checks)
                    checks += 1
                if fuzzed // UPLOAD_EVERY > uploads:
                    # A state the device has not held yet: the mirror's, one host step on.
                    other = FixedLPN(compiled_in.config, compiled_in.formats, compiled_in.topology)
                    other.load_state_bytes(mirror.model.state_bytes())
                    other.learn_q(np.full(info.inputs, 9000), np.eye(info.outputs, dtype=np.int64)[0] * 4096, 0)
                    upload_frames += _upload_through_noise(link, mirror, fuzzer, other.state_bytes(),
                                                           int(rng.integers(256)))
                    uploads += 1
                    _check_state(link, mirror, checks)
                    checks += 1
            seconds = time.monotonic() - started
            _check_state(link, mirror, checks)
        finally:
            link.close()
        with Device(emu.url, timeout=5) as dev:   # still answering, and the whole state agrees
            assert dev.get_state() == mirror.model.state_bytes()
        assert emu.process.poll() is None, emu.output
    counts = mirror.counts
    sent = fuzzed + retries + upload_frames
    print(f"\nfuzz: {fuzzed} distinct fuzz frames ({redrawn} repeats redrawn) + {retries} retries + "
          f"{upload_frames} upload frames = {sent} frames in {seconds:.1f} s ({sent / seconds:.0f} frames/s), "
          f"{counts}, accepted {mirror.applied}, {checks + 1} state checks")
    assert fuzzed >= FUZZ_FRAMES and len(distinct) == fuzzed   # no fuzz frame was sent twice
    assert retries > 100 and upload_frames >= 4 * uploads
    assert sum(counts.values()) == sent   # every frame, set-up traffic included, got its one reply
    # Every kind of outcome happened, or the run proved less than it claims.
    assert counts["undecodable"] > 1000 and counts["rejected"] > 1000
    assert counts["accepted"] > 300 and counts["cached"] > 50
    for name in ("learn", "consolidate", "replay", "reset"):
        assert mirror.applied.get(name, 0) > 2, f"too few accepted {name} requests in the run"
    assert mirror.applied.get("put_state_commit", 0) >= uploads >= 4


# ---------------------------------------------------------------------------
def _small_converted(tmp_path: Path) -> tuple[Path, Path, list]:
    """A float model of a config with every mechanism (structural plasticity included),
    converted to fixed point: the firmware's model. Then the same model trained further
    on the host: the model pushed."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import small_config, stream

    from lpn.convert import convert
    from lpn.float_model import FloatLPN

    cfg = small_config()
    samples = list(stream(cfg, 260, seed=3))
    X = np.array([s[0] for s in samples])
    y = np.array([s[1] for s in samples])
    tasks = np.array([s[2] for s in samples])
    float_model = FloatLPN.new(cfg)
    float_model.partial_fit(X[:200], y[:200], classes=np.arange(cfg.outputs), task=tasks[:200])
    converted, _ = convert(float_model, X[:200], y[:200])
    modelfile.save(converted, tmp_path / "converted.lpn")
    converted.partial_fit(X[200:230], y[200:230], task=tasks[200:230])
    modelfile.save(converted, tmp_path / "pushed.lpn")
    return tmp_path / "converted.lpn", tmp_path / "pushed.lpn", samples[230:]


def test_cortex_m3_runs_a_converted_model_bit_identically(tmp_path):
    firmware_model, pushed, samples = _small_converted(tmp_path)
    cold = build_firmware.build("qemu_m3", firmware_model, build_dir=tmp_path / "build")
    warm = build_firmware.build("qemu_m3", firmware_model, build_dir=tmp_path / "build")
    _report_build(cold, warm)
    assert warm.learner.model_hash == modelfile.model_hash(modelfile.load(firmware_model))
    reference = modelfile.load(pushed)
    other_formats = modelfile.load(pushed)
    other_formats.formats.fa[0] -= 1  # same sizes, another input format

    with Emulator(warm.program, machine=qemu_machine_for_env("qemu_m3"), timeout=EMULATOR_LIMIT) as emu:
        # The firmware's model is not known to this computer's build records: the
        # family check asks the device itself.
        cli("push", emu.url, pushed)
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            assert info.board == "mps2_an385" and info.model_hash == warm.learner.model_hash
            assert dev.get_state() == reference.state_bytes()
            for x, label, task in samples:
                x_q = reference.quantise_input(x[None, :])[0]
                t_q = reference.quantise_target(np.eye(4)[[label]])[0]
                dev.learn(x_q, t_q, task)
                reference.learn_q(x_q, t_q, task)
            dev.structural()
            dev.consolidate()
            dev.replay(2)
            before = dev.get_state()
            # A model of other formats is refused; the check (reset, read, put back)
            # leaves the learnt state as it was.
            assert not same_model_family(dev, info, other_formats, known={})
            assert dev.get_state() == before
        reference.structural()
        reference.consolidate()
        reference.replay(2)
        cli("pull", emu.url, "--out", tmp_path / "pulled.lpn", "--model", pushed)
        assert device_state(emu.url) == before

    pulled = modelfile.load(tmp_path / "pulled.lpn")
    assert pulled.state_bytes() == reference.state_bytes() == before
    assert int(reference.state["step"]) > 30
