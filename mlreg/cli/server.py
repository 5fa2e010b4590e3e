"""``mlreg server``: run the registry and tracking server a team shares (gunicorn, foreground)."""

from __future__ import annotations

import os

import click

from mlreg.cli import teams
from mlreg.server.access.service import AccessService
from mlreg.server.access.store import AccessStore
from mlreg.server.runner import run
from mlreg.server.settings import LOG_FORMATS, LOG_LEVELS, PERMISSIONS, ServerSettings
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
@click.option(
    "--auth",
    is_flag=True,
    default=None,
    help="Require users and tokens ($MLREG_AUTH); the first admin comes from "
    "$MLREG_ADMIN_USER (admin) and $MLREG_ADMIN_PASSWORD.",
)
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    default=None,
    help="Listen beyond loopback without --auth (a trusted network only).",
)
@click.option(
    "--allowed-hosts",
    default=None,
    help="Host names the server answers to besides addresses and localhost, comma-separated "
    "(*.example.com patterns; * any).",
)
@click.option(
    "--cors-origins",
    default=None,
    help="Origins whose browser scripts may call the API, comma-separated (* any).",
)
@click.option(
    "--default-permission",
    type=click.Choice(PERMISSIONS, case_sensitive=False),
    default=None,
    help="What everyone gets on a new model or experiment (default READ; its creator gets MANAGE).",
)
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
      MLREG_ADMIN_PASSWORD=… mlreg server --auth --host 0.0.0.0 --allowed-hosts mlreg.internal
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = ServerSettings.from_env(os.environ, **flags)
    check_bind(settings.host, settings.port)
    # Open the database once here, so a wrong URI or an old schema is one line and an exit
    # code, not a worker crash; each worker opens its own after the fork.
    db = open_database(settings.store.uri)
    try:
        where = describe(db.engine)
        if settings.auth:
            access = AccessService(AccessStore(db))
            made = access.bootstrap_admin(settings.admin_user, settings.admin_password)
            if made is not None:
                click.echo(f"Created the first admin, {made.name!r}", err=True)
            elif not access.store.count_admins():
                click.echo(
                    "No admin yet: set MLREG_ADMIN_PASSWORD, or run `mlreg server users create "
                    "NAME --admin` against the database",
                    err=True,
                )
    finally:
        db.close()
    mode = "users and tokens" if settings.auth else "no authentication"
    click.echo(
        f"mlreg server on http://{settings.bind} (database {where}, artifacts "
        f"{settings.store.artifact_root}; {settings.workers} worker(s) x {settings.threads} "
        f"threads; {mode})",
        err=True,
    )
    click.echo(f"Open http://{settings.bind}/ in a browser for the web UI.", err=True)
    run(settings)


for command in teams.SERVER_COMMANDS:
    server.add_command(command)
