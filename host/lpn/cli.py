"""The `lpn` command: a thin dispatcher over subcommands that live in their own modules.

Subcommands are imported only when used, so `lpn --help` stays fast and a backend
whose optional tools are missing (a cross compiler, an emulator) does not break
the commands that do not need it.
"""
from __future__ import annotations

from importlib import import_module

import click

# name -> "module:attribute" of a click command or group.
COMMANDS = {
    "new": "lpn.commands.lifecycle:new",
    "train": "lpn.commands.lifecycle:train",
    "convert": "lpn.commands.lifecycle:convert",
    "info": "lpn.commands.lifecycle:info",
    "experiment": "lpn.commands.experiment:experiment",
    "continual": "lpn.commands.continual:continual",
    "demo": "lpn.commands.demo:demo",
    "bench": "lpn.commands.bench:bench",
    "codegen": "lpncodegen.cli:codegen",
    "mpy": "lpn.commands.mpy:mpy",
    "build": "lpn.commands.device:build",
    "flash": "lpn.commands.device:flash",
    "emulate": "lpn.commands.device:emulate",
    "push": "lpn.commands.device:push",
    "pull": "lpn.commands.device:pull",
    "stream": "lpn.commands.device:stream",
    "monitor": "lpn.commands.device:monitor",
    "save": "lpn.commands.persist:save",
    "load": "lpn.commands.persist:load",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported from "module:attribute" on demand."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            return getattr(import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lpn-edge")
def main() -> None:
    """Local Pheromone Network: train, convert, generate code for and talk to learning MCUs."""
