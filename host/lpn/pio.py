"""PlatformIO builds of the firmware, fully offline.

PlatformIO's own registry is not needed and must never be waited on: every call
made here runs with a project-local core dir prepared by `ensure_offline_core`
(the one core package the build needs, SCons, is provided from the SCons that pip
installed), telemetry and upgrade checks off, and the firmware's dev-platforms
taken from the project itself (`firmware/platforms/`).
"""
from __future__ import annotations

import configparser
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

REPO_DIR = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_DIR / "firmware"
BOARDS_DIR = REPO_DIR / "boards"
DEFAULT_ENV = "qemu_m4"

SCONS_PACKAGE = "tool-scons"
# PlatformIO encodes SCons 4.11.1 as 4.41101.0; the version must satisfy the
# core's requirement (read from PlatformIO itself in `_scons_requirement`).
SCONS_PACKAGE_VERSION = "4.41101.0"

# Runs the SCons that pip installed next to PlatformIO, with the interpreter that
# runs PlatformIO (which is how the core starts `scons.py`).
SCONS_LAUNCHER = '''\
"""Starts the pip-installed SCons; written by the project's offline PlatformIO set-up."""
import sys

from SCons.Script.Main import main

if __name__ == "__main__":
    sys.exit(main())
'''


class PioError(RuntimeError):
    """A PlatformIO run failed; the message ends with everything pio printed."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(f"{message}\n--- pio output ---\n{output}" if output else message)
        self.output = output


def default_core_dir(project_dir: Path = FIRMWARE_DIR) -> Path:
    """The project-local PlatformIO core dir (inside the git-ignored `.pio/`)."""
    return Path(project_dir) / ".pio" / "core"


def offline_environment(core_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables for a pio call that must not touch the network."""
    env = dict(os.environ if base is None else base)
    env.update(
        PLATFORMIO_CORE_DIR=str(Path(core_dir).resolve()),
        PLATFORMIO_SETTING_ENABLE_TELEMETRY="No",
        # Without this, a week after the first run a build waits ~60 s on an upgrade check.
        PLATFORMIO_DISABLE_UPGRADE_CHECK="true",
        PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="3650",
        PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD="0",
        PLATFORMIO_NO_ANSI="true",
    )
    # A caller's PLATFORMIO_BUILD_DIR etc. are kept: they redirect output, not downloads.
    return env


def _scons_requirement() -> str:
    from platformio.dependencies import get_core_dependencies

    return get_core_dependencies()[SCONS_PACKAGE]


def ensure_offline_core(core_dir: Path | None = None) -> Path:
    """Prepare `core_dir` so PlatformIO finds its SCons package without a download.

    Idempotent and safe to run from several processes at once: the package folder
    is written aside and renamed into place.
    """
    import semantic_version

    core_dir = Path(core_dir) if core_dir else default_core_dir()
    requirement = _scons_requirement()
    if not semantic_version.SimpleSpec(requirement).match(semantic_version.Version(SCONS_PACKAGE_VERSION)):
        raise PioError(
            f"PlatformIO wants {SCONS_PACKAGE} {requirement}, but the offline set-up provides "
            f"{SCONS_PACKAGE_VERSION}; update SCONS_PACKAGE_VERSION and the pinned scons"
        )
    packages = core_dir / "packages"
    package = packages / SCONS_PACKAGE
    files = {
        "scons.py": SCONS_LAUNCHER,
        "package.json": json.dumps(
            {
                "name": SCONS_PACKAGE,
                "version": SCONS_PACKAGE_VERSION,
                "description": "SCons from the Python environment, for offline PlatformIO builds",
            },
            indent=2,
        ),
        # owner "platformio" is what makes the core accept the package as its own;
        # `pio pkg install --tool file://...` would write owner null and be ignored.
        ".piopm": json.dumps(
            {
                "type": "tool",
                "name": SCONS_PACKAGE,
                "version": SCONS_PACKAGE_VERSION,
                "spec": {
                    "owner": "platformio",
                    "id": None,
                    "name": SCONS_PACKAGE,
                    "requirements": requirement,
                    "uri": None,
                },
            }
        ),
    }
    if package.is_dir() and all(
        (package / name).is_file() and (package / name).read_text() == text for name, text in files.items()
    ):
        return core_dir
    packages.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SCONS_PACKAGE}-", dir=packages))
    staging.chmod(0o755)
    for name, text in files.items():
        (staging / name).write_text(text)
    if package.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{SCONS_PACKAGE}-old-", dir=packages))
        try:
            package.rename(old / SCONS_PACKAGE)
        except FileNotFoundError:
            pass  # another process replaced it first
        _remove_tree(old)
    try:
        staging.rename(package)
    except OSError:
        _remove_tree(staging)  # another process installed it meanwhile; theirs is identical
    return core_dir


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # pio writes its platform links and SCons its build database without locking;
    # parallel test workers must take turns.
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_pio(
    args: list[str],
    project_dir: Path = FIRMWARE_DIR,
    core_dir: Path | None = None,
    timeout: float = 300.0,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run `pio ARGS` offline in `project_dir`; return its output or raise PioError."""
    core_dir = Path(core_dir or default_core_dir(project_dir)).resolve()
    env = offline_environment(core_dir)
    env.update(extra_env or {})
    command = [sys.executable, "-m", "platformio", *args]
    with _exclusive(core_dir / ".lpn-pio.lock"):
        ensure_offline_core(core_dir)
        try:
            done = subprocess.run(
                command,
                cwd=project_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
            raise PioError(f"`pio {' '.join(args)}` did not finish within {timeout:.0f} s", output) from exc
    if done.returncode != 0:
        raise PioError(f"`pio {' '.join(args)}` failed with exit code {done.returncode}", done.stdout)
    return done.stdout


def build_dir_of(project_dir: Path = FIRMWARE_DIR, extra_env: Mapping[str, str] | None = None) -> Path:
    override = (extra_env or {}).get("PLATFORMIO_BUILD_DIR") or os.environ.get("PLATFORMIO_BUILD_DIR")
    return Path(override) if override else Path(project_dir) / ".pio" / "build"


def build(
    env: str = DEFAULT_ENV,
    project_dir: Path = FIRMWARE_DIR,
    core_dir: Path | None = None,
    timeout: float = 300.0,
    extra_env: Mapping[str, str] | None = None,
) -> Path:
    """Build one environment of the firmware with `pio run -e ENV` and return its program.

    The program is an ELF for the embedded environments and a host executable for
    `native`. `extra_env` may carry PLATFORMIO_BUILD_DIR to build out of tree.
    """
    project_dir = Path(project_dir).resolve()
    output = run_pio(["run", "-e", env, "-d", str(project_dir)], project_dir, core_dir, timeout, extra_env)
    env_dir = build_dir_of(project_dir, extra_env) / env
    for name in ("firmware.elf", "program"):
        if (env_dir / name).is_file():
            return env_dir / name
    raise PioError(f"`pio run -e {env}` succeeded but left no program in {env_dir}", output)


def project_config(project_dir: Path = FIRMWARE_DIR) -> configparser.ConfigParser:
    """platformio.ini and the files its `extra_configs` globs name, as pio reads them
    (later files add sections and options), without pio's interpolation."""
    project_dir = Path(project_dir)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(project_dir / "platformio.ini")
    patterns = parser.get("platformio", "extra_configs", fallback="").split()
    for pattern in patterns:
        parser.read(sorted(str(p) for p in project_dir.glob(pattern)))
    return parser


def env_options(env: str, project_dir: Path = FIRMWARE_DIR) -> dict[str, str]:
    """The options of `[env:ENV]` in platformio.ini (or its extra configs), without pio's interpolation."""
    parser = project_config(project_dir)
    section = f"env:{env}"
    if not parser.has_section(section):
        raise PioError(f"platformio.ini has no environment {env!r}")
    return dict(parser.items(section))


def board_manifest(board: str, boards_dir: Path = BOARDS_DIR) -> dict:
    path = Path(boards_dir) / f"{board}.json"
    if not path.is_file():
        raise PioError(f"no board manifest {path}")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class FirmwareSize:
    """Footprint of a program: per-section sizes and the flash/RAM it takes."""

    sections: dict[str, int]
    text: int  # code and read-only data
    data: int  # initialised RAM, stored in flash as well
    bss: int   # zeroed RAM

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


# ELF e_machine -> the binutils `size` that understands it.
_SIZE_TOOLS = {40: "arm-none-eabi-size", 83: "avr-size"}


def size_tool_for(elf: Path) -> str:
    header = Path(elf).read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        raise PioError(f"{elf} is not an ELF file")
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _SIZE_TOOLS.get(machine, "size")


def size_of(elf: Path) -> FirmwareSize:
    """Section sizes (`size -A`) and text/data/bss totals (`size -B`) of a program."""
    tool = size_tool_for(elf)
    sections: dict[str, int] = {}
    for line in _run_tool([tool, "-A", "-d", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    totals = _run_tool([tool, "-B", "-d", str(elf)]).splitlines()[1].split()
    return FirmwareSize(sections, text=int(totals[0]), data=int(totals[1]), bss=int(totals[2]))


def _run_tool(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise PioError(f"{command[0]} not found: run scripts/install-system-deps.sh") from exc
    if done.returncode != 0:
        raise PioError(f"`{' '.join(command)}` failed", done.stdout + done.stderr)
    return done.stdout
