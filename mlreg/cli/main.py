"""The root ``mlreg`` group and the one place CLI errors become a line and an exit code.

Commands load on first use from :data:`COMMANDS`, so ``mlreg --help`` and every command
import only what they need (the registry's database code, TensorFlow, Docker's client ...).
Each entry carries the command's one-line summary for the top-level help; a test keeps the
summaries equal to the commands' own.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from mlreg.errors import MlregError
from mlreg.version import __version__

#: name -> ("module:attribute", one-line summary shown by ``mlreg --help``), in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "register": (
        "mlreg.cli.registry:register",
        "Register the model at SOURCE as a new version of NAME.",
    ),
    "models": (
        "mlreg.cli.registry:models",
        "Registered models: list, show, rename, update, delete.",
    ),
    "versions": ("mlreg.cli.registry:versions", "Model versions: list, show, delete."),
    "transition": (
        "mlreg.cli.registry:transition",
        "Move VERSION of NAME into STAGE, like Production.",
    ),
    "alias": ("mlreg.cli.registry:alias", "Aliases (models:/name@alias): set, delete."),
    "history": (
        "mlreg.cli.registry:history",
        "Show NAME's stage transitions: from, to, when, who.",
    ),
    "download": ("mlreg.cli.registry:download", "Copy the model at URI into DST, digest checked."),
    "info": ("mlreg.cli.registry:info", "Show which registry and artifact store mlreg uses."),
    "db": ("mlreg.cli.registry:db", "The registry database: upgrade its schema."),
    "gc": ("mlreg.cli.registry:gc", "Remove failed versions and leftover copies."),
    "audit": ("mlreg.cli.teams:audit", "Show the audit trail: who wrote what, when, old -> new."),
    "webhooks": ("mlreg.cli.teams:webhooks", "Webhooks: signed registry events POSTed to URLs."),
    "experiments": ("mlreg.cli.tracking:experiments", "Experiments: list, create."),
    "runs": ("mlreg.cli.tracking:runs", "Tracked runs: list, show, delete, restore."),
    "artifacts": ("mlreg.cli.tracking:artifacts", "A run's artifacts: list, download."),
    "predict": ("mlreg.cli.predict:predict", "Score a CSV, JSON or Parquet file with a model."),
    "serve": (
        "mlreg.cli.serve:serve",
        "Serve a model (MLflow, TF Serving and V2 APIs).",
    ),
    "server": ("mlreg.cli.server:server", "Run the registry and tracking server a team shares."),
    "wheelhouse": (
        "mlreg.cli.build:wheelhouse_command",
        "Download every wheel a model's image installs.",
    ),
    "generate-dockerfile": (
        "mlreg.cli.build:generate_dockerfile",
        "Write a model's image build context into a directory.",
    ),
    "build-docker": (
        "mlreg.cli.build:build_docker",
        "Build a serving image for a model with Docker.",
    ),
    "inspect-image": (
        "mlreg.cli.build:inspect_image",
        "Print the model labels mlreg put on an image.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the command ``name`` from the module :data:`COMMANDS` names."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), attribute)


class MlregGroup(click.Group):
    """Loads commands lazily and turns every error into one line on stderr and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The summaries come from the table: listing them imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])

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
    """mlreg: a model registry and serving platform for TensorFlow models.

    Where it keeps things: MLREG_HOME (default ./.mlreg), or MLREG_TRACKING_URI (a database
    or an mlreg server); `mlreg info` shows which. Exit codes: see the README's table.

    \b
    Examples:
      mlreg info
      mlreg register ./mnist-cnn --name mnist
      mlreg serve -m models:/mnist/Production
    """
