"""Run an AVR firmware in simavr with its UART on a local TCP port.

    with AvrEmulator(elf) as emu:                # ATmega328P at 16 MHz by default
        link = serial.serial_for_url(emu.url)    # "socket://127.0.0.1:PORT"

The same pyserial client serves QEMU (`lpn.emulator.Emulator`) and simavr: the
project's bridge (tools/simavr-bridge, built on demand by `ensure_bridge`)
runs the firmware in libsimavr and relays its UART to the port. As with QEMU,
the AVR starts only once the first client has connected, a client may
disconnect and another connect, and the bridge is always stopped on leaving the
`with` block, at the latest after `timeout` seconds.

Exact cycles: with `marker="B5"` the bridge records `avr->cycle` at every
change of pin PB5; `spans()` gives the cycles of each high pulse. A firmware
raises the pin right before the measured code and lowers it right after; an
empty pulse (`SBI` then `CBI`) measures 2 cycles, which is the overhead to
subtract.

Note: pyserial's `socket://` transport discards whatever arrived before
`serial_for_url` returned, so a greeting sent at boot is seen only by a raw
socket; the device protocol, which answers requests, is not affected.
"""
from __future__ import annotations

import fcntl
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

from .emulator import EmulatorError
from .pio import FIRMWARE_DIR, REPO_DIR, board_manifest, env_options

BRIDGE_DIR = REPO_DIR / "tools" / "simavr-bridge"
BRIDGE = BRIDGE_DIR / "build" / "simavr-bridge"
DEFAULT_MCU = "atmega328p"
DEFAULT_FREQUENCY = 16_000_000
LOCALHOST = "127.0.0.1"


class AvrEmulatorError(EmulatorError):
    """The bridge could not be built or started, or misbehaved; the message includes its output.

    An EmulatorError, so callers that run either emulator catch both alike."""


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Parallel test workers may build at the same time; make is not safe for that.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_built: set[Path] = set()


def build_tool(tool_dir: Path, product: Path, timeout: float = 120.0,
               error: type[Exception] = AvrEmulatorError) -> Path:
    """`make -C tool_dir` (a no-op when up to date), once per process; returns `product`.

    For the project's own tools (tools/*) and test firmwares; failures raise `error`.
    """
    if product in _built and product.is_file():
        return product
    if shutil.which("make") is None:
        raise error("make not found: run scripts/install-system-deps.sh")
    with _locked(tool_dir / "build" / ".lock"):
        done = subprocess.run(
            ["make", "-s", "-C", str(tool_dir)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
    if done.returncode != 0 or not product.is_file():
        raise error(
            f"building {tool_dir.name} failed (are the packages of scripts/install-system-deps.sh "
            f"installed?):\n{done.stdout}{done.stderr}"
        )
    _built.add(product)
    return product


def ensure_bridge() -> Path:
    """The simavr bridge program, built if missing or out of date."""
    return build_tool(BRIDGE_DIR, BRIDGE)


def simavr_target_for_env(env: str, project_dir: Path = FIRMWARE_DIR) -> tuple[str, int]:
    """The (MCU, clock in Hz) simavr runs environment `env` at, from its board manifest."""
    board = env_options(env, project_dir).get("board")
    if not board:
        raise AvrEmulatorError(f"environment {env!r} has no board, so no emulator")
    manifest = board_manifest(board)
    emulator = manifest.get("emulator", {})
    mcu = emulator.get("simavr_mcu")
    if not mcu:
        raise AvrEmulatorError(f"board {board!r} names no simavr MCU (emulator.simavr_mcu)")
    frequency = emulator.get("simavr_freq") or int(str(manifest["build"]["f_cpu"]).rstrip("L"))
    return mcu, int(frequency)


@dataclass(frozen=True)
class Edge:
    level: int   # the pin's new level, 0 or 1
    cycle: int   # avr->cycle when the firmware changed it


class AvrEmulator:
    """One simavr run of one AVR firmware ELF; a context manager that always stops it."""

    def __init__(
        self,
        elf: Path | str,
        mcu: str = DEFAULT_MCU,
        frequency: int = DEFAULT_FREQUENCY,
        timeout: float | None = 120.0,
        start_timeout: float = 10.0,
        marker: str | None = None,
        eeprom: Path | str | None = None,
        wait_for_client: bool = True,
        max_cycles: int | None = None,
        extra_args: Sequence[str] = (),
    ):
        self.elf = Path(elf)
        self.mcu = mcu
        self.frequency = frequency
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.marker = marker
        self.eeprom = Path(eeprom) if eeprom is not None else None
        self.wait_for_client = wait_for_client
        self.max_cycles = max_cycles
        self.extra_args = list(extra_args)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.timed_out = False
        self.exit_reason: str | None = None   # done, crashed, max-cycles, signal
        self.exit_cycle: int | None = None
        self._edges: list[Edge] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._watchdog: threading.Timer | None = None
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        if self.port is None:
            raise AvrEmulatorError("the emulator is not running")
        return f"socket://{LOCALHOST}:{self.port}"

    @property
    def output(self) -> str:
        """What simavr and the bridge printed on standard error."""
        with self._lock:
            return "".join(self._errors)

    @property
    def edges(self) -> list[Edge]:
        """Every change of the marker pin so far, in order."""
        with self._lock:
            return list(self._edges)

    def spans(self) -> list[int]:
        """Cycles from each rising edge of the marker pin to the falling edge after it."""
        spans, rise = [], None
        for edge in self.edges:
            if edge.level == 1:
                rise = edge.cycle
            elif rise is not None:
                spans.append(edge.cycle - rise)
                rise = None
        return spans

    def command(self, bridge: Path) -> list[str]:
        command = [str(bridge), "--mcu", self.mcu, "--freq", str(self.frequency), "--port", "0"]
        if not self.wait_for_client:
            command.append("--no-wait")
        if self.marker:
            command += ["--marker", self.marker]
        if self.eeprom is not None:
            command += ["--eeprom", str(self.eeprom)]
        if self.max_cycles:
            command += ["--max-cycles", str(self.max_cycles)]
        return [*command, *self.extra_args, str(self.elf)]

    def start(self) -> "AvrEmulator":
        if not self.elf.is_file():
            raise AvrEmulatorError(f"no firmware at {self.elf}")
        command = self.command(ensure_bridge())
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._readers = [
            threading.Thread(target=self._read_protocol, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_errors, args=(self.process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        # The bridge binds a free port itself and says which: no race for the port.
        if not self._listening.wait(self.start_timeout) or self.port is None:
            self.stop()
            raise AvrEmulatorError(f"the bridge did not start ({' '.join(command)}):\n{self.output}")
        if self.timeout is not None:
            self._watchdog = threading.Timer(self.timeout, self._expire)
            self._watchdog.daemon = True
            self._watchdog.start()
        return self

    def _read_protocol(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            words = raw.decode(errors="replace").split()
            if words[:1] == ["listening"] and len(words) == 3:
                self.port = int(words[2])
                self._listening.set()
            elif words[:1] == ["edge"] and len(words) == 4:
                with self._lock:
                    self._edges.append(Edge(int(words[2]), int(words[3])))
            elif words[:1] == ["exit"] and len(words) == 3:
                self.exit_reason = words[1]
                self.exit_cycle = int(words[2].partition("=")[2])
        stream.close()
        self._listening.set()  # the bridge ended: nobody waits for it any longer

    def _read_errors(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            with self._lock:
                self._errors.append(raw.decode(errors="replace"))
        stream.close()

    def _expire(self) -> None:
        self.timed_out = True
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def wait(self, timeout: float) -> int:
        """Wait for the firmware to end the run (sleep with interrupts off); return the exit code."""
        if self.process is None:
            raise AvrEmulatorError("the emulator is not running")
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AvrEmulatorError(f"the AVR still runs after {timeout} s:\n{self.output}") from exc
        self._join_readers()
        return code

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)

    def stop(self) -> int | None:
        """Stop the bridge if it still runs (SIGTERM, then SIGKILL); return its exit code."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.process is None:
            return None
        if self.process.poll() is None:
            # SIGTERM lets the bridge write its EEPROM file and its exit line.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._join_readers()
        return self.process.returncode

    def kill(self) -> None:
        """Kill the bridge at once, as a power cut would stop the chip."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._join_readers()

    def __enter__(self) -> "AvrEmulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def run_until_done(elf: Path | str, timeout: float = 60.0, **options) -> AvrEmulator:
    """Run a firmware that needs no input to its end (it sleeps with interrupts off).

    Returns the stopped emulator, whose `edges`, `spans()` and `exit_reason` hold the run.
    """
    emulator = AvrEmulator(elf, wait_for_client=False, timeout=timeout, **options)
    with emulator:
        deadline = time.monotonic() + timeout
        emulator.wait(max(0.1, deadline - time.monotonic()))
    return emulator


__all__ = [
    "AvrEmulator", "AvrEmulatorError", "Edge", "build_tool", "ensure_bridge", "run_until_done",
    "simavr_target_for_env",
]
