"""Run the firmware in QEMU with its UART on a local TCP port.

    with Emulator(elf) as emu:                   # QEMU mps2-an386 by default
        link = serial.serial_for_url(emu.url)    # "socket://127.0.0.1:PORT"

QEMU holds the firmware until the first client connects (`wait=on`), so nothing
the firmware sends early is lost. QEMU is always killed on leaving the `with`
block, and at the latest after `timeout` seconds, so a hung firmware cannot hang
its caller. Semihosting is on: the firmware can end the run with an exit code,
and with `storage=FILE` its persistent storage (save/load) is that host file, which
outlives the emulator: a later run with the same file boots with the saved state.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Sequence

from .pio import FIRMWARE_DIR, board_manifest, env_options

QEMU = "qemu-system-arm"
DEFAULT_MACHINE = "mps2-an386"
LOCALHOST = "127.0.0.1"
# First word of the semihosting command line that names the storage file
# (firmware/src/board/mps2/board_mps2.c).
STORAGE_WORD = "lpn-storage"
# QEMU reports on stderr that the chardev listens; only then can a client connect.
_LISTENING = "waiting for connection"


class EmulatorError(RuntimeError):
    """QEMU could not be started or did not behave; the message includes its output."""


def qemu_machine_for_env(env: str, project_dir: Path = FIRMWARE_DIR) -> str:
    """The QEMU machine that runs environment `env`, from its board manifest."""
    board = env_options(env, project_dir).get("board")
    if not board:
        raise EmulatorError(f"environment {env!r} has no board, so no emulator")
    machine = board_manifest(board).get("emulator", {}).get("qemu_machine")
    if not machine:
        raise EmulatorError(f"board {board!r} names no QEMU machine (emulator.qemu_machine)")
    return machine


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        return probe.getsockname()[1]


class Emulator:
    """One QEMU run of one firmware ELF; a context manager that always stops it."""

    def __init__(
        self,
        elf: Path | str,
        machine: str = DEFAULT_MACHINE,
        timeout: float | None = 120.0,
        start_timeout: float = 10.0,
        extra_args: Sequence[str] = (),
        qemu: str = QEMU,
        storage: Path | str | None = None,
    ):
        self.elf = Path(elf)
        self.machine = machine
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self.qemu = qemu
        # The host file behind the board's persistent storage (None: no storage).
        self.storage = Path(storage).resolve() if storage is not None else None
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.timed_out = False
        self.started_at: float | None = None  # time.monotonic() when QEMU was launched
        self._output: list[str] = []
        self._output_lock = threading.Lock()
        self._watchdog: threading.Timer | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmulatorError("the emulator is not running")
        return f"socket://{LOCALHOST}:{self.port}"

    @property
    def output(self) -> str:
        """What QEMU printed so far: its messages and the firmware's semihosting output."""
        with self._output_lock:
            return "".join(self._output)

    def command(self, port: int) -> list[str]:
        return [
            self.qemu,
            "-M", self.machine,
            "-nographic",
            "-monitor", "none",
            "-kernel", str(self.elf),
            # nodelay: without it small frames crawl (Nagle); wait: keep early output.
            "-chardev", f"socket,id=s0,host={LOCALHOST},port={port},server=on,wait=on,nodelay=on",
            "-serial", "chardev:s0",
            "-semihosting-config", self._semihosting(),
            *self.extra_args,
        ]

    def _semihosting(self) -> str:
        option = "enable=on,target=native"
        if self.storage is None:
            return option
        # The firmware reads its storage file from the semihosting command line
        # ("lpn-storage FILE"); QEMU's option syntax escapes a comma by doubling it.
        return f"{option},arg={STORAGE_WORD},arg={str(self.storage).replace(',', ',,')}"

    def start(self, attempts: int = 5) -> "Emulator":
        if not self.elf.is_file():
            raise EmulatorError(f"no firmware at {self.elf}")
        if shutil.which(self.qemu) is None:
            raise EmulatorError(f"{self.qemu} not found: run scripts/install-system-deps.sh")
        for _ in range(attempts):
            # The port may be taken between probing and QEMU's bind; then try another.
            if self._launch(free_local_port()):
                if self.timeout is not None:
                    self._watchdog = threading.Timer(self.timeout, self._expire)
                    self._watchdog.daemon = True
                    self._watchdog.start()
                return self
        raise EmulatorError(f"QEMU did not start listening in {attempts} attempts:\n{self.output}")

    def _launch(self, port: int) -> bool:
        with self._output_lock:
            self._output = []
        self.started_at = time.monotonic()
        process = subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        listening = threading.Event()
        for stream in (process.stdout, process.stderr):
            threading.Thread(target=self._drain, args=(stream, listening), daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while not listening.wait(0.01):
            if process.poll() is not None or time.monotonic() > deadline:
                self._kill(process)
                if "Address already in use" in self.output:
                    return False
                raise EmulatorError(f"QEMU did not start ({' '.join(self.command(port))}):\n{self.output}")
        self.process, self.port = process, port
        return True

    def _drain(self, stream: IO[bytes], listening: threading.Event) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            with self._output_lock:
                self._output.append(line)
            if _LISTENING in line:
                listening.set()
        stream.close()

    def _expire(self) -> None:
        self.timed_out = True
        if self.process is not None:
            self._kill(self.process)

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.kill()
        process.wait()

    def wait(self, timeout: float) -> int:
        """Wait for the firmware to end the run (semihosting exit); return QEMU's exit code."""
        if self.process is None:
            raise EmulatorError("the emulator is not running")
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise EmulatorError(f"QEMU still running after {timeout} s:\n{self.output}") from exc

    def stop(self) -> int | None:
        """Kill QEMU if it still runs; return its exit code (negative: killed by a signal)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.process is None:
            return None
        self._kill(self.process)
        return self.process.returncode

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
