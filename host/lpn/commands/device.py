"""Firmware and device commands: `lpn build`, `lpn flash`, `lpn emulate`, `lpn push`,
`lpn pull`, `lpn stream` and `lpn monitor` (`lpn save` and `lpn load`: commands/persist.py).

The device commands take a serial URL: a port (`/dev/ttyACM0`, `COM3`) or the
`socket://127.0.0.1:PORT` that `lpn emulate` prints. Mistakes (an unreachable
device, a model that does not fit the firmware, a malformed CSV) end as one
`error: ...` line with exit code 2.

Which models fit a device. A firmware is generated from one model M0 and reports
M0's hash (`info`). The hash covers M0's config, number formats and state; a pushed
model must share the config and formats (the generated C holds them as constants)
and may hold any state. `same_model_family` checks exactly that, without trusting
names: the hash of (the candidate's config and formats, M0's state) must equal the
device's hash. M0's state comes from a local copy when one is known (every `lpn
build` keeps one; shipped configs are rebuilt), else from the device itself: its
current state if it has not learnt yet, otherwise the compiled-in state, read
after a `reset` and followed by putting the current state back.
"""
from __future__ import annotations

import functools
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import build_firmware, datasets, modelfile, pio
from .. import protocol as P
from .lifecycle import LPNError, _check_features, _check_labels, _console, _file_path, _refuse_overwrite
from .lifecycle import _tasks_of_labels

DEFAULT_TIMEOUT = 5.0


def device_errors(command: Callable) -> Callable:
    """Failures of the device, the build, the emulator or the user's input become `error: ...`."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import serial

        from ..device import DeviceError
        from ..emulator import EmulatorError
        try:
            return command(*args, **kwargs)
        except (ValueError, DeviceError, pio.PioError, EmulatorError) as exc:
            raise LPNError(str(exc)) from exc
        except serial.SerialException as exc:
            raise LPNError(f"cannot talk to the device: {exc}") from exc
    return wrapper


def _env_option() -> Callable:
    return click.option("--env", "env", default=pio.DEFAULT_ENV, show_default=True,
                        help="PlatformIO environment (firmware/platformio.ini).")


def _model_option(help_text: str) -> Callable:
    return click.option("--model", "model", default=None, metavar="MODEL", help=help_text)


# ---------------------------------------------------------------------------
# Models and devices
def load_fixed(path: Path) -> Any:
    """A fixed-point model file; a float one gets a hint to convert it."""
    model = modelfile.load(path)
    if model.kind != "fixed":
        raise LPNError(f"{path} is a {model.kind} model; devices run fixed-point models: "
                       f"make one with `lpn convert`")
    return model


def size_mismatches(info: Any, model: Any) -> list[str]:
    """The sizes in which `model` differs from the device's learner, as readable phrases."""
    cfg = model.config
    ours = {"inputs": cfg.sizes[0], "outputs": cfg.sizes[-1], "tasks": cfg.tasks.count,
            "layers": len(cfg.sizes) - 1, "state bytes": len(model.state_bytes()),
            "synapses": model.topology.synapses}
    theirs = {"inputs": info.inputs, "outputs": info.outputs, "tasks": info.tasks, "layers": info.layers,
              "state bytes": info.state_bytes, "synapses": info.synapses}
    return [f"{k} {ours[k]} (device {theirs[k]})" for k in ours if ours[k] != theirs[k]]


def _hash_with_state(model: Any, state: bytes) -> str | None:
    """The hash a model with `model`'s config and formats would have, holding `state`."""
    from ..fixed import FixedLPN
    twin = FixedLPN(model.config, model.formats, model.topology)
    try:
        twin.load_state_bytes(state)
    except ValueError:
        return None
    return modelfile.model_hash(twin)


def compiled_in_state(dev: Any, info: Any, known: dict[str, Any] | None = None,
                      current: bytes | None = None) -> bytes:
    """The state the device's firmware was generated with (see the module's doc).

    `current`, if given, is the device's state as just read, which saves a download.
    """
    local = (known or {}).get(info.model_hash)
    if local is not None:
        return build_firmware.resolve_model(local).state_bytes()
    if current is None:
        current = dev.get_state()
    dev.reset()
    try:
        return dev.get_state()
    finally:
        dev.put_state(current)  # the device ends as it was


def same_model_family(dev: Any, info: Any, model: Any, known: dict[str, Any] | None = None) -> bool:
    """True when `model` has the config and formats the device's firmware was generated from."""
    if modelfile.model_hash(model) == info.model_hash:
        return True
    current = None
    if (known or {}).get(info.model_hash) is None:
        # A device that has not learnt yet holds the compiled-in state: no reset needed.
        current = dev.get_state()
        if _hash_with_state(model, current) == info.model_hash:
            return True
    return _hash_with_state(model, compiled_in_state(dev, info, known, current)) == info.model_hash


def check_fits(dev: Any, info: Any, model: Any, label: str, known: dict[str, Any] | None = None) -> None:
    """Refuse, with the reason, a model that the device's firmware cannot run."""
    mismatches = size_mismatches(info, model)
    if mismatches:
        raise LPNError(f"{label} does not fit the device's learner: " + ", ".join(mismatches)
                       + f". Build the firmware for it: `lpn build --model {label}`")
    if not same_model_family(dev, info, model, known):
        raise LPNError(f"{label} has the device's sizes but another config or number formats than the model "
                       f"its firmware was generated from (sha256 {info.model_hash[:16]}...); "
                       f"build the firmware for it: `lpn build --model {label}`")


def device_model(dev: Any, info: Any, model_path: Path | None, known: dict[str, Any]) -> tuple[Any, str]:
    """A host-side model with the device's config and formats: --model, or the device's own.

    Returns (model, where it came from).
    """
    if model_path is not None:
        model = load_fixed(model_path)
        check_fits(dev, info, model, str(model_path), known)
        return model, str(model_path)
    local = known.get(info.model_hash)
    if local is None:
        raise LPNError(f"the device's firmware was generated from a model this computer does not know "
                       f"(sha256 {info.model_hash[:16]}...); pass --model with that model, or with the "
                       f"model last pushed to it")
    return build_firmware.resolve_model(local), str(local)


def open_device(url: str, timeout: float) -> Any:
    from ..device import Device
    return Device(url, timeout=timeout)


# ---------------------------------------------------------------------------
@click.command()
@_env_option()
@_model_option("Fixed-point model file to build the learner from "
               "(default: the environment's custom_lpn_model, digits for Cortex-M).")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build here instead of firmware/.pio/build (the learner is generated inside it too).")
@device_errors
def build(env: str, model: str | None, build_dir: Path | None) -> None:
    """Generate the C learner of a model and build the firmware with PlatformIO, offline."""
    result = build_firmware.build(env, model, build_dir=build_dir)
    _print_build(result)


def _print_build(result: build_firmware.FirmwareBuild) -> None:
    size, learner = result.size, result.learner
    stack = size.sections.get(".stack", 0)
    _console().print(
        f"built {result.env} in {result.seconds:.1f} s: {result.program}\n"
        f"learner: model {learner.name!r} sha256 {learner.model_hash[:16]}... ({learner.spec}), "
        f"generated in {learner.directory}\n"
        f"flash {size.flash} B, RAM {size.ram} B" + (f" (stack {stack} B of it)" if stack else ""))


# ---------------------------------------------------------------------------
@click.command()
@click.option("--env", "env", required=True, help="PlatformIO environment of a real board, e.g. nucleo_f446re.")
@_model_option("Fixed-point model file (default: the environment's custom_lpn_model).")
@click.option("--upload-port", default=None, help="Serial port or drive to upload through (default: PlatformIO's guess).")
@click.option("--dry-run", is_flag=True, help="Generate the learner and print the upload command without running it.")
@device_errors
def flash(env: str, model: str | None, upload_port: str | None, dry_run: bool) -> None:
    """Build and upload the firmware to a real board with `pio run -t upload`.

    Needs a PlatformIO that can reach its registry (real boards use PlatformIO's
    official platforms); the learner is generated first, so that PlatformIO does
    not need this tool.
    """
    import shlex
    import subprocess

    command, variables, learner = build_firmware.prepare_flash(env, model, upload_port)
    console = _console()
    console.print(f"learner: model {learner.name!r} sha256 {learner.model_hash[:16]}... in {learner.directory}")
    shown = f"{build_firmware.GENERATED_ENV_VAR}={shlex.quote(variables[build_firmware.GENERATED_ENV_VAR])} " \
            + " ".join(shlex.quote(c) for c in command)
    if dry_run:
        console.print(shown)
        return
    console.print(f"running: {shown}")
    code = subprocess.run(command, cwd=str(pio.FIRMWARE_DIR), env=variables).returncode
    if code != 0:
        raise LPNError(f"the upload failed (pio exit code {code})")


# ---------------------------------------------------------------------------
@click.command()
@_env_option()
@click.option("--board", "board", default=None, metavar="BOARD",
              help="Board manifest in boards/ (e.g. atmega328p_sim): run the environment built for it.")
@_model_option("Build the learner from this fixed-point model first "
               "(default: keep the learner built last, or the environment's default model).")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build here instead of firmware/.pio/build.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop the emulator after this many seconds (default: run until Ctrl-C).")
@click.option("--storage", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Host file that is the board's persistent storage (`lpn save`/`lpn load`; loaded at "
                   "boot; on an AVR, its EEPROM image); created if missing. Default: no storage.")
@device_errors
def emulate(env: str, board: str | None, model: str | None, build_dir: Path | None, timeout: float | None,
            storage: Path | None) -> None:
    """Run the firmware in its emulator (QEMU, or simavr for an AVR) with its UART on a
    local TCP port, until Ctrl-C.

    Prints the socket:// URL to give the device commands (`lpn push URL MODEL`, ...).
    The emulated device keeps its state from one connection to the next, and with
    --storage across runs too: a state saved with `lpn save` is loaded at boot.
    """
    if board is not None:
        if click.get_current_context().get_parameter_source("env") != click.core.ParameterSource.DEFAULT:
            raise LPNError("pass --env or --board, not both")
        env = build_firmware.offline_env_of_board(board)
    kind, target = _emulator_target(env)  # before building: native has no emulator
    result = build_firmware.build(env, model, keep_learner=model is None, build_dir=build_dir)
    _print_build(result)
    if storage is not None and not storage.parent.resolve().is_dir():
        raise LPNError(f"--storage {storage}: no folder {storage.parent}")
    emulator = _make_emulator(kind, target, result.program, timeout, storage)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    # Ctrl-C must stop the emulator even when this process was started with SIGINT
    # ignored (as a background job, or by a parent that ignores it), which Python keeps.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with emulator:
            console = _console()
            console.print(f"{_emulator_name(kind, target)} is running the firmware; its serial line:")
            click.echo(emulator.url)
            console.print("Ctrl-C stops it.")
            code = _wait_for(emulator)
        if emulator.timed_out:
            _console().print(f"stopped after {timeout:g} s")
        elif code is not None:
            reason = getattr(emulator, "exit_reason", None)
            raise LPNError(f"the firmware ended the emulation with exit code {code}"
                           + (f" ({reason})" if reason else "") + f":\n{emulator.output}")
    except KeyboardInterrupt:
        _console().print("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _emulator_target(env: str) -> tuple[str, Any]:
    """("simavr", (mcu, Hz)) or ("qemu", machine): the emulator the env's board manifest names."""
    from ..avr import simavr_target_for_env
    from ..emulator import EmulatorError, qemu_machine_for_env

    try:
        return "qemu", qemu_machine_for_env(env)
    except EmulatorError as qemu_error:
        try:
            return "simavr", simavr_target_for_env(env)
        except EmulatorError:
            raise qemu_error from None


def _make_emulator(kind: str, target: Any, program: Path, timeout: float | None, storage: Path | None) -> Any:
    if kind == "simavr":
        from ..avr import AvrEmulator
        mcu, frequency = target
        return AvrEmulator(program, mcu=mcu, frequency=frequency, timeout=timeout, eeprom=storage)
    from ..emulator import Emulator
    return Emulator(program, machine=target, timeout=timeout, storage=storage)


def _emulator_name(kind: str, target: Any) -> str:
    if kind == "simavr":
        mcu, frequency = target
        return f"simavr ({mcu} at {frequency / 1e6:g} MHz)"
    return f"QEMU {target}"


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait_for(emulator: Any) -> int | None:
    """Blocks until the emulator ends; its exit code, or None when the watchdog stopped it."""
    # A blocking wait, not a poll loop: Ctrl-C landing inside Popen.poll() can leave
    # Popen's internal waitpid lock taken, and the kill that follows then waits forever.
    code = emulator.process.wait()
    return None if emulator.timed_out else code


# ---------------------------------------------------------------------------
@click.command()
@click.argument("url")
@click.argument("model_path", metavar="MODEL", type=_file_path())
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds to wait for each reply.")
@device_errors
def push(url: str, model_path: Path, timeout: float) -> None:
    """Upload MODEL's state to the device at URL, replacing what it learnt.

    The device must run a firmware generated from a model with MODEL's config and
    number formats (the state may differ: a trained or converted model); any other
    model is refused and the device is left as it was.
    """
    model = load_fixed(model_path)
    state = model.state_bytes()
    with open_device(url, timeout) as dev:
        info = dev.info()
        check_fits(dev, info, model, str(model_path), build_firmware.known_models())
        started = time.monotonic()
        dev.put_state(state)
        seconds = time.monotonic() - started
    _console().print(f"pushed {model_path} ({len(state)} state bytes, sha256 {modelfile.model_hash(model)[:16]}...) "
                     f"in {seconds:.2f} s ({len(state) / max(seconds, 1e-9):.0f} B/s)")


@click.command()
@click.argument("url")
@click.option("--out", "out", required=True, type=_file_path(), help="Model file to write.")
@_model_option("Model with the device's config and formats (default: the model its firmware was "
               "generated from, when this computer built it or it is a shipped config's).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds to wait for each reply.")
@device_errors
def pull(url: str, out: Path, model: str | None, force: bool, timeout: float) -> None:
    """Download the device's learnt state into a model file."""
    from ..fixed import FixedLPN

    _refuse_overwrite(out, force)
    with open_device(url, timeout) as dev:
        info = dev.info()
        base, source = device_model(dev, info, Path(model) if model else None, build_firmware.known_models())
        started = time.monotonic()
        state = dev.get_state()
        seconds = time.monotonic() - started
    pulled = FixedLPN(base.config, base.formats, base.topology)
    pulled.load_state_bytes(state)
    modelfile.save(pulled, out)
    _console().print(f"pulled {len(state)} state bytes in {seconds:.2f} s ({len(state) / max(seconds, 1e-9):.0f} B/s); "
                     f"{int(pulled.state['step'])} steps learnt; config and formats of {source}; wrote {out}")


# ---------------------------------------------------------------------------
def _task_choice(value: str) -> int | None:
    if value == "inferred":
        return None
    try:
        task = int(value)
    except ValueError:
        raise click.BadParameter("a task id (0, 1, ...) or 'inferred'") from None
    if task < 0:
        raise click.BadParameter("task ids are not negative")
    return task


def _wire_bytes(name: str, request: dict[str, Any], reply: dict[str, Any], dims: dict[str, int]) -> int:
    """Bytes one exchange takes on the line: both frames, delimiters included."""
    cmd = P.BY_NAME[name]
    sent = 1 + len(P.request_frame(cmd.code, 1, P.pack(cmd.request, request, dims)))
    received = len(P.reply_frame(cmd.code, 1, 0, P.pack(cmd.reply, reply, dims)))
    return sent + received


@click.command()
@click.argument("url")
@click.argument("data", metavar="DATA.csv", type=_file_path())
@click.option("--label", required=True, metavar="COLUMN", help="CSV column holding the class labels.")
@click.option("--task", "task_text", default="inferred", show_default=True, metavar="T|inferred",
              help="Task id of every sample, or 'inferred': the task whose output mask holds the label.")
@_model_option("Model with the device's config and formats, for the input format and the task "
               "masks (default: the model its firmware was generated from, when known here).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds to wait for each reply.")
@device_errors
def stream(url: str, data: Path, label: str, task_text: str, model: str | None, timeout: float) -> None:
    """Learn from the rows of DATA.csv on the device at URL, in file order.

    Each sample is first predicted (among its task's outputs) and then learnt, so
    the running accuracy is measured on samples the device had not yet seen.
    """
    task = _task_choice(task_text)
    X, y, _ = datasets.load_csv(data, label=label)
    with open_device(url, timeout) as dev:
        info = dev.info()
        base, _ = device_model(dev, info, Path(model) if model else None, build_firmware.known_models())
        _check_features(base, X, data)
        if task is not None and task >= base.config.tasks.count:
            raise LPNError(f"--task {task}: the model has {base.config.tasks.count} task(s)")
        _check_labels(base, y, data, task)
        tasks = np.full(len(y), task) if task is not None else _tasks_of_labels(base, y, data)
        x_q = base.quantise_input(X)
        t_q = base.quantise_target(np.eye(base.config.sizes[-1])[y])
        dims = {"inputs": info.inputs, "outputs": info.outputs, "layers": info.layers}

        correct, line_bytes = 0, 0
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("accuracy {task.fields[accuracy]}"), TextColumn("{task.fields[rate]} steps/s"),
                   TimeElapsedColumn())
        started = time.monotonic()
        with Progress(*columns, console=_console()) as progress:
            bar = progress.add_task(f"streaming {data.name}", total=len(y), accuracy="-", rate="-")
            for i in range(len(y)):
                t_i = int(tasks[i])
                x, t = x_q[i].tolist(), t_q[i].tolist()
                predicted, outputs = dev.predict(x, task=t_i)
                correct += int(predicted == y[i])
                dev.learn(x, t, task=t_i)
                line_bytes += _wire_bytes("predict", {"task": t_i, "x": x},
                                          {"class": predicted, "y": outputs.tolist()}, dims)
                line_bytes += _wire_bytes("learn", {"task": t_i, "x": x, "t": t}, {}, dims)
                elapsed = time.monotonic() - started
                progress.update(bar, advance=1, accuracy=f"{correct / (i + 1):.1%}",
                                rate=f"{(i + 1) / max(elapsed, 1e-9):.1f}")
        seconds = time.monotonic() - started
        stats = dev.stats()
    n = len(y)
    _console().print(
        f"streamed {n} samples in {seconds:.1f} s: {n / seconds:.1f} learn steps/s, "
        f"{line_bytes / seconds:.0f} B/s on the line (predict and learn)\n"
        f"running accuracy {correct}/{n} = {correct / n:.4f} (each sample predicted before it was learnt)\n"
        f"device: step {stats.step}, task {stats.task}, {stats.seen} samples offered to replay, "
        f"{stats.saturations} saturations")


# ---------------------------------------------------------------------------
@click.command()
@click.argument("url")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between two readings.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Stop after this many readings (default: until Ctrl-C).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds to wait for each reply.")
@device_errors
def monitor(url: str, interval: float, count: int | None, timeout: float) -> None:
    """Print the device's learning statistics periodically."""
    console = _console()
    try:
        with open_device(url, timeout) as dev:
            info = dev.info()
            console.print(f"{info.board}: firmware {info.firmware_version}, model sha256 {info.model_hash[:16]}..., "
                          f"{info.inputs} inputs, {info.outputs} outputs, {info.tasks} task(s), "
                          f"{info.synapses} synapses, {info.state_bytes} state bytes, {info.free_ram} B RAM free")
            previous = None
            for reading in _readings(dev, interval, count):
                now, stats = reading
                rate = ""
                if previous is not None:
                    rate = f" ({(stats.step - previous[1].step) / max(now - previous[0], 1e-9):.1f} steps/s)"
                layers = "  ".join(f"L{i} budget {s.budget} loss {s.loss_fast}/{s.loss_slow}"
                                   for i, s in enumerate(stats.layers, start=1))
                console.print(f"step {stats.step}{rate}  task {stats.task}  seen {stats.seen}  "
                              f"saturations {stats.saturations}  {layers}")
                previous = reading
    except KeyboardInterrupt:
        pass


def _readings(dev: Any, interval: float, count: int | None) -> Iterator[tuple[float, Any]]:
    taken = 0
    while count is None or taken < count:
        if taken:
            time.sleep(interval)
        yield time.monotonic(), dev.stats()
        taken += 1
