"""Power-loss-safe persistence (firmware/lib/lpn_storage): a cut at any write keeps old or new.

The library is compiled for this computer with AddressSanitizer and
UndefinedBehaviorSanitizer, next to a harness (firmware/lib/lpn_storage/test/
storage_harness.c) whose RAM-backed storage cuts the power at write N, letting
0..size-1 bytes of that write land. For sequences of saves of different sizes,
every cut point is tried; after each, a reboot must load exactly the old or the
new payload, and a later save must still work. The storage lives in a file
between harness runs, as it will behind an emulated board, so these tests also
read it independently (struct + zlib) against the layout documented in
lpn_storage.h.

On QEMU (firmware/tests_fw/m4_storage), the same library keeps its state in a
host file through semihosting: it survives a restart of the emulator, a cut
before each write, and SIGKILL at arbitrary moments of a run of saves.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "firmware" / "lib" / "lpn_storage"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wshadow"]
MAGIC = 0x534E504C
HEADER = struct.Struct("<IIII")  # magic, sequence, length, crc
ERR_IO, ERR_NOENT, ERR_NOSPACE = -1, -2, -3


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("storage") / "storage_harness"
    subprocess.run(
        ["gcc", *STRICT, "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-I", str(LIBRARY / "src"), str(LIBRARY / "src" / "lpn_storage.c"),
         str(LIBRARY / "test" / "storage_harness.c"), "-o", str(out)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    return out


class Storage:
    """One storage image file and the medium it models."""

    def __init__(self, harness: Path | None, image: Path, slot_size: int, prog_size: int, erase: bool):
        self.harness, self.image = harness, image
        self.slot_size, self.prog_size, self.erase = slot_size, prog_size, erase

    @property
    def capacity(self) -> int:
        return self.slot_size - HEADER.size

    def run(self, *args: object, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(self.harness), str(self.image), str(self.slot_size), str(self.prog_size),
             "1" if self.erase else "0", *map(str, args)],
            capture_output=True, text=True, timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"harness {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def load(self) -> bytes | int:
        """The payload a reboot finds, or the library's (negative) error code."""
        words = self.run("load").stdout.split()
        if words[0] == "error":
            return int(words[1])
        assert words[0] == "ok"
        payload = bytes.fromhex(words[2]) if len(words) > 2 else b""
        assert len(payload) == int(words[1])
        return payload

    def save(self, seed: int, length: int) -> str:
        return self.run("save", seed, length).stdout.strip()

    def cuts(self, seed: int, lengths: list[int], naive: bool = False) -> tuple[list[dict], int]:
        done = self.run("naive-cuts" if naive else "cuts", seed, *lengths, check=False)
        assert done.returncode in (0, 1), done.stderr
        rows = [
            {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}
            for line in done.stdout.splitlines() if line.startswith("cuts ")
        ]
        assert len(rows) == len(lengths), done.stdout + done.stderr
        return rows, done.returncode

    def slots(self) -> list[dict | None]:
        """Both slots decoded independently of the C code; None for an invalid slot."""
        raw = self.image.read_bytes()
        assert len(raw) <= 2 * self.slot_size
        raw += b"\xff" * (2 * self.slot_size - len(raw))  # a host file grows only as far as written
        decoded = []
        for index in range(2):
            slot = raw[index * self.slot_size:(index + 1) * self.slot_size]
            magic, sequence, length, crc = HEADER.unpack_from(slot)
            payload = slot[HEADER.size:HEADER.size + length]
            valid = (magic == MAGIC and length <= self.capacity
                     and zlib.crc32(slot[:12] + payload) == crc)
            decoded.append(dict(sequence=sequence, payload=payload) if valid else None)
        return decoded


def write_slots(storage: Storage, slots: list[tuple[int, bytes] | None]) -> None:
    """Writes an image by hand, following the documented layout."""
    image = bytearray(b"\xff" * (2 * storage.slot_size))
    for index, slot in enumerate(slots):
        if slot is None:
            continue
        sequence, payload = slot
        head = struct.pack("<III", MAGIC, sequence, len(payload))
        crc = zlib.crc32(head + payload)
        start = index * storage.slot_size
        image[start:start + HEADER.size + len(payload)] = head + struct.pack("<I", crc) + payload
    storage.image.write_bytes(bytes(image))


MEDIA = {
    # EEPROM: byte writes in place, no erase (the ATmega328P's 1 KB EEPROM)
    "eeprom": dict(slot_size=512, prog_size=1, erase=False),
    # NOR flash: erase a slot, then program 8-byte units that can only clear bits
    "flash8": dict(slot_size=512, prog_size=8, erase=True),
    # 16-byte program units, the widest the library supports
    "flash16": dict(slot_size=256, prog_size=16, erase=True),
}


@pytest.mark.parametrize("medium", MEDIA)
def test_a_cut_at_any_write_leaves_the_old_or_the_new_state(harness, tmp_path, medium):
    storage = Storage(harness, tmp_path / "image", **MEDIA[medium])
    cap = storage.capacity
    # Growing, shrinking, empty, full, and lengths that leave a partial program unit.
    lengths = [10, 0, cap, 1, cap - 3, 7, 300 % cap, 64]
    rows, status = storage.cuts(seed=11, lengths=lengths)
    assert status == 0
    for row, length in zip(rows, lengths):
        assert row["len"] == length
        assert row["mixed"] == 0, row
        # Exhaustive: a cut after every byte of every write, plus the completed save.
        assert row["cases"] == row["bytes"] + 1, row
        assert row["old"] + row["new"] == row["cases"]
        assert row["new"] >= 1 and row["old"] >= 1
        assert row["recovered"] == row["cases"], row
        # The payload goes first and the header last, each in program units.
        assert row["writes"] >= 2 if length else row["writes"] >= 1
    # A new process loads what the last committed save left: the newer slot.
    newest = max(storage.slots(), key=lambda s: s["sequence"])
    assert storage.load() == newest["payload"] and len(newest["payload"]) == lengths[-1]


def test_the_check_catches_a_writer_that_can_mix(harness, tmp_path):
    """An in-place writer without slots fails the same check: the check can fail."""
    storage = Storage(harness, tmp_path / "image", **MEDIA["eeprom"])
    rows, status = storage.cuts(seed=3, lengths=[40, 40, 100], naive=True)
    assert status == 1
    assert all(row["mixed"] > 0 for row in rows)


@pytest.mark.parametrize("medium", MEDIA)
def test_api_refusals(harness, tmp_path, medium):
    storage = Storage(harness, tmp_path / "image", **MEDIA[medium])
    assert storage.run("checks").stdout.strip() == "checks failures=0"


def test_image_layout_matches_the_documentation(harness, tmp_path):
    storage = Storage(harness, tmp_path / "image", **MEDIA["flash8"])
    assert storage.load() == ERR_NOENT
    loaded = []
    for seed, length in [(1, 20), (2, 33), (3, 0), (4, 496)]:
        assert storage.save(seed, length) == "ok"
        loaded.append(storage.load())
        assert isinstance(loaded[-1], bytes) and len(loaded[-1]) == length
        slots = storage.slots()
        if len(loaded) == 1:
            assert slots == [dict(sequence=0, payload=loaded[0]), None]
            continue
        newest, older = sorted(slots, key=lambda s: s["sequence"], reverse=True)
        assert newest["sequence"] == older["sequence"] + 1
        assert (newest["payload"], older["payload"]) == (loaded[-1], loaded[-2])
    # Saves alternate between the slots, so the previous state is never overwritten.
    assert [s["sequence"] for s in storage.slots()] == [2, 3]
    assert storage.save(5, storage.capacity + 1) == f"error {ERR_NOSPACE}"
    assert storage.load() == loaded[-1]


@pytest.mark.parametrize("medium", ["eeprom", "flash8"])
def test_the_sequence_number_wraps_around(harness, tmp_path, medium):
    storage = Storage(harness, tmp_path / "image", **MEDIA[medium])
    a, b = bytes(range(40)), bytes(range(100, 130))
    write_slots(storage, [(0xFFFFFFFF, a), (0xFFFFFFFE, b)])
    assert storage.load() == a
    write_slots(storage, [(0, a), (0xFFFFFFFF, b)])
    assert storage.load() == a  # 0 comes after 0xFFFFFFFF
    write_slots(storage, [(0xFFFFFFFF, a), (0xFFFFFFFE, b)])
    assert storage.save(9, 50) == "ok"
    slots = storage.slots()
    assert slots[0]["payload"] == a and slots[1]["sequence"] == 0
    assert storage.load() == slots[1]["payload"] != a
    # Cuts across the wrap as well.
    write_slots(storage, [(0xFFFFFFFE, a), (0xFFFFFFFF, b)])
    rows, status = storage.cuts(seed=21, lengths=[45, 12, 200])
    assert status == 0 and all(row["mixed"] == 0 for row in rows)
    assert sorted(s["sequence"] for s in storage.slots()) == [1, 2]  # 0xFFFFFFFF, then 0, 1, 2


def test_a_damaged_newest_slot_falls_back_to_the_older(harness, tmp_path):
    storage = Storage(harness, tmp_path / "image", **MEDIA["eeprom"])
    old, new = bytes(range(1, 61)), bytes(range(200, 250))
    write_slots(storage, [(7, old), (8, new)])
    assert storage.load() == new
    image = bytearray(storage.image.read_bytes())
    image[storage.slot_size + HEADER.size + 5] ^= 0x01  # one bit of the newest payload
    storage.image.write_bytes(bytes(image))
    assert storage.load() == old
    image[HEADER.size] ^= 0x80  # and one of the older
    storage.image.write_bytes(bytes(image))
    assert storage.load() == ERR_NOENT
    # A header claiming more than a slot holds is rejected, not followed.
    write_slots(storage, [(3, old), None])
    image = bytearray(storage.image.read_bytes())
    image[storage.slot_size:storage.slot_size + 16] = struct.pack("<IIII", MAGIC, 4, 0xFFFFFFF0, 0)
    storage.image.write_bytes(bytes(image))
    assert storage.load() == old
    # A save then goes to the damaged slot, never over the only good one.
    assert storage.save(1, 10) == "ok"
    assert storage.slots()[0]["payload"] == old


@pytest.mark.parametrize("compiler,flags", [
    ("avr-gcc", ["-mmcu=atmega328p", "-Os"]),
    ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-Os"]),
    ("arm-none-eabi-gcc", ["-mcpu=cortex-m3", "-mthumb", "-Os"]),
    ("gcc", ["-O2"]),
])
def test_every_source_builds_strict_for_every_target(tmp_path, compiler, flags):
    """Including the storages for other targets, which must compile to nothing there."""
    if shutil.which(compiler) is None:
        pytest.fail(f"{compiler} not found: run scripts/install-system-deps.sh")
    for source in sorted((LIBRARY / "src").glob("*.c")):
        subprocess.run(
            [compiler, *STRICT, "-pedantic", *flags, "-c", str(source), "-o", str(tmp_path / "out.o")],
            check=True, capture_output=True, text=True, timeout=60,
        )


# ---- On QEMU: a host file through semihosting (lpn_storage_semihost) ---------------

QEMU_PROJECT = REPO / "firmware" / "tests_fw" / "m4_storage"
QEMU_SLOT = 512  # the firmware's SLOT_SIZE


@pytest.fixture(scope="module")
def storage_elf() -> Path:
    from lpn.avr import build_tool

    return build_tool(QEMU_PROJECT, QEMU_PROJECT / "build" / "m4_storage.elf")


def qemu_command(elf: Path, saves: int, cut: int = 0) -> list[str]:
    return ["qemu-system-arm", "-M", "mps2-an385", "-nographic", "-monitor", "none", "-serial", "null",
            "-kernel", str(elf), "-semihosting-config", f"enable=on,target=native,arg=fw,arg={saves},arg={cut}"]


def boot(elf: Path, folder: Path, saves: int = 0, cut: int = 0) -> tuple[int, list[str]]:
    """One QEMU run in `folder` (which holds lpn_storage.bin): exit code and the firmware's lines."""
    done = subprocess.run(qemu_command(elf, saves, cut), cwd=folder, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).splitlines()


def newest_payload(folder: Path) -> bytes:
    storage = Storage(None, folder / "lpn_storage.bin", QEMU_SLOT, 1, False)
    return max((s for s in storage.slots() if s), key=lambda s: s["sequence"])["payload"]


def test_qemu_state_survives_an_emulator_restart(storage_elf, tmp_path):
    code, lines = boot(storage_elf, tmp_path, saves=5)
    assert code == 0 and lines == ["boot empty"] + [f"saved {k}" for k in range(1, 6)]
    code, lines = boot(storage_elf, tmp_path, saves=3)
    assert code == 0 and lines[0] == "boot loaded 5" and lines[-1] == "saved 8"
    assert boot(storage_elf, tmp_path) == (0, ["boot loaded 8"])
    # The host file follows the documented layout: the newest payload starts with k = 8.
    assert struct.unpack_from("<I", newest_payload(tmp_path))[0] == 8


def test_qemu_a_cut_before_any_write_keeps_the_last_complete_save(storage_elf, tmp_path):
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    assert boot(storage_elf, baseline, saves=4)[0] == 0
    # Each save is two writes, the payload then the header: a cut before write N
    # leaves (N - 1) // 2 of the three new saves complete, exactly.
    for cut in range(1, 7):
        folder = tmp_path / f"cut{cut}"
        folder.mkdir()
        shutil.copy(baseline / "lpn_storage.bin", folder / "lpn_storage.bin")
        code, lines = boot(storage_elf, folder, saves=3, cut=cut)
        assert code == 3, lines
        assert boot(storage_elf, folder) == (0, [f"boot loaded {4 + (cut - 1) // 2}"])
    # The very first save cut: nothing was ever stored.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert boot(storage_elf, empty, saves=1, cut=2)[0] == 3
    assert boot(storage_elf, empty) == (0, ["boot empty"])


def test_qemu_killed_while_saving_boots_with_a_complete_state(storage_elf, tmp_path):
    """SIGKILL at arbitrary moments of a run saving about ten thousand states a second."""
    last_loaded = 0
    for attempt in range(6):
        process = subprocess.Popen(qemu_command(storage_elf, saves=10**8), cwd=tmp_path,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(0.15 + 0.037 * attempt)
        process.kill()
        out, err = process.communicate(timeout=30)
        saved = [int(line.split()[1]) for line in (out + err).splitlines() if line.startswith("saved ")]
        assert saved, out + err
        code, lines = boot(storage_elf, tmp_path)
        assert code == 0 and lines[0].startswith("boot loaded "), lines
        loaded = int(lines[0].split()[2])
        # The last save reported complete, or the one in flight if its header made it.
        assert saved[-1] <= loaded <= saved[-1] + 1
        assert loaded > last_loaded
        last_loaded = loaded
