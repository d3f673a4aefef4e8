"""The firmware foundation, run for real: offline PlatformIO builds of the emulator and
desktop targets, the ELFs booted in QEMU and answering the serial protocol over the
UART's TCP port (the protocol itself is tested in test_protocol.py and
test_device_e2e.py). Every environment of platformio.ini, the real-board ones that
cannot be built here included, is read through PlatformIO's own config parser and
checked for a consistent board, platform, framework, board glue and model.

Every pio call here runs with HTTP(S) proxies pointing at a local sentinel that
records each connection, so a build that reached for the network fails the test
instead of silently waiting ~60 s on an unreachable registry.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from lpn import build_firmware, configs, modelfile, pio
from lpn import protocol as P
from lpn.device import Device
from lpn.emulator import Emulator, EmulatorError, qemu_machine_for_env
from lpn.fixed import FixedLPN

EMULATED_ENVS = ["qemu_m4", "qemu_m3"]
OFFLINE_ENVS = [*EMULATED_ENVS, "native"]
# A pio call that waits on the registry takes ~60 s; an offline build takes ~1-3 s.
BUILD_SECONDS_LIMIT = 30.0


class NetworkSentinel:
    """A local TCP listener posing as the HTTP(S) proxy; records who connected."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with client:
                client.settimeout(1.0)
                try:
                    self.requests.append(client.recv(256) or b"(connected, sent nothing)")
                except OSError:
                    self.requests.append(b"(connected)")

    def environment(self) -> dict[str, str]:
        proxy = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy
        return env

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def sentinel():
    watcher = NetworkSentinel()
    yield watcher
    watcher.close()


@pytest.fixture(scope="module")
def builds(sentinel, tmp_path_factory):
    """Each offline environment built twice into a fresh build dir: cold, then warm."""
    build_dir = tmp_path_factory.mktemp("pio-build")
    extra_env = {**sentinel.environment(), "PLATFORMIO_BUILD_DIR": str(build_dir)}
    results = {}
    for env in OFFLINE_ENVS:
        timings = []
        for _ in ("cold", "warm"):
            started = time.monotonic()
            program = pio.build(env, extra_env=extra_env, timeout=120)
            timings.append(time.monotonic() - started)
        results[env] = (program, *timings)
        print(f"\n{env}: cold build {timings[0]:.2f} s, warm build {timings[1]:.2f} s")
    return results


def test_offline_core_is_prepared_idempotently_and_accepted_by_platformio(tmp_path):
    core = tmp_path / "core"
    pio.ensure_offline_core(core)
    package = core / "packages" / pio.SCONS_PACKAGE
    first = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in package.iterdir()}
    pio.ensure_offline_core(core)
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in package.iterdir()} == first

    meta = json.loads((package / ".piopm").read_text())
    assert meta["spec"]["owner"] == "platformio"
    # PlatformIO's own lookup must find it without installing anything.
    probe = (
        "from platformio.package.manager.core import get_core_package_dir;"
        "print(get_core_package_dir('tool-scons', auto_install=False))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env=pio.offline_environment(core),
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert Path(found).resolve() == package.resolve()


def test_setup_script_prepares_the_given_core_dir(tmp_path):
    repo = Path(pio.__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(repo / "scripts" / "setup-platformio.py"), str(tmp_path / "core")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "core" / "packages" / "tool-scons" / "scons.py").is_file()


def test_sentinel_sees_a_pio_call_that_reaches_for_the_registry(tmp_path):
    # The control for the offline assertions below: `pio boards` without
    # --installed queries PlatformIO's registry, and the sentinel must notice.
    control = NetworkSentinel()
    core = pio.ensure_offline_core(tmp_path / "core")
    process = subprocess.Popen(
        [sys.executable, "-m", "platformio", "boards", "some-board"],
        cwd=tmp_path, env=pio.offline_environment(core, control.environment()),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not control.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
        control.close()
    assert control.requests


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_offline_build_never_touches_the_network_and_is_fast(env, builds, sentinel):
    program, cold, warm = builds[env]
    assert program.is_file()
    assert sentinel.requests == [], "a pio build reached for the network"
    assert cold < BUILD_SECONDS_LIMIT and warm < BUILD_SECONDS_LIMIT


@pytest.mark.parametrize("env, fpu", [("qemu_m4", True), ("qemu_m3", False)])
def test_cortex_m_elf_is_linked_for_the_board(env, fpu, builds):
    elf = builds[env][0]
    assert pio.size_tool_for(elf) == "arm-none-eabi-size"
    attributes = subprocess.run(
        ["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    assert ("Tag_ABI_VFP_args: VFP registers" in attributes) == fpu
    headers = subprocess.run(
        ["arm-none-eabi-readelf", "-S", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    vector_line = next(line for line in headers.splitlines() if ".isr_vector" in line)
    assert " 00000000 " in vector_line, "the vector table must sit at address 0"

    size = pio.size_of(elf)
    assert size.sections[".isr_vector"] > 0 and size.sections[".text"] > 0
    assert size.flash == size.text + size.data
    assert size.ram >= size.sections[".stack"]


def test_on_target_board_checks_pass_in_qemu_and_natively(sentinel, tmp_path):
    # `pio test` rebuilds the environments as test programs: never in the shared
    # build dir, whose firmware other tests boot.
    extra_env = {**sentinel.environment(), "PLATFORMIO_BUILD_DIR": str(tmp_path)}
    args = ["test"] + [flag for env in OFFLINE_ENVS for flag in ("-e", env)]
    output = pio.run_pio(args, extra_env=extra_env, timeout=300)
    cases = 6
    assert f"{cases * len(OFFLINE_ENVS)} test cases: {cases * len(OFFLINE_ENVS)} succeeded" in output
    for env in OFFLINE_ENVS:
        assert f"{env}:test_board [PASSED]" in output
    assert sentinel.requests == [], "pio test reached for the network"


def test_on_target_harness_reports_a_failing_check(tmp_path):
    extra_env = {"PLATFORMIO_BUILD_DIR": str(tmp_path), "PLATFORMIO_BUILD_FLAGS": "-DLPN_TEST_FORCE_FAILURE"}
    with pytest.raises(pio.PioError) as failure:
        pio.run_pio(["test", "-e", "qemu_m3"], extra_env=extra_env, timeout=120)
    assert "lpn-test:FAIL forced_failure" in failure.value.output
    assert "lpn-test:END 1" in failure.value.output
    assert "qemu_m3:test_board [FAILED]" in failure.value.output


def test_build_failure_reports_pio_output():
    with pytest.raises(pio.PioError) as failure:
        pio.build("no_such_env", timeout=60)
    assert "no_such_env" in str(failure.value)
    assert failure.value.output


def test_emulated_envs_name_their_qemu_machine():
    assert qemu_machine_for_env("qemu_m4") == "mps2-an386"
    assert qemu_machine_for_env("qemu_m3") == "mps2-an385"
    with pytest.raises(EmulatorError):
        qemu_machine_for_env("native")


# ---------------------------------------------------------------------------
# platformio.ini as PlatformIO reads it: parsed, never built, so the real-board
# environments (official platforms, which need the internet) are checked too.
CONFIG_DUMP = """
import json, sys
from platformio.project.config import ProjectConfig

path = sys.argv[1]
lint = ProjectConfig.lint(path)
config = ProjectConfig(path)
config.validate(silent=True)
envs = {env: dict(config.items(env=env)) for env in config.envs()}
print(json.dumps({"lint": lint, "warnings": config.warnings, "default_envs": config.default_envs(),
                  "envs": envs}, default=str))
"""
# The real boards issue 4 asks for, by the official platform each one needs.
OFFICIAL_PLATFORMS = {"ststm32", "atmelavr", "espressif32", "raspberrypi"}
LEARNER_SCRIPT = "pre:extra_scripts/lpn_learner.py"
BOARD_GLUE_DIR = pio.FIRMWARE_DIR / "src" / "board"


@pytest.fixture(scope="module")
def platformio_config(sentinel):
    """Every environment's options, expanded by PlatformIO (extra_configs included), read
    in a pio-like process: the project-local core dir, and proxies that record any connection."""
    core = pio.ensure_offline_core(pio.default_core_dir())
    done = subprocess.run(
        [sys.executable, "-c", CONFIG_DUMP, str(pio.FIRMWARE_DIR / "platformio.ini")],
        cwd=pio.FIRMWARE_DIR, env=pio.offline_environment(core, sentinel.environment()),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _flags(options: dict) -> list[str]:
    return [token for line in options.get("build_flags", []) for token in shlex.split(line)]


def _glue_folders(options: dict) -> list[str]:
    """The board-glue folders an environment's build_src_filter adds (`+<board/X/>`)."""
    filters = " ".join(options.get("build_src_filter", []))
    return [part[len("+<board/"):-2] for part in filters.split() if part.startswith("+<board/")]


def test_every_environment_parses_without_the_network(platformio_config, sentinel):
    assert platformio_config["lint"] == {"errors": [], "warnings": []}
    assert platformio_config["warnings"] == []
    envs = platformio_config["envs"]
    # The host tool reads platformio.ini with its own parser: it must see the same.
    assert sorted(envs) == sorted(build_firmware.pio_envs())
    assert platformio_config["default_envs"] == [pio.DEFAULT_ENV]
    for env, options in envs.items():
        assert build_firmware.default_model_spec(env) == options["custom_lpn_model"], env
        assert LEARNER_SCRIPT in options.get("extra_scripts", []), f"{env} does not generate its learner"
        glue = _glue_folders(options)
        assert len(glue) == 1 and (BOARD_GLUE_DIR / glue[0]).is_dir(), f"{env}: board glue {glue}"
    assert sentinel.requests == [], "reading platformio.ini reached for the network"


def test_offline_environments_use_project_platforms_and_shipped_boards(platformio_config):
    offline = {env: o for env, o in platformio_config["envs"].items() if build_firmware.is_offline_env(env)}
    assert {"qemu_m4", "qemu_m3", "native", "simavr_uno"} <= set(offline)
    for env, options in offline.items():
        platform = Path(options["platform"].removeprefix("symlink://"))
        assert platform.parent == pio.FIRMWARE_DIR / "platforms", env   # ${PROJECT_DIR} expanded, absolute
        assert (platform / "platform.json").is_file() and (platform / "builder" / "main.py").is_file(), env
        assert "framework" not in options, f"{env}: the project-local platforms have no framework"
        # Without it, `pio run` fetches the default test framework (Unity) from the registry.
        assert options.get("test_framework") == "custom", env
        spec = options["custom_lpn_model"]
        assert spec in configs.names() or (pio.FIRMWARE_DIR / spec).is_file(), f"{env}: model {spec!r}"
        if "board" not in options:
            assert platform.name == "native-local", f"{env} names no board"
            continue
        board = options["board"]
        assert (pio.BOARDS_DIR / f"{board}.json").is_file(), f"{env}: no manifest boards/{board}.json"
        manifest = pio.board_manifest(board)
        assert {"name", "url", "vendor"} <= set(manifest), board
        assert {"mcu", "f_cpu"} <= set(manifest["build"]), board
        if platform.name == "arm-none-eabi-local":
            assert manifest["build"]["cpu"].startswith("cortex-m") and "ldscript" in manifest["build"]
        elif platform.name == "avr-local":
            assert manifest["build"]["mcu"].startswith("atmega")


def test_real_board_environments_are_complete(platformio_config):
    real = {env: o for env, o in platformio_config["envs"].items() if not build_firmware.is_offline_env(env)}
    assert {o["platform"] for o in real.values()} == OFFICIAL_PLATFORMS
    for env, options in real.items():
        assert "://" not in options["platform"], f"{env}: an official platform, by its registry name"
        assert options.get("framework") == ["arduino"], env
        # An official board id: a manifest of the same name in boards/ would shadow it.
        assert options.get("board") and not (pio.BOARDS_DIR / f"{options['board']}.json").exists(), env
        assert _glue_folders(options) == ["arduino"], env
        assert "-<main.c>" in " ".join(options["build_src_filter"]), f"{env}: the framework owns main()"
        assert options["custom_lpn_model"] in configs.names(), f"{env}: not a shipped config"
        bauds = [f.split("=", 1)[1] for f in _flags(options) if f.startswith("-DLPN_SERIAL_BAUD=")]
        assert bauds == [str(options["monitor_speed"])], f"{env}: the monitor must speak the firmware's baud"


def test_arduino_uno_builds_what_simavr_uno_measured_to_fit(platformio_config):
    # The ATmega328P image measured in simavr (tests/test_avr_e2e.py) fits 2 KB with the
    # uno config and these learner and protocol flags; the Arduino-core Uno must use them too.
    envs = platformio_config["envs"]
    uno, simulated = envs["uno"], envs["simavr_uno"]
    assert uno["board"] == "uno" and uno["platform"] == "atmelavr"
    assert uno["custom_lpn_model"] == simulated["custom_lpn_model"] == "uno"
    needed = [f for f in _flags(simulated) if f.startswith(("-DLPN_", "-m", "-Wl,"))
              and not f.startswith("-DLPN_SERIAL_BAUD=")]
    assert {"-DLPN_DEVICE_MAX_FRAME=96", "-mcall-prologues"} <= set(needed)
    assert set(needed) <= set(_flags(uno))
    assert "-DLPN_SERIAL_BAUD=115200" in _flags(uno)   # the USB-serial bridge, not simavr's 1 Mbaud


def read_exactly(link: serial.Serial, count: int) -> bytes:
    received = bytearray()
    while len(received) < count:
        chunk = link.read(count - len(received))
        if not chunk:
            break
        received += chunk
    return bytes(received)


@pytest.mark.parametrize("env", EMULATED_ENVS)
def test_qemu_firmware_answers_over_the_uart(env, builds):
    elf = builds[env][0]
    with Emulator(elf, machine=qemu_machine_for_env(env), timeout=60) as emu:
        link = serial.serial_for_url(emu.url, timeout=5)
        try:
            # The protocol loop sends one delimiter as soon as it is up.
            assert read_exactly(link, 1) == b"\x00"
            boot_to_first_byte = time.monotonic() - emu.started_at
            device = Device(link=link, timeout=5)
            started = time.monotonic()
            state = device.get_state()
            seconds = time.monotonic() - started
        finally:
            link.close()
        assert emu.process.poll() is None, emu.output
    # Built without a model, the firmware runs its environment's default: digits.
    assert state == FixedLPN.new("digits").state_bytes()
    print(f"\n{env}: boot to first byte {boot_to_first_byte * 1000:.0f} ms, "
          f"state download {len(state) / seconds / 1024:.1f} KiB/s")
    assert boot_to_first_byte < 5.0
    assert seconds < 20.0


def test_idle_firmware_sleeps_instead_of_spinning(builds):
    # The board's wait() puts the core in WFI until a UART or SysTick interrupt;
    # a polling loop would keep QEMU at a full host core.
    with Emulator(builds["qemu_m4"][0], timeout=30) as emu:
        link = serial.serial_for_url(emu.url, timeout=5)
        try:
            device = Device(link=link, timeout=5)
            cpu_before = _cpu_seconds(emu.process.pid)
            time.sleep(1.5)
            busy = (_cpu_seconds(emu.process.pid) - cpu_before) / 1.5
            assert device.info().inputs == 64  # still awake to the UART after sleeping
        finally:
            link.close()
    assert busy < 0.25, f"idle QEMU used {busy:.0%} of a core"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_emulator_is_killed_by_its_timeout(builds):
    # Nobody connects, so QEMU would wait forever; the watchdog must end it.
    with Emulator(builds["qemu_m4"][0], timeout=1.0) as emu:
        assert emu.process.wait(10) is not None
        assert emu.timed_out
    assert emu.process.poll() is not None


def test_emulator_kills_qemu_on_leaving_the_block(builds):
    with Emulator(builds["qemu_m3"][0], machine="mps2-an385", timeout=60) as emu:
        link = serial.serial_for_url(emu.url, timeout=5)
        link.close()
        process = emu.process
    assert process.poll() is not None
    assert not emu.timed_out


def test_emulator_refuses_a_missing_firmware(tmp_path):
    with pytest.raises(EmulatorError, match="no firmware"):
        Emulator(tmp_path / "absent.elf").start()


def test_native_build_serves_the_protocol_on_stdin_and_exits_at_end_of_input(builds):
    names = ["hello", "info", "stats", "unknown", "get_state"]
    requests = [
        (P.BY_NAME["hello"].code, P.pack(P.BY_NAME["hello"].request, {"host_version": P.VERSION}, {})),
        (P.BY_NAME["info"].code, b""),
        (P.BY_NAME["stats"].code, b""),
        (0x7E, b""),
        (P.BY_NAME["get_state"].code, P.pack(P.BY_NAME["get_state"].request, {"offset": 0, "length": 64}, {})),
    ]
    wire = b"".join(b"\x00" + P.request_frame(code, seq, payload) for seq, (code, payload) in enumerate(requests))
    done = subprocess.run([str(builds["native"][0])], input=wire, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    replies = [P.parse_reply(body) for body in P.FrameReader().feed(done.stdout)]
    assert [(r.code, r.seq) for r in replies] == [(code, seq) for seq, (code, _) in enumerate(requests)]
    statuses = dict(zip(names, (r.status_name for r in replies)))
    assert statuses == {"hello": "ok", "info": "ok", "stats": "ok", "unknown": "unknown_command", "get_state": "ok"}
    model = FixedLPN.new("digits")
    info = P.unpack(P.BY_NAME["info"].reply, replies[1].payload, {})
    assert info["model_hash"].hex() == modelfile.model_hash(model)
    assert info["board"] == "native" and info["free_ram"] == 0
    chunk = P.unpack(P.BY_NAME["get_state"].reply, replies[4].payload, {})
    assert chunk["total"] == len(model.state_bytes()) and chunk["data"] == model.state_bytes()[:64]
