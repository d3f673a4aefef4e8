"""Persistence in the real firmware: `save`/`load` and the load at boot, on QEMU.

The Cortex-M4 firmware (the default digits learner, built by PlatformIO) keeps its
state in a host file through semihosting (`Emulator(storage=FILE)`, what `lpn
emulate --storage FILE` does). The Python fixed model (lpn.fixed, the bit-exactness
reference) says which state each learning step leads to, so every state the device
boots with is compared against a known one, byte for byte:

- learn, save, restart the emulator with the same file: the state is identical;
- SIGKILL at random moments while the device runs a burst of learn+save requests
  (it is saving most of the time): the next boot has exactly the state of the
  newest save whose header reached the file, no older than the last save
  acknowledged, never a mix;
- a corrupt newest slot boots (and loads) the older one; two corrupt slots give
  `no_saved_state` and the compiled-in state; a slot of another model is refused;
- `lpn save URL` / `lpn load URL`, and a clear error without storage.

The library's exhaustive per-write cut test is tests/test_storage.py; the last test
here checks that the firmware links that same library source.
"""
from __future__ import annotations

import hashlib
import random
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import serial
from click.testing import CliRunner

from lpn import build_firmware, datasets
from lpn import protocol as P
from lpn.cli import main
from lpn.device import Device, DeviceError
from lpn.emulator import Emulator
from lpn.fixed import FixedLPN

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EMULATOR_LIMIT = 60
SLOT_SIZE = 131072           # LPN_STORAGE_SLOT_SIZE of the mps2 board glue
HEADER = struct.Struct("<IIII")  # magic, sequence, length, crc (lpn_storage.h)
MAGIC = 0x534E504C
HASH_BYTES = 32              # a saved state starts with the model's SHA-256


@pytest.fixture(scope="module")
def m4(tmp_path_factory) -> build_firmware.FirmwareBuild:
    return build_firmware.build("qemu_m4", build_dir=tmp_path_factory.mktemp("m4_persist"))


@pytest.fixture(scope="module")
def stream():
    """Quantised digits samples with one-hot targets, in dataset order."""
    model = FixedLPN.new("digits")
    X, y = datasets.digits()
    return model.quantise_input(X[:400]), model.quantise_target(np.eye(10)[y[:400]])


def emulate(elf: Path, storage: Path | None) -> Emulator:
    return Emulator(elf, timeout=EMULATOR_LIMIT, storage=storage)


def slots(path: Path) -> list[dict | None]:
    """Both slots of the storage file, read independently of the firmware (None: invalid)."""
    data = path.read_bytes() if path.exists() else b""
    out: list[dict | None] = []
    for index in range(2):
        raw = data[index * SLOT_SIZE:(index + 1) * SLOT_SIZE]
        if len(raw) < HEADER.size:
            out.append(None)
            continue
        magic, sequence, length, crc = HEADER.unpack_from(raw)
        payload = raw[HEADER.size:HEADER.size + length]
        ok = (magic == MAGIC and len(payload) == length
              and zlib.crc32(payload, zlib.crc32(raw[:12])) & 0xFFFFFFFF == crc)
        out.append({"sequence": sequence, "payload": payload, "offset": index * SLOT_SIZE} if ok else None)
    return out


def newest(path: Path) -> dict:
    valid = [s for s in slots(path) if s is not None]
    assert valid, "no valid slot in the storage file"
    return max(valid, key=lambda s: s["sequence"])


def learned(model: FixedLPN, xs, ts) -> list[bytes]:
    """The state after each of the steps, starting from `model` (which is advanced)."""
    states = []
    for x, t in zip(xs, ts):
        model.learn_q(x, t, 0)
        states.append(model.state_bytes())
    return states


def reference_from(state: bytes) -> FixedLPN:
    model = FixedLPN.new("digits")
    model.load_state_bytes(state)
    return model


def test_saved_state_survives_an_emulator_restart(m4, stream, tmp_path):
    xs, ts = stream
    storage = tmp_path / "device.bin"
    reference = FixedLPN.new("digits")
    compiled_in = reference.state_bytes()
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        status = dev.storage()
        assert status["present"] == 1 and status["saves"] == 0
        assert P.status_name(status["boot_status"]) == "no_saved_state"
        assert status["capacity"] >= len(compiled_in)
        with pytest.raises(DeviceError) as err:
            dev.load()
        assert err.value.name == "no_saved_state"
        for x, t in zip(xs[:30], ts[:30]):
            dev.learn(x, t, 0)
        learned(reference, xs[:30], ts[:30])
        saved = dev.get_state()
        assert saved == reference.state_bytes() != compiled_in
        dev.save()
        assert dev.storage()["saves"] == 1
        dev.learn(xs[30], ts[30], 0)        # learning after the save is not kept
        assert dev.get_state() != saved
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        assert dev.storage()["boot_status"] == 0
        assert hashlib.sha256(dev.get_state()).digest() == hashlib.sha256(saved).digest()
        dev.reset()
        assert dev.get_state() == compiled_in
        dev.load()                           # load without a restart
        assert dev.get_state() == saved
    # The file holds the documented layout: the model's SHA-256, then the state.
    payload = newest(storage)["payload"]
    assert payload[HASH_BYTES:] == saved and payload[:HASH_BYTES].hex() == m4.learner.model_hash


def _frames(xs, ts, first_seq: int) -> tuple[bytes, list[tuple[int, str]]]:
    """learn, save, learn, save, ... as one burst of request frames, and (seq, name) of each."""
    wire, sent = b"", []
    seq = first_seq
    for x, t in zip(xs, ts):
        values = {"task": 0, "x": [int(v) for v in x], "t": [int(v) for v in t]}
        dims = {"inputs": len(x), "outputs": len(t), "layers": 1}
        learn = P.BY_NAME["learn"]
        wire += P.request_frame(learn.code, seq, P.pack(learn.request, values, dims))
        sent.append((seq, "learn"))
        seq = (seq + 1) % 256
        wire += P.request_frame(P.BY_NAME["save"].code, seq)
        sent.append((seq, "save"))
        seq = (seq + 1) % 256
    return wire, sent


def _collect(link, into: bytearray) -> None:
    """Reads replies until the emulator's socket closes."""
    while True:
        try:
            into += link.read(4096)
        except (serial.SerialException, OSError, TypeError):
            return


def test_killed_while_saving_boots_with_a_complete_state(m4, stream, tmp_path):
    """SIGKILL lands at random moments of a burst of learn+save; the next boot must hold
    exactly one of the saved states: the newest whose save completed."""
    xs, ts = stream
    storage = tmp_path / "device.bin"
    rng = random.Random(20261203)
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        dev.save()                           # round 0 starts from a saved compiled-in state
        current = dev.get_state()
    burst = 24
    in_flight_kills = 0
    torn = 0
    sample = 0
    for round_no in range(6):
        model = reference_from(current)
        chunk = slice(sample, sample + burst)
        sample += burst
        states = [current] + learned(model, xs[chunk], ts[chunk])   # states[k]: after k steps
        sequence_before = newest(storage)["sequence"]
        wire, sent = _frames(xs[chunk], ts[chunk], first_seq=round_no * 7)
        emu = emulate(m4.program, storage).start()
        received = bytearray()
        try:
            link = serial.serial_for_url(emu.url, timeout=0.01)
            listener = threading.Thread(target=_collect, args=(link, received), daemon=True)
            listener.start()
            link.write(wire)
            time.sleep(rng.uniform(0.01, 0.25))
            emu.process.kill()               # SIGKILL: no chance to finish anything
            emu.process.wait()
            listener.join(5)
            link.close()
        finally:
            emu.stop()
        reader = P.FrameReader()
        acked = {P.parse_reply(body).seq for body in reader.feed(bytes(received) + b"\0")}
        saves_acked = sum(1 for seq, name in sent if name == "save" and seq in acked)
        if saves_acked < burst:
            in_flight_kills += 1
        if None in slots(storage):
            torn += 1                        # the kill fell between a payload and its header
        with emulate(m4.program, storage) as emu2, Device(emu2.url) as dev:
            assert dev.storage()["boot_status"] == 0
            booted = dev.get_state()
        completed = newest(storage)["sequence"] - sequence_before
        # Each save stores the state after as many steps as saves before it in the burst.
        assert booted == states[completed], f"round {round_no}: boot state is not save {completed}'s"
        # An acknowledged save is never lost; beyond it, only saves that were sent.
        assert saves_acked <= completed <= burst, (saves_acked, completed)
        assert booted in states
        current = booted
    print(f"\n6 kills: {in_flight_kills} with saves outstanding, {torn} between a payload and its header")
    assert in_flight_kills >= 3


def _rewrite_slot(path: Path, slot: dict, payload: bytes) -> None:
    """Write `payload` into `slot` with a correct header: a valid slot the firmware did not write."""
    head = struct.pack("<III", MAGIC, slot["sequence"], len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head)) & 0xFFFFFFFF
    with open(path, "r+b") as f:
        f.seek(slot["offset"])
        f.write(head + struct.pack("<I", crc) + payload)


def test_corrupt_slots_fall_back_or_fail_clearly(m4, stream, tmp_path):
    xs, ts = stream
    storage = tmp_path / "device.bin"
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        dev.learn(xs[0], ts[0], 0)
        dev.save()
        older = dev.get_state()
        dev.learn(xs[1], ts[1], 0)
        dev.save()
        newer = dev.get_state()
        compiled_in = FixedLPN.new("digits").state_bytes()
    assert older != newer
    pristine = storage.read_bytes()

    # A flipped byte in the newest payload: that slot fails its CRC, the older one boots.
    top = newest(storage)
    data = bytearray(pristine)
    data[top["offset"] + HEADER.size + 100] ^= 0x40
    storage.write_bytes(bytes(data))
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        assert dev.storage()["boot_status"] == 0
        assert dev.get_state() == older
        dev.reset()
        dev.load()
        assert dev.get_state() == older

    # Both slots corrupt: nothing to load, the compiled-in state, a clear status.
    for slot in (0, 1):
        data[slot * SLOT_SIZE + 3] ^= 0xFF   # the magic
    storage.write_bytes(bytes(data))
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        assert P.status_name(dev.storage()["boot_status"]) == "no_saved_state"
        assert dev.get_state() == compiled_in
        with pytest.raises(DeviceError) as err:
            dev.load()
        assert err.value.name == "no_saved_state"
        assert dev.get_state() == compiled_in

    # A valid slot whose state came from another model (its SHA-256 differs) is refused.
    storage.write_bytes(pristine)
    top = newest(storage)
    _rewrite_slot(storage, top, bytes(HASH_BYTES) + top["payload"][HASH_BYTES:])
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        assert P.status_name(dev.storage()["boot_status"]) == "saved_model_differs"
        assert dev.get_state() == compiled_in
    # A state the learner cannot reach (a synapse index out of range) changes nothing either.
    bad = bytearray(newer)
    bad[-40:] = b"\xff" * 40
    _rewrite_slot(storage, top, top["payload"][:HASH_BYTES] + bytes(bad))
    with emulate(m4.program, storage) as emu, Device(emu.url) as dev:
        status = dev.storage()["boot_status"]
        if status == 0:                      # the bytes were ones the learner accepts
            assert dev.get_state() == bytes(bad)
        else:
            assert P.LEARNER_CODE_MIN <= status < 0 and dev.get_state() == compiled_in


def test_save_and_load_commands(m4, stream, tmp_path):
    xs, ts = stream
    storage = tmp_path / "device.bin"
    runner = CliRunner()
    with emulate(m4.program, storage) as emu:
        with Device(emu.url) as dev:
            dev.learn(xs[0], ts[0], 0)
            state = dev.get_state()
        result = runner.invoke(main, ["save", emu.url])
        assert result.exit_code == 0, result.output
        assert "saved" in result.output and "1 saves since boot" in result.output
        with Device(emu.url) as dev:
            dev.reset()
        result = runner.invoke(main, ["load", emu.url])
        assert result.exit_code == 0, result.output
        with Device(emu.url) as dev:
            assert dev.get_state() == state
    with emulate(m4.program, None) as emu:
        with Device(emu.url) as dev:
            assert dev.storage()["present"] == 0
            with pytest.raises(DeviceError) as err:
                dev.save()
            assert err.value.name == "unsupported"
        for command in ("save", "load"):
            result = runner.invoke(main, [command, emu.url])
            assert result.exit_code == 2
            assert "no persistent storage" in result.output


def test_firmware_links_the_storage_library_the_cut_tests_cover(m4):
    """One source of lpn_storage: the one tests/test_storage.py cuts at every write."""
    sources = sorted(p.relative_to(REPO) for p in (REPO / "firmware").rglob("lpn_storage.c")
                     if ".pio" not in p.parts)
    assert sources == [Path("firmware/lib/lpn_storage/src/lpn_storage.c")]
    symbols = subprocess.run(["arm-none-eabi-nm", str(m4.program)], capture_output=True, text=True,
                             check=True).stdout
    for name in ("lpn_storage_save", "lpn_storage_load", "lpn_storage_semihost_open"):
        assert f" {name}\n" in symbols


def test_avr_state_survives_a_restart_in_eeprom(stream, tmp_path):
    """The ATmega328P firmware saves into its EEPROM (simavr-bridge --eeprom keeps it in a file)."""
    from lpn.avr import AvrEmulator

    uno = build_firmware.build("simavr_uno", build_dir=tmp_path / "build")
    eeprom = tmp_path / "eeprom.bin"
    with AvrEmulator(uno.program, eeprom=eeprom, timeout=EMULATOR_LIMIT) as emu, Device(emu.url) as dev:
        info = dev.info()
        status = dev.storage()
        assert status["present"] == 1 and status["capacity"] >= info.state_bytes
        assert P.status_name(status["boot_status"]) == "no_saved_state"
        x = np.arange(info.inputs) * 900 % 16384
        dev.learn(x, [4096] + [0] * (info.outputs - 1), 0)
        saved = dev.get_state()
        dev.save(timeout=30)
        dev.reset()
        assert dev.get_state() != saved
    with AvrEmulator(uno.program, eeprom=eeprom, timeout=EMULATOR_LIMIT) as emu, Device(emu.url) as dev:
        assert dev.storage()["boot_status"] == 0
        assert dev.get_state() == saved
