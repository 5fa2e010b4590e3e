"""The root ``mlreg`` group and the one place CLI errors become a line and an exit code."""

from __future__ import annotations

import sys
from typing import Any

import click

from mlreg.cli.build import COMMANDS as BUILD_COMMANDS
from mlreg.cli.predict import COMMANDS as PREDICT_COMMANDS
from mlreg.cli.registry import COMMANDS as REGISTRY_COMMANDS
from mlreg.cli.tracking import COMMANDS as TRACKING_COMMANDS
from mlreg.errors import MlregError
from mlreg.version import __version__


class MlregGroup(click.Group):
    """A click group that turns every error into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlregError as e:
            click.echo(f"Error: {e.message}", err=True)
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except OSError as e:
            click.echo(f"Error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
            sys.exit(1)


@click.group(cls=MlregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlreg")
def main() -> None:
    """mlreg: a model registry and serving platform for TensorFlow models."""


for command in [*REGISTRY_COMMANDS, *TRACKING_COMMANDS, *BUILD_COMMANDS, *PREDICT_COMMANDS]:
    main.add_command(command)

from mlreg.cli.serve import serve  # noqa: E402

main.add_command(serve)
