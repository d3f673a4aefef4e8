"""The simavr bridge end to end: UART over TCP through pyserial, exact cycles, EEPROM file.

The firmware is firmware/tests_fw/avr_echo (built with the project-local avr-local
platform and the atmega328p_sim board): it marks code of known cycle counts on
PB5, counts its boots in EEPROM through lpn_storage, greets, echoes every byte at 1 Mbaud and stops
after echoing 0x04.
"""
from __future__ import annotations

import socket
import struct
import time
import zlib
from pathlib import Path

import pytest
import serial

from lpn import pio
from lpn.avr import AvrEmulator, AvrEmulatorError, ensure_bridge, simavr_target_for_env

ECHO_PROJECT = pio.FIRMWARE_DIR / "tests_fw" / "avr_echo"
END_OF_RUN = b"\x04"
# From the firmware's source: an empty SBI/CBI pulse, then busy loops of 200,
# 200 and 17 iterations (SBI 2 + LDI 1 + 3 per iteration - 1 for the last BRNE).
EXPECTED_SPANS = [2, 2 + 3 * 200, 2 + 3 * 200, 2 + 3 * 17]


@pytest.fixture(scope="module")
def echo_elf() -> Path:
    ensure_bridge()
    return pio.build("avr_echo", project_dir=ECHO_PROJECT, timeout=180)


def read_exactly(sock: socket.socket, n: int, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_serial(link: serial.SerialBase, n: int, timeout: float = 10.0) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while len(data) < n and time.monotonic() < deadline:
        data += link.read(n - len(data))
    return data


def test_the_echo_firmware_fits_the_board(echo_elf):
    size = pio.size_of(echo_elf)
    manifest = pio.board_manifest("atmega328p_sim")
    assert 0 < size.flash <= manifest["upload"]["maximum_size"]
    assert size.ram <= manifest["upload"]["maximum_ram_size"]
    assert (echo_elf.parent / "firmware.hex").is_file()


def run_and_greet(elf: Path, eeprom: Path) -> tuple[AvrEmulator, str]:
    """One run to its end: the greeting over a raw socket, then the end-of-run byte."""
    emu = AvrEmulator(elf, marker="B5", eeprom=eeprom, timeout=60)
    with emu:
        with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
            # Nothing is sent first: the greeting proves early output waits for the client.
            greeting = read_exactly(sock, len(b"avr-echo boot 1\n")).decode()
            sock.sendall(END_OF_RUN)
            assert read_exactly(sock, 1) == END_OF_RUN
            assert emu.wait(30) == 0
    return emu, greeting


def test_marker_cycles_are_exact_and_repeatable(echo_elf, tmp_path):
    first, greeting = run_and_greet(echo_elf, tmp_path / "eeprom.bin")
    assert greeting == "avr-echo boot 1\n"
    assert first.spans() == EXPECTED_SPANS
    # DDR's write notifies the pin at its old level; only real changes are edges.
    assert [e.level for e in first.edges] == [1, 0] * len(EXPECTED_SPANS)
    assert first.exit_reason == "done"
    second, greeting = run_and_greet(echo_elf, tmp_path / "eeprom.bin")
    # Same cycles to the cycle, even in absolute terms: nothing before the marks depends on input.
    assert second.edges == first.edges
    # The EEPROM file carried the boot count over the restart, in lpn_storage's
    # layout: two 32-byte slots at address 0, the second save in slot 1.
    assert greeting == "avr-echo boot 2\n"
    eeprom = (tmp_path / "eeprom.bin").read_bytes()
    assert len(eeprom) == 1024
    magic, sequence, length, crc = struct.unpack_from("<IIII", eeprom, 32)
    assert (magic, sequence, length) == (0x534E504C, 1, 1) and eeprom[48] == 2
    assert crc == zlib.crc32(eeprom[32:44] + eeprom[48:49])


def test_echo_through_pyserial_with_a_reconnect(echo_elf):
    payload = bytes(b for b in range(256) if b != END_OF_RUN[0]) * 12
    with AvrEmulator(echo_elf, timeout=60) as emu:
        # pyserial drops what arrived before it opened, so the greeting is read raw.
        with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
            assert read_exactly(sock, len(b"avr-echo boot 1\n")).startswith(b"avr-echo boot ")
        for _ in range(2):  # the AVR keeps running across clients
            link = serial.serial_for_url(emu.url, timeout=0.5)
            try:
                started = time.monotonic()
                link.write(payload)
                echoed = read_serial(link, len(payload))
                elapsed = time.monotonic() - started
            finally:
                link.close()
            assert echoed == payload
            print(f"echo: {len(payload)} bytes in {elapsed * 1000:.0f} ms "
                  f"({2 * len(payload) / elapsed / 1024:.0f} KiB/s both ways)")
        link = serial.serial_for_url(emu.url, timeout=0.5)
        try:
            link.write(END_OF_RUN)
            assert read_serial(link, 1) == END_OF_RUN
        finally:
            link.close()
        assert emu.wait(30) == 0
        assert emu.exit_reason == "done"


def test_a_cycle_limit_stops_a_firmware_that_waits_forever(echo_elf):
    # Without a client the firmware waits for input for ever: the limit ends it.
    with AvrEmulator(echo_elf, wait_for_client=False, max_cycles=2_000_000, timeout=60) as emu:
        assert emu.wait(30) == 1
    assert emu.exit_reason == "max-cycles"
    assert emu.exit_cycle >= 2_000_000
    assert emu.spans() == []  # no marker asked for, none recorded


def test_the_watchdog_kills_a_bridge_nobody_connects_to(echo_elf):
    with AvrEmulator(echo_elf, timeout=1.0) as emu:
        with pytest.raises(AvrEmulatorError):
            emu.wait(0.3)
        time.sleep(1.5)
        assert emu.process.poll() is not None
    assert emu.timed_out


def test_bad_inputs_are_reported(echo_elf, tmp_path):
    with pytest.raises(AvrEmulatorError, match="no firmware"):
        AvrEmulator(tmp_path / "missing.elf").start()
    with pytest.raises(AvrEmulatorError, match="did not start"):
        AvrEmulator(echo_elf, mcu="atmega9999").start()


def test_board_manifest_names_the_simulator_target():
    ini = ECHO_PROJECT
    assert simavr_target_for_env("avr_echo", ini) == ("atmega328p", 16_000_000)
