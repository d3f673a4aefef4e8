"""End to end on the ATmega328P: the real PlatformIO build of `simavr_uno` (the `uno`
config), the firmware in simavr behind the project's UART bridge, the same host
client and commands as on QEMU, and the Python fixed model as the reference.

- The image fits the chip: flash within 32 KB, and the static RAM (.data + .bss)
  plus the stack's deepest use, measured on the running firmware by stack
  painting (the `info` reply's free RAM), within 2 KB with a margin left over.
- A trained model is pushed (`lpn push`), the device learns a stream of 1,000
  samples in four blocks that switch between the two tasks (each switch
  consolidates, the replay buffer replays every fourth sample, explicit
  consolidate/replay between blocks), and the state pulled with `lpn pull` is
  bit-identical to the Python model fed the same stream.
- A few hundred malformed frames each get one error reply and leave the state as
  it was.
- `lpn emulate --board atmega328p_sim` prints a URL that a Device talks to.

The bridge is stopped by every test itself, under a watchdog timeout.
"""
from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpn import build_firmware, modelfile
from lpn import protocol as P
from lpn.avr import AvrEmulator, simavr_target_for_env
from lpn.cli import main
from lpn.device import Device
from raw_link import RawLink
from lpn.fixed import FixedLPN

pytestmark = pytest.mark.slow

ENV = "simavr_uno"
BOARD = "atmega328p_sim"
FLASH, RAM = 32 * 1024, 2 * 1024          # ATmega328P
RAM_START = 0x800100                       # data space in the ELF; below 0x100: registers, I/O
STACK_MARGIN = 64                          # bytes the stack must never have reached
BLOCK = 250                                # samples per task block
EMULATOR_LIMIT = 90                        # seconds: the bridge is killed after this


@pytest.fixture(scope="module")
def uno(tmp_path_factory) -> build_firmware.FirmwareBuild:
    return build_firmware.build(ENV, build_dir=tmp_path_factory.mktemp("simavr_uno"))


def emulator(build: build_firmware.FirmwareBuild) -> AvrEmulator:
    mcu, frequency = simavr_target_for_env(ENV)
    return AvrEmulator(build.program, mcu=mcu, frequency=frequency, timeout=EMULATOR_LIMIT)


def cli(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def quadrant_stream(n: int, seed: int, labels=(0, 1, 2, 3)):
    """4x4 images labelled by their brightest 2x2 quadrant, the labels drawn from `labels`
    (task 0 holds labels 0 and 1, task 1 labels 2 and 3)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.5, size=(n, 4, 4))
    y = rng.choice(np.asarray(labels), size=n)
    for i, q in enumerate(y):
        r, c = divmod(int(q), 2)
        X[i, 2 * r: 2 * r + 2, 2 * c: 2 * c + 2] += 0.5
    return X.reshape(n, 16), y


def _symbol(elf: Path, name: str) -> int:
    table = subprocess.run(["avr-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in table.splitlines() if line.split()[-1] == name)


# ---------------------------------------------------------------------------
def test_pushed_model_learns_a_task_switching_stream_bit_identical_within_2_kb(uno, tmp_path):
    size = uno.size
    static_ram = size.data + size.bss
    assert size.flash <= FLASH, f"flash {size.flash} B"
    # Everything between .bss and the top of RAM is painted at reset and is the stack's room.
    assert _symbol(uno.program, "_end") - RAM_START == static_ram

    compiled_in = FixedLPN.new("uno")
    assert uno.learner.model_hash == modelfile.model_hash(compiled_in)
    cfg = compiled_in.config
    assert cfg.tasks.count == 2 and cfg.consolidation.enabled and cfg.replay.enabled

    X_pre, y_pre = quadrant_stream(80, seed=1)
    trained = FixedLPN.new("uno")
    trained.partial_fit(X_pre, y_pre, classes=np.arange(4), task=y_pre // 2)
    modelfile.save(trained, tmp_path / "trained.lpn")
    reference = modelfile.load(tmp_path / "trained.lpn")
    blocks = []
    for k in range(4):
        task = k % 2  # 0, 1, 0, 1: every block after the first switches task
        X, y = quadrant_stream(BLOCK, seed=2 + k, labels=(2 * task, 2 * task + 1))
        blocks.append((task, reference.quantise_input(X), reference.quantise_target(np.eye(4)[y])))

    with emulator(uno) as emu:
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            assert (info.board, info.inputs, info.outputs, info.tasks) == ("atmega328p", 16, 4, 2)
            assert info.state_bytes == len(compiled_in.state_bytes())
            free_at_boot = info.free_ram
            assert dev.get_state() == compiled_in.state_bytes()
        cli("push", emu.url, tmp_path / "trained.lpn")

        learnt, seconds = 0, 0.0
        with Device(emu.url, timeout=5) as dev:
            assert dev.get_state() == trained.state_bytes()
            for task, x_q, t_q in blocks:
                started = time.monotonic()
                for x, t in zip(x_q, t_q):
                    dev.learn(x.tolist(), t.tolist(), task=task)
                    reference.learn_q(x, t, task)
                seconds += time.monotonic() - started
                learnt += len(x_q)
                dev.consolidate()
                dev.replay(2)
                reference.consolidate()
                reference.replay(2)
                stats = dev.stats()
                assert (stats.step, stats.task, stats.seen) == (
                    int(reference.state["step"]), task, int(reference.state["seen"]))
            free_after = dev.info().free_ram

        cli("pull", emu.url, "--out", tmp_path / "pulled.lpn")
        assert emu.process.poll() is None, emu.output

    pulled = modelfile.load(tmp_path / "pulled.lpn")
    assert pulled.state_bytes() == reference.state_bytes()
    assert modelfile.model_hash(pulled) == modelfile.model_hash(reference)
    # The stream exercised what it claims to: both tasks, consolidation, replay.
    assert learnt >= 1000 and int(reference.state["task"]) == 1
    assert reference.filled == cfg.replay.capacity
    assert np.any(reference.state["L1.c"] > 0) and np.any(reference.state["L2.c"] > 0)

    # RAM: the stack's deepest use, measured. Learning goes deeper than booting.
    assert 0 < free_after < free_at_boot < RAM - static_ram
    stack_peak = RAM - static_ram - free_after
    assert static_ram + stack_peak + STACK_MARGIN <= RAM
    print(f"\n{ENV}: flash {size.flash} B of {FLASH}; RAM {static_ram} B static (data {size.data}, "
          f"bss {size.bss}) + stack peak {stack_peak} B = {static_ram + stack_peak} B of {RAM}, "
          f"{free_after} B never touched; {learnt / seconds:.0f} learn round trips/s over the bridge")


# ---------------------------------------------------------------------------
def malformed_frames(rng: np.random.Generator, info, count: int) -> list[bytes]:
    """Frames the device must reject: garbage, corrupted CRCs, wrong lengths, bad task ids,
    out-of-order state transfers, unknown commands, oversized frames."""
    dims = {"inputs": info.inputs, "outputs": info.outputs, "layers": info.layers}
    learn = P.BY_NAME["learn"]
    frames = []
    for n in range(count):
        seq = n & 0xFF
        kind = n % 8
        if kind == 0:  # garbage without zero bytes
            frames.append(bytes(rng.integers(1, 256, int(rng.integers(1, 60)), dtype=np.uint8)) + b"\x00")
            continue
        if kind == 1:  # a valid learn frame with one bit flipped before encoding
            raw = bytearray(bytes((learn.code, seq)) + P.pack(learn.request, {
                "task": 0, "x": [100] * info.inputs, "t": [0] * info.outputs}, dims))
            raw += struct.pack("<I", P.crc32(bytes(raw)))
            bit = int(rng.integers(len(raw) * 8))
            raw[bit // 8] ^= 1 << (bit % 8)
            frames.append(P.cobs_encode(bytes(raw)) + b"\x00")
            continue
        if kind == 2:  # learn with the wrong payload length
            payload = bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
            frames.append(P.request_frame(learn.code, seq, payload))
        elif kind == 3:  # learn or predict with a task the device does not have
            payload = P.pack(learn.request, {"task": int(rng.integers(info.tasks, 0xFF)),
                                             "x": [0] * info.inputs, "t": [0] * info.outputs}, dims)
            frames.append(P.request_frame(learn.code, seq, payload))
        elif kind == 4:  # state upload out of order or with the wrong size
            name = ["put_state_chunk", "put_state_commit", "put_state_begin"][n % 3]
            cmd = P.BY_NAME[name]
            payload = {"put_state_chunk": struct.pack("<I", int(rng.integers(1, 500))) + b"\x01\x02",
                       "put_state_commit": b"",
                       "put_state_begin": struct.pack("<II", info.state_bytes + 1 + n, 0)}[name]
            frames.append(P.request_frame(cmd.code, seq, payload))
        elif kind == 5:  # an unknown command
            frames.append(P.request_frame(int(rng.choice([0x00, 0x3F, 0x7E, 0x55])), seq, b"\x01"))
        elif kind == 6:  # longer than the device's frames
            frames.append(P.request_frame(learn.code, seq, bytes(rng.integers(1, 256, info.max_frame + 8,
                                                                              dtype=np.uint8))))
        else:  # replay/consolidate with a payload of the wrong length
            cmd = P.BY_NAME[["replay", "consolidate", "stats"][n % 3]]
            frames.append(P.request_frame(cmd.code, seq, b"\x07" * int(rng.integers(3, 9))))
    return frames


def test_malformed_frames_get_an_error_each_and_change_nothing(uno):
    rng = np.random.default_rng(7)
    with emulator(uno) as emu:
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            X, y = quadrant_stream(20, seed=3)
            model = FixedLPN.new("uno")
            for x, t in zip(model.quantise_input(X), model.quantise_target(np.eye(4)[y])):
                dev.learn(x.tolist(), t.tolist(), task=0)  # a state unlike the compiled-in one
            before, steps = dev.get_state(), dev.stats().step
        link = RawLink(emu.url)
        try:
            frames = malformed_frames(rng, info, 320)
            statuses = []
            for wire in frames:
                reply = link.exchange(wire)
                assert P.crc32(reply[:-4]) == int.from_bytes(reply[-4:], "little")
                statuses.append(P.parse_reply(reply[:-4]).status)
        finally:
            link.close()
        with Device(emu.url, timeout=5) as dev:
            after = dev.get_state()
            assert dev.stats().step == steps
        assert emu.process.poll() is None, emu.output
    assert len(statuses) == len(frames) and all(s < 0 for s in statuses), statuses
    assert len(set(statuses)) >= 5  # many different rejections, not one
    assert after == before


# ---------------------------------------------------------------------------
def test_lpn_emulate_board_prints_a_url_a_device_talks_to(uno):
    command = [str(Path(sys.executable).with_name("lpn")), "emulate", "--board", BOARD,
               "--build-dir", str(uno.program.parent.parent), "--timeout", str(EMULATOR_LIMIT)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        # A thread reads the lines: select() on a buffered pipe misses a line that
        # arrived in the same chunk as the one before it.
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        url, output, deadline = None, [], time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                assert process.poll() is None, "".join(output)
                continue
            output.append(line)
            if line.startswith("socket://"):
                url = line.strip()
        assert url is not None, "".join(output)
        assert any("simavr (atmega328p at 16 MHz)" in line for line in output), "".join(output)
        with Device(url, timeout=5) as dev:
            info = dev.info()
        assert info.model_hash == uno.learner.model_hash and info.board == "atmega328p"
    finally:
        process.terminate()
        process.wait(10)
