"""What several commands share: ``--json``, paging, ``KEY=VALUE`` options, and output."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from mlreg.config import env_var
from mlreg.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def paging(default: int = 100) -> Callable[[F], F]:
    """``--max-results`` and ``--page-token`` (the token a previous page printed)."""

    def decorate(fn: F) -> F:
        fn = click.option(
            "--page-token",
            default=None,
            help="Start at this page (the token the previous page printed).",
        )(fn)
        return click.option(
            "--max-results",
            default=default,
            show_default=True,
            help="Largest number of items on one page.",
        )(fn)

    return decorate


def show_env_vars(command: click.Command, settings: type) -> click.Command:
    """Append the ``MLREG_*`` variable behind each option to its help (the settings object
    reads the variables itself, so click must not: its errors would name the option)."""
    fields = {f.name for f in dataclasses.fields(settings)}
    for param in command.params:
        if isinstance(param, click.Option) and param.name in fields:
            var = f"[env: {env_var(param.name)}]"
            param.help = f"{param.help} {var}" if param.help else var
    return command


def key_values(pairs: Sequence[str], what: str = "tag") -> dict[str, str]:
    """Parse repeated ``KEY=VALUE`` options; InvalidInput names the one without '='."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"invalid {what} {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def emit(as_json: bool, data: Any, human: Callable[[], str]) -> None:
    """Print ``data`` as JSON for scripts, or what ``human()`` renders for people."""
    click.echo(json.dumps(data, indent=2, default=str) if as_json else human())
