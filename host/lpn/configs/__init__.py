"""Configs shipped with the package, by name, and the rule for reading a user's config.

A name (`digits`) means a shipped file `lpn/configs/<name>.toml`; anything that looks
like a path (it has a suffix or a directory part) is read with `LPNConfig.load`.
"""
from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from ..config import ConfigError, LPNConfig


def names() -> list[str]:
    """The names of the shipped configs, sorted."""
    return sorted(entry.name[: -len(".toml")] for entry in resources.files(__package__).iterdir()
                  if entry.name.endswith(".toml"))


def named(name: str) -> LPNConfig:
    """A shipped config by name."""
    known = names()
    if name not in known:
        raise ConfigError(f"no shipped config named {name!r} (shipped: {', '.join(known)})")
    text = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    try:
        return LPNConfig.from_dict(tomllib.loads(text))
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"shipped config {name}.toml: {exc}") from exc


def resolve(spec: str | Path) -> LPNConfig:
    """A shipped config's name, or the path of a .toml/.json config file."""
    path = Path(spec)
    looks_like_path = isinstance(spec, Path) or path.suffix != "" or len(path.parts) > 1
    if not looks_like_path:
        return named(str(spec))
    try:
        return LPNConfig.load(path)
    except ConfigError as exc:
        # Validation errors name only the field; the user also needs to know which file.
        if str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from exc
