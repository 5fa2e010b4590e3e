"""Help a newcomer can read: every command's summary fits on its line of `mlreg --help`, every
option says what it does, every command shows examples."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from mlreg.cli import main
from mlreg.cli.main import COMMANDS, load_command

WIDTH = 80


def commands() -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand, by its full name."""
    for name in COMMANDS:
        command = load_command(name)
        yield name, command
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                yield f"{name} {sub_name}", sub


ALL = dict(commands())


def help_text(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def test_each_summary_fits_on_its_line_of_mlreg_help():
    lines = help_text().splitlines()
    for name, (_, summary) in COMMANDS.items():
        [line] = [line for line in lines if line.startswith(f"  {name} ")]
        assert line.endswith(f"  {summary}"), (name, line)
        assert len(line) <= WIDTH


@pytest.mark.parametrize("group", [n for n, c in ALL.items() if isinstance(c, click.Group)])
def test_each_group_lists_whole_summaries(group):
    lines = help_text(*group.split()).splitlines()
    for sub_name, sub in ALL[group].commands.items():
        summary = sub.get_short_help_str(limit=200)
        assert "..." not in summary and len(summary) <= 57, (sub_name, summary)
        [line] = [line for line in lines if line.startswith(f"  {sub_name} ")]
        assert line.endswith(f"  {summary}"), (sub_name, line)


@pytest.mark.parametrize("name", list(ALL))
def test_every_option_has_help_and_every_command_examples(name):
    command = ALL[name]
    missing = [
        p.opts[0]
        for p in command.params
        if isinstance(p, click.Option) and not p.help and p.name not in ("help", "version")
    ]
    assert missing == [], f"mlreg {name}: options without help: {missing}"
    examples = re.search(r"^ +Examples:\n +mlreg ", help_text(*name.split()), re.MULTILINE)
    assert examples, f"mlreg {name} has no Examples section"
