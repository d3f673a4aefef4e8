"""The generated learner of a firmware build, and the builds, emulations and uploads that use it.

The firmware's C (firmware/src) includes `learner.h`, the learner generated from one
model file by `lpncodegen`. That code is never part of the source tree: each
PlatformIO environment gets its own generated folder (by default
`firmware/.pio/generated/<env>/`, inside the git-ignored `.pio/`):

    <generated>/learner/learner.h, learner.c   the learner (prefix "learner")
    <generated>/learner/learner_meta.h         the model's SHA-256 and task masks
    <generated>/learner/library.json           makes the folder a PlatformIO library
    <generated>/model.lpn                      a copy of the model it was generated from
    <generated>/manifest.json                  which model, asked for by whom

The pre-script `firmware/extra_scripts/lpn_learner.py` calls `ensure_learner` at the
start of every `pio run`/`pio test` and adds `<generated>` to PlatformIO's library
folders, so the dependency finder picks the learner up when `learner.h` is included.
Which model it generates:

- the model named by the environment variable LPN_MODEL (set by `lpn build --model`,
  `lpn emulate`, `lpn flash`), always;
- otherwise the learner already generated, if it came from `lpn build`;
- otherwise the environment's `custom_lpn_model` option (a model file, or the name
  of a shipped config, meaning that config's untrained fixed-point model), regenerated
  whenever that option names a different model.

Files are rewritten only when their content changes, so an unchanged model costs
no recompilation.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import pio

LEARNER_PREFIX = "learner"       # C prefix of the generated learner: learner.h, learner_init(), ...
LIBRARY_DIR = "learner"          # the generated PlatformIO library's folder
MODEL_COPY = "model.lpn"
MANIFEST = "manifest.json"
MODEL_ENV_VAR = "LPN_MODEL"
GENERATED_ENV_VAR = "LPN_GENERATED_DIR"
MODEL_OPTION = "custom_lpn_model"
ORIGIN_REQUEST = "request"        # generated for LPN_MODEL (lpn build and friends)
ORIGIN_OPTION = "option"          # generated for the environment's custom_lpn_model


class FirmwareError(ValueError):
    """A firmware build, emulation or upload cannot go ahead; the message says why."""


# ---------------------------------------------------------------------------
# Which model
def resolve_model(spec: str | os.PathLike, base_dir: Path | None = None) -> Any:
    """The fixed-point model named by `spec`: a model file, or a shipped config's name.

    A relative path is taken from `base_dir` (default: the working directory). A
    shipped config's name stands for `FixedLPN.new(config)`, which is deterministic.
    """
    from . import configs, modelfile
    from .fixed import FixedLPN

    text = str(spec)
    path = Path(text)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_file():
        model = modelfile.load(path)
        if getattr(model, "kind", None) != "fixed":
            raise FirmwareError(f"{path} is a {getattr(model, 'kind', '?')} model; the firmware needs a "
                                f"fixed-point one: make it with `lpn convert`")
        return model
    if text in configs.names():
        return FixedLPN.new(configs.named(text))
    raise FirmwareError(f"no model file {path} and no shipped config named {text!r} "
                        f"(shipped: {', '.join(configs.names())})")


def default_model_spec(env: str, project_dir: Path = pio.FIRMWARE_DIR) -> str:
    """The environment's `custom_lpn_model` option (its model when none is given)."""
    options = pio.env_options(env, project_dir)
    spec = _interpolate(options.get(MODEL_OPTION, ""), project_dir)
    if not spec:
        raise FirmwareError(f"environment {env!r} has no {MODEL_OPTION} option in platformio.ini; pass --model")
    return spec


def _interpolate(value: str, project_dir: Path) -> str:
    """Resolves `${section.option}` references the way platformio.ini does, for the one option read here."""
    parser = pio.project_config(project_dir)
    for _ in range(10):
        match = re.search(r"\$\{([^.}]+)\.([^}]+)\}", value)
        if not match:
            break
        section, option = match.groups()
        section = section if parser.has_section(section) else f"env:{section}"
        replacement = parser.get(section, option, fallback="")
        value = value[:match.start()] + replacement + value[match.end():]
    return value.strip()


# ---------------------------------------------------------------------------
# The generated folder
def generated_dir(env: str, project_dir: Path = pio.FIRMWARE_DIR, build_dir: Path | None = None) -> Path:
    """Where environment `env`'s learner is generated.

    Builds into a build folder of their own (PLATFORMIO_BUILD_DIR) keep their
    learner inside it, so they never see another build's model.
    """
    if build_dir is not None:
        return Path(build_dir) / ".lpn-generated" / env
    return Path(project_dir) / ".pio" / "generated" / env


def meta_header(model: Any, model_hash: str) -> str:
    """`learner_meta.h`: what the firmware reports or needs about the model beyond the learner's API."""
    cfg = model.config
    digest = bytes.fromhex(model_hash)
    hash_rows = ", \\\n    ".join(", ".join(f"0x{b:02x}" for b in digest[i:i + 8]) for i in range(0, len(digest), 8))
    n_out = cfg.sizes[-1]
    mask_rows = []
    for task in range(cfg.tasks.count):
        bits = [bool(v) for v in cfg.task_mask(task)]
        row = [sum(1 << b for b in range(8) if 8 * i + b < n_out and bits[8 * i + b]) for i in range((n_out + 7) // 8)]
        mask_rows.append("{" + ", ".join(f"0x{v:02x}" for v in row) + "}")
    masks = ", \\\n    ".join(mask_rows)
    return (
        "/*\n"
        " * learner_meta.h: GENERATED FILE, DO NOT EDIT: made by lpn.build_firmware\n"
        f" * for the model \"{cfg.name}\" with SHA-256 {model_hash}.\n"
        " * The hash goes into the protocol's info reply, so the host can tell which\n"
        " * model the compiled-in learner was generated from. The task masks let the\n"
        " * predict command choose the class from outputs it has already computed.\n"
        " */\n"
        "#ifndef LEARNER_META_H\n"
        "#define LEARNER_META_H\n\n"
        f"#define LEARNER_MODEL_NAME \"{cfg.name}\"\n"
        f"#define LEARNER_MODEL_SHA256 {{ \\\n    {hash_rows} \\\n}}\n\n"
        "/* Bit o % 8 of byte o / 8 of row t: output o belongs to task t. */\n"
        f"#define LEARNER_TASK_MASK_BYTES {(n_out + 7) // 8}\n"
        f"#define LEARNER_TASK_MASKS {{ \\\n    {masks} \\\n}}\n\n"
        "#endif /* LEARNER_META_H */\n"
    )


LIBRARY_JSON = json.dumps({
    "name": "learner",
    "version": "0.0.0",
    "description": "GENERATED: the LPN learner of one model, made by lpn.build_firmware; never edit",
    "frameworks": "*",
    "platforms": "*",
    "build": {"flags": ["-std=c99"]},
}, indent=2) + "\n"


@dataclass(frozen=True)
class GeneratedLearner:
    directory: Path      # the folder PlatformIO gets as a library source dir
    model_hash: str
    name: str            # the model's config name
    origin: str          # ORIGIN_REQUEST or ORIGIN_OPTION
    spec: str            # what the model was asked for as
    written: bool        # some file changed (so the firmware recompiles)

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_COPY


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    needed = [Path(directory) / LIBRARY_DIR / f"{LEARNER_PREFIX}.{ext}" for ext in ("h", "c")]
    return manifest if isinstance(manifest, dict) and all(p.is_file() for p in needed) else None


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def write_learner(model: Any, directory: Path, origin: str, spec: str) -> GeneratedLearner:
    """Generate the learner of `model` into `directory`; files whose content is unchanged are left alone."""
    from lpncodegen.generator import render

    from . import modelfile

    directory = Path(directory)
    model_hash = modelfile.model_hash(model)
    name = model.config.name
    sources = render(model, LEARNER_PREFIX)   # everything rendered before anything is written
    files = {Path(LIBRARY_DIR) / n: text.encode() for n, text in sources.items()}
    files[Path(LIBRARY_DIR) / "learner_meta.h"] = meta_header(model, model_hash).encode()
    files[Path(LIBRARY_DIR) / "library.json"] = LIBRARY_JSON.encode()
    files[Path(MODEL_COPY)] = modelfile.to_bytes(model)
    written = False
    for relative, data in files.items():
        written |= _write_if_changed(directory / relative, data)
    manifest = {"model_hash": model_hash, "name": name, "origin": origin, "spec": spec}
    written |= _write_if_changed(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return GeneratedLearner(directory, model_hash, name, origin, spec, written)


def ensure_learner(directory: Path, requested: str | None, default_spec: str,
                   base_dir: Path | None = None) -> GeneratedLearner:
    """What the PlatformIO pre-script runs: make sure `directory` holds the right learner.

    `requested` (LPN_MODEL) always wins; without it, a learner that `lpn build`
    generated stays, and otherwise `default_spec` (custom_lpn_model) is used.
    """
    directory = Path(directory)
    if requested:
        return write_learner(resolve_model(requested, base_dir), directory, ORIGIN_REQUEST, requested)
    manifest = read_manifest(directory)
    if manifest is not None and manifest.get("origin") == ORIGIN_REQUEST:
        return GeneratedLearner(directory, manifest["model_hash"], manifest.get("name", "?"),
                                ORIGIN_REQUEST, manifest.get("spec", "?"), False)
    if not default_spec:
        raise FirmwareError(f"no learner generated in {directory} and no {MODEL_OPTION} option: "
                            f"run `lpn build --model MODEL`")
    return write_learner(resolve_model(default_spec, base_dir), directory, ORIGIN_OPTION, default_spec)


# ---------------------------------------------------------------------------
# Builds
def is_offline_env(env: str, project_dir: Path = pio.FIRMWARE_DIR) -> bool:
    """True for the environments built here through the project's own dev-platforms."""
    platform = pio.env_options(env, project_dir).get("platform", "")
    return platform.startswith("symlink://${PROJECT_DIR}/platforms/")


@dataclass(frozen=True)
class FirmwareBuild:
    env: str
    program: Path
    learner: GeneratedLearner
    seconds: float
    size: pio.FirmwareSize


def _model_request(model: str | os.PathLike | None, env: str, project_dir: Path) -> str:
    spec = str(model) if model is not None else default_model_spec(env, project_dir)
    path = Path(spec)
    # PlatformIO runs in the firmware folder: hand it an absolute path.
    return str(path.resolve()) if path.is_file() else spec


def build(env: str = pio.DEFAULT_ENV, model: str | os.PathLike | None = None, *,
          keep_learner: bool = False, build_dir: Path | None = None,
          project_dir: Path = pio.FIRMWARE_DIR, timeout: float = 300.0,
          extra_env: Mapping[str, str] | None = None) -> FirmwareBuild:
    """Build environment `env` offline with the learner of `model`.

    Without `model` it builds the environment's default model, unless `keep_learner`
    is set: then a learner generated earlier stays (what `lpn emulate` wants).
    """
    project_dir = Path(project_dir)
    if env not in pio_envs(project_dir):
        raise FirmwareError(f"platformio.ini has no environment {env!r} (has: {', '.join(pio_envs(project_dir))})")
    if not is_offline_env(env, project_dir):
        raise FirmwareError(f"environment {env!r} builds with PlatformIO's official platform, which needs the "
                            f"internet; use `lpn flash --env {env}` with a normal PlatformIO installation")
    directory = generated_dir(env, project_dir, build_dir)
    variables = {GENERATED_ENV_VAR: str(directory.resolve()), **(extra_env or {})}
    if build_dir is not None:
        variables["PLATFORMIO_BUILD_DIR"] = str(Path(build_dir).resolve())
    if model is not None or not keep_learner or read_manifest(directory) is None:
        spec = _model_request(model, env, project_dir)
        resolve_model(spec)  # a user's mistake is reported here, not from inside SCons
        variables[MODEL_ENV_VAR] = spec
    started = time.monotonic()
    program = pio.build(env, project_dir=project_dir, timeout=timeout, extra_env=variables)
    seconds = time.monotonic() - started
    manifest = read_manifest(directory)
    if manifest is None:
        raise FirmwareError(f"the build of {env!r} left no generated learner in {directory}")
    learner = GeneratedLearner(directory, manifest["model_hash"], manifest.get("name", "?"),
                               manifest.get("origin", "?"), manifest.get("spec", "?"), False)
    return FirmwareBuild(env, program, learner, seconds, pio.size_of(program))


def pio_envs(project_dir: Path = pio.FIRMWARE_DIR) -> list[str]:
    parser = pio.project_config(project_dir)
    return [s[4:] for s in parser.sections() if s.startswith("env:")]


def serves_protocol(env: str, project_dir: Path = pio.FIRMWARE_DIR) -> bool:
    """True for the device firmware (the protocol loop over the learner), as opposed to
    special programs such as the benchmark's: it builds the whole of src/ but the boards."""
    return "${lpn.src_without_boards}" in pio.env_options(env, project_dir).get("build_src_filter", "")


def offline_env_of_board(board: str, project_dir: Path = pio.FIRMWARE_DIR) -> str:
    """The device-firmware environment built here for board manifest `board`
    (e.g. atmega328p_sim -> simavr_uno)."""
    envs = [e for e in pio_envs(project_dir)
            if is_offline_env(e, project_dir) and serves_protocol(e, project_dir)
            and pio.env_options(e, project_dir).get("board") == board]
    if len(envs) != 1:
        boards = sorted({b for e in pio_envs(project_dir)
                         if is_offline_env(e, project_dir) and serves_protocol(e, project_dir)
                         for b in [pio.env_options(e, project_dir).get("board")] if b})
        found = f"environments {', '.join(envs)}: pass --env" if envs else f"none (boards: {', '.join(boards)})"
        raise FirmwareError(f"board {board!r}: {found}")
    return envs[0]


# ---------------------------------------------------------------------------
# Uploads to real boards
def flash_command(env: str, upload_port: str | None = None,
                  project_dir: Path = pio.FIRMWARE_DIR) -> list[str]:
    """`pio run -t upload` for a real board, as `lpn flash` runs it."""
    command = [sys.executable, "-m", "platformio", "run", "-d", str(Path(project_dir).resolve()),
               "-e", env, "-t", "upload"]
    if upload_port:
        command += ["--upload-port", upload_port]
    return command


def flash_environment(directory: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The upload runs in the user's own PlatformIO set-up (real boards need its official
    platforms), told only where the learner was generated."""
    variables = dict(os.environ if base is None else base)
    variables[GENERATED_ENV_VAR] = str(Path(directory).resolve())
    variables.pop(MODEL_ENV_VAR, None)  # generated already; PlatformIO's Python may not have lpn
    return variables


def prepare_flash(env: str, model: str | os.PathLike | None = None, upload_port: str | None = None,
                  project_dir: Path = pio.FIRMWARE_DIR) -> tuple[list[str], dict[str, str], GeneratedLearner]:
    """Generate the learner for a real board's environment and compose its upload command."""
    project_dir = Path(project_dir)
    if env not in pio_envs(project_dir):
        raise FirmwareError(f"platformio.ini has no environment {env!r} (has: {', '.join(pio_envs(project_dir))})")
    if is_offline_env(env, project_dir):
        board = pio.env_options(env, project_dir).get("board")
        hint = f"run it with `lpn emulate --env {env}`" if board else \
            f"it is a desktop program: `lpn build --env {env}` builds it"
        raise FirmwareError(f"environment {env!r} has no board to upload to; {hint}")
    spec = _model_request(model, env, project_dir)
    directory = generated_dir(env, project_dir)
    learner = write_learner(resolve_model(spec), directory, ORIGIN_REQUEST, spec)
    return flash_command(env, upload_port, project_dir), flash_environment(directory), learner


def flash(env: str, model: str | os.PathLike | None = None, upload_port: str | None = None,
          project_dir: Path = pio.FIRMWARE_DIR,
          run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int:
    """Generate the learner and upload the firmware; returns pio's exit code."""
    command, variables, _ = prepare_flash(env, model, upload_port, project_dir)
    return run(command, cwd=str(project_dir), env=variables).returncode


def known_models(extra_dirs: Sequence[Path] = (), project_dir: Path = pio.FIRMWARE_DIR) -> dict[str, Path | str]:
    """{model hash: where the model is}: every locally generated learner's model copy and
    every shipped config's untrained model, for naming the model a device runs."""
    from . import configs, modelfile
    from .fixed import FixedLPN

    found: dict[str, Path | str] = {}
    roots = [Path(project_dir) / ".pio" / "generated", *[Path(d) for d in extra_dirs]]
    for root in roots:
        for manifest_path in sorted(root.glob(f"*/{MANIFEST}")) + sorted(root.glob(MANIFEST)):
            manifest = read_manifest(manifest_path.parent)
            copy = manifest_path.parent / MODEL_COPY
            if manifest and copy.is_file():
                found.setdefault(manifest["model_hash"], copy)
    for name in configs.names():
        found.setdefault(modelfile.model_hash(FixedLPN.new(configs.named(name))), name)
    return found
