"""What several commands share: the ``--json`` flag, ``KEY=VALUE`` options, and output."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from mlreg.errors import InvalidInput

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


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
