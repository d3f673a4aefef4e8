"""How a command reports a user's mistake: one `error: ...` line, exit code 2, no traceback."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click


class UserError(click.ClickException):
    """A user-facing failure: printed as `error: ...`, exit code 2."""
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def user_errors(command: Callable) -> Callable:
    """Turn the library's validation errors (all ValueErrors) into UserError."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    return wrapper
