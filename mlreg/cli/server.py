"""``mlreg server``: run the registry and tracking server a team shares (gunicorn, foreground)."""

from __future__ import annotations

import os

import click

from mlreg.server.runner import run
from mlreg.server.settings import LOG_FORMATS, LOG_LEVELS, ServerSettings
from mlreg.store.database import describe, open_database
from mlreg.web.gunicorn import check_bind


@click.group("server", invoke_without_command=True)
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1; $MLREG_HOST).")
@click.option("-p", "--port", type=int, default=None, help="Port (default 5000; $MLREG_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 2).")
@click.option("--threads", type=int, default=None, help="Threads per worker (default 8).")
@click.option("--timeout", type=float, default=None, help="Seconds per request (default 600).")
@click.option(
    "--registry-uri",
    default=None,
    help="Database: sqlite:///path or postgresql+psycopg://… (default: $MLREG_TRACKING_URI, "
    "else SQLite under $MLREG_HOME).",
)
@click.option(
    "--artifact-root",
    default=None,
    help="Where files go: a directory or s3://bucket/prefix (default: $MLREG_ARTIFACT_ROOT, "
    "else $MLREG_HOME/artifacts).",
)
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default=None, help="text or json.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default=None, help="Default: info.")
@click.pass_context
def server(ctx: click.Context, **flags: object) -> None:
    """Run the registry and tracking server a team shares.

    Clients reach it with MLREG_TRACKING_URI=http://host:port.

    \b
    Examples:
      mlreg server                                   # ./.mlreg, http://127.0.0.1:5000
      mlreg server --registry-uri postgresql+psycopg://mlreg:pw@db/mlreg \\
                   --artifact-root s3://models/mlreg --host 0.0.0.0
      MLREG_TRACKING_URI=http://127.0.0.1:5000 mlreg models list   # a client
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = ServerSettings.from_env(os.environ, **flags)
    check_bind(settings.host, settings.port)
    # Open the database once here, so a wrong URI or an old schema is one line and an exit
    # code, not a worker crash; each worker opens its own after the fork.
    db = open_database(settings.store.uri)
    where = describe(db.engine)
    db.close()
    click.echo(
        f"mlreg server on http://{settings.bind} (database {where}, artifacts "
        f"{settings.store.artifact_root}; {settings.workers} worker(s) x {settings.threads} "
        "threads)",
        err=True,
    )
    run(settings)
