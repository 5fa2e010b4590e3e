"""Team commands: ``mlreg server users|tokens|groups|grant|revoke|grants``, ``mlreg audit`` and
``mlreg webhooks``. Each works on the database (``MLREG_TRACKING_URI`` a database URI: how the
first admin is made) or through a server as the signed-in user (an ``http(s)://`` URI)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from mlreg.cli.options import emit, json_option, paging
from mlreg.cli.output import listing, table
from mlreg.errors import InvalidInput
from mlreg.server.access.entities import Grant, Token
from mlreg.server.admin import TeamAdmin, open_admin
from mlreg.server.audit import AuditEvent, AuditQuery
from mlreg.server.permissions import Level
from mlreg.server.webhooks.store import Delivery, Webhook
from mlreg.store.journal import EVENTS
from mlreg.store.pages import offset_of
from mlreg.store.pages import page_token as token_for
from mlreg.store.validation import parse_timestamp


@contextmanager
def _admin() -> Iterator[TeamAdmin]:
    admin = open_admin()
    try:
        yield admin
    finally:
        admin.close()


def _when(value: object) -> str:
    text = "" if value is None else str(value.isoformat() if hasattr(value, "isoformat") else value)
    return text[:19].replace("T", " ")


def _read_password(from_stdin: bool, confirm: bool = True) -> str:
    """From the first line of stdin, or asked for (never from an argument: those end up in
    shell histories and process lists)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInput("--password-stdin: stdin held no password")
        return line
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password on: pipe it with --password-stdin")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


# --- users -----------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Users who sign in to the server.

    \b
    Examples:
      mlreg server users create alice
      mlreg server users list
    """


@users.command("list")
@json_option
def users_list(as_json: bool) -> None:
    """List users, their groups and whether they are admins.

    \b
    Examples:
      mlreg server users list
      mlreg server users list --json
    """
    with _admin() as admin:
        items = admin.list_users()
    listing(
        as_json,
        [u.to_dict() for u in items],
        None,
        lambda: table(
            ["NAME", "ADMIN", "PASSWORD", "GROUPS", "CREATED"],
            [
                [
                    u.name,
                    "yes" if u.is_admin else "",
                    "yes" if u.has_password else "token only",
                    ",".join(u.groups),
                    _when(u.created_at),
                ]
                for u in items
            ],
        ),
        "No users yet",
    )


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="An admin: every permission, users and groups.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--no-password", is_flag=True, help="No password: the user signs in with tokens.")
@json_option
def users_create(
    name: str, admin: bool, password_stdin: bool, no_password: bool, as_json: bool
) -> None:
    """Create user NAME.

    Asks for the password unless --password-stdin or --no-password.

    \b
    Examples:
      mlreg server users create alice
      printf '%s\\n' "$PASSWORD" | mlreg server users create ci --password-stdin
      mlreg server users create admin --admin --password-stdin < admin-password.txt
      mlreg server users create robot --no-password --json
    """
    password = None if no_password else _read_password(password_stdin)
    with _admin() as team:
        user = team.create_user(name, password, admin)
    emit(as_json, user.to_dict(), lambda: f"Created {'admin' if admin else 'user'} {user.name}")


@users.command("delete")
@click.argument("name")
def users_delete(name: str) -> None:
    """Delete user NAME with their tokens and grants.

    \b
    Examples:
      mlreg server users delete alice
    """
    with _admin() as admin:
        admin.delete_user(name)
    click.echo(f"Deleted user {name}")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Set user NAME's password (yours; anyone's as an admin).

    \b
    Examples:
      mlreg server users set-password alice
      mlreg server users set-password ci --password-stdin < ci-password.txt
    """
    password = _read_password(password_stdin)
    with _admin() as admin:
        admin.set_password(name, password)
    click.echo(f"Password of {name} set")


# --- tokens ----------------------------------------------------------------------------------


def _token_rows(items: list[Token]) -> str:
    return table(
        ["ID", "USER", "NAME", "TOKEN", "STATE", "EXPIRES", "LAST USED"],
        [
            [
                t.id,
                t.user,
                t.name,
                t.prefix + "…",
                t.state,
                _when(t.expires_at) or "never",
                _when(t.last_used_at) or "-",
            ]
            for t in items
        ],
    )


def _user_or_me(admin: TeamAdmin, user: str | None) -> str:
    return user if user is not None else admin.whoami().name


@click.group()
def tokens() -> None:
    """API tokens (Authorization: Bearer; MLREG_TRACKING_TOKEN).

    \b
    Examples:
      mlreg server tokens create -n laptop
      mlreg server tokens list
    """


@tokens.command("create")
@click.option("--name", "-n", required=True, help="What the token is for, e.g. ci.")
@click.option("--user", default=None, help="Whose token (default: yours).")
@click.option("--days", type=float, default=None, help="Lifetime in days (default: 90).")
@click.option("--never-expires", is_flag=True, help="A token without expiry.")
@json_option
def tokens_create(
    name: str, user: str | None, days: float | None, never_expires: bool, as_json: bool
) -> None:
    """Create a token; it is printed this once.

    Only its digest is kept: a lost token is revoked and replaced.

    \b
    Examples:
      mlreg server tokens create -n laptop
      mlreg server tokens create -n ci --user ci --days 30 --json
    """
    with _admin() as admin:
        token, secret = admin.create_token(_user_or_me(admin, user), name, days, never_expires)
    expiry = _when(token.expires_at) or "never"
    emit(
        as_json,
        {"token": token.to_dict(), "secret": secret},
        lambda: (
            f"{secret}\n(token {token.id} of {token.user}, expires {expiry}; it is not shown again)"
        ),
    )


@tokens.command("list")
@click.option("--user", default=None, help="Whose tokens (default: yours).")
@json_option
def tokens_list(user: str | None, as_json: bool) -> None:
    """List tokens: name, prefix, state, expiry, last use.

    \b
    Examples:
      mlreg server tokens list
      mlreg server tokens list --user ci --json
    """
    with _admin() as admin:
        who = _user_or_me(admin, user)
        items = admin.list_tokens(who)
    listing(
        as_json,
        [t.to_dict() for t in items],
        None,
        lambda: _token_rows(items),
        f"No tokens of {who}",
    )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@click.option("--user", default=None, help="Whose token (default: yours).")
@json_option
def tokens_revoke(token_id: int, user: str | None, as_json: bool) -> None:
    """Revoke token TOKEN_ID: it stops working at once.

    \b
    Examples:
      mlreg server tokens revoke 3
      mlreg server tokens revoke 7 --user ci
    """
    with _admin() as admin:
        token = admin.revoke_token(_user_or_me(admin, user), token_id)
    emit(
        as_json, token.to_dict(), lambda: f"Revoked token {token.id} ({token.name}) of {token.user}"
    )


# --- groups ----------------------------------------------------------------------------------


@click.group()
def groups() -> None:
    """Groups (teams): grant once to a group, not per member.

    \b
    Examples:
      mlreg server groups create vision
      mlreg server groups add vision alice bob
    """


@groups.command("list")
@json_option
def groups_list(as_json: bool) -> None:
    """List groups and their members.

    \b
    Examples:
      mlreg server groups list
      mlreg server groups list --json
    """
    with _admin() as admin:
        items = admin.list_groups()
    listing(
        as_json,
        [g.to_dict() for g in items],
        None,
        lambda: table(["GROUP", "MEMBERS"], [[g.name, ", ".join(g.members)] for g in items]),
        "No groups yet",
    )


@groups.command("create")
@click.argument("name")
@json_option
def groups_create(name: str, as_json: bool) -> None:
    """Create group NAME.

    \b
    Examples:
      mlreg server groups create vision
    """
    with _admin() as admin:
        group = admin.create_group(name)
    emit(as_json, group.to_dict(), lambda: f"Created group {group.name}")


@groups.command("delete")
@click.argument("name")
def groups_delete(name: str) -> None:
    """Delete group NAME and its grants (its members stay).

    \b
    Examples:
      mlreg server groups delete vision
    """
    with _admin() as admin:
        admin.delete_group(name)
    click.echo(f"Deleted group {name}")


@groups.command("add")
@click.argument("group")
@click.argument("user_names", metavar="USER...", nargs=-1, required=True)
@json_option
def groups_add(group: str, user_names: tuple[str, ...], as_json: bool) -> None:
    """Add users to GROUP.

    \b
    Examples:
      mlreg server groups add vision alice bob
    """
    with _admin() as admin:
        for name in user_names:
            result = admin.set_member(group, name, True)
    emit(as_json, result.to_dict(), lambda: f"{group}: {', '.join(result.members)}")


@groups.command("remove")
@click.argument("group")
@click.argument("user_names", metavar="USER...", nargs=-1, required=True)
@json_option
def groups_remove(group: str, user_names: tuple[str, ...], as_json: bool) -> None:
    """Remove users from GROUP.

    \b
    Examples:
      mlreg server groups remove vision bob
    """
    with _admin() as admin:
        for name in user_names:
            result = admin.set_member(group, name, False)
    emit(as_json, result.to_dict(), lambda: f"{group}: {', '.join(result.members) or '(empty)'}")


# --- grants ----------------------------------------------------------------------------------

PERMISSIONS = click.Choice(["READ", "EDIT", "PROMOTE", "MANAGE"], case_sensitive=False)
model_option = click.option("--model", default=None, help="A registered model, by name.")
experiment_option = click.option("--experiment", default=None, help="An experiment, by name.")


def _grant_listing(as_json: bool, items: list[Grant]) -> None:
    listing(
        as_json,
        [g.to_dict() for g in items],
        None,
        lambda: table(
            ["PRINCIPAL", "KIND", "PERMISSION"],
            [[g.principal, g.kind, g.level.name] for g in items],
        ),
        "No grants (admins, and everyone's default permission, still apply)",
    )


@click.command()
@click.argument("principal", metavar="USER_OR_GROUP")
@click.argument("permission", type=PERMISSIONS)
@model_option
@experiment_option
@json_option
def grant(
    principal: str, permission: str, model: str | None, experiment: str | None, as_json: bool
) -> None:
    """Give USER_OR_GROUP a PERMISSION on a model or experiment.

    Prints who holds what on it afterwards.

    \b
    Examples:
      mlreg server grant ci PROMOTE --model mnist
      mlreg server grant vision EDIT --experiment mnist-tuning
    """
    with _admin() as admin:
        items = admin.grant(principal, Level[permission.upper()], model, experiment)
    _grant_listing(as_json, items)


@click.command()
@click.argument("principal", metavar="USER_OR_GROUP")
@click.argument("permission", required=False, type=PERMISSIONS)
@model_option
@experiment_option
@json_option
def revoke(
    principal: str,
    permission: str | None,
    model: str | None,
    experiment: str | None,
    as_json: bool,
) -> None:
    """Take USER_OR_GROUP's permission on a model away.

    Or on an experiment, with --experiment. With PERMISSION, only if that is what they
    hold (a script's check that it takes away what it means to). Prints who holds what
    on it afterwards.

    \b
    Examples:
      mlreg server revoke bob --model mnist
      mlreg server revoke ci-bot PROMOTE --model mnist
    """
    with _admin() as admin:
        if permission is not None:
            held = {g.principal: g.level for g in admin.grants(model, experiment)}
            level = held.get(principal)
            if level is None or level.name != permission.upper():
                what = f"model {model!r}" if model is not None else f"experiment {experiment!r}"
                has = level.name if level is not None else "no grant"
                raise InvalidInput(
                    f"{principal} holds {has} on {what}, not {permission.upper()}; "
                    "nothing was revoked"
                )
        items = admin.grant(principal, None, model, experiment)
    _grant_listing(as_json, items)


@click.command()
@model_option
@experiment_option
@json_option
def grants(model: str | None, experiment: str | None, as_json: bool) -> None:
    """List who holds which permission on a model or experiment.

    \b
    Examples:
      mlreg server grants --model mnist
      mlreg server grants --experiment mnist-tuning --json
    """
    with _admin() as admin:
        items = admin.grants(model, experiment)
    _grant_listing(as_json, items)


SERVER_COMMANDS = [users, tokens, groups, grant, revoke, grants]


# --- audit -----------------------------------------------------------------------------------


def _change(event: AuditEvent) -> str:
    def text(value: object) -> str:
        return "-" if value is None else json.dumps(value, sort_keys=True, default=str)

    if event.old is None and event.new is None:
        return ""
    return f"{text(event.old)} -> {text(event.new)}"


@click.command()
@click.option("--model", default=None, help="Only this model's trail (through renames).")
@click.option("--experiment", default=None, help="Only this experiment's trail.")
@click.option("--user", default=None, help="Only this user's writes.")
@click.option("--action", default=None, help="e.g. model_version.stage_changed or 'model_*'.")
@click.option("--since", default=None, help="ISO 8601 time (UTC unless an offset is given).")
@click.option("--until", default=None, help="ISO 8601 time.")
@paging(100)
@json_option
def audit(
    model: str | None,
    experiment: str | None,
    user: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    max_results: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """Show the audit trail: who wrote what, when, old -> new.

    Newest first; each write with its user, address, and the old and new value.

    \b
    Examples:
      mlreg audit --model mnist
      mlreg audit --user ci --since 2026-06-01T00:00:00Z --json
      mlreg audit --action 'model_version.stage_changed'
    """
    query = AuditQuery(
        model=model,
        experiment=experiment,
        user=user,
        action=action,
        since=parse_timestamp(since, "--since") if since else None,
        until=parse_timestamp(until, "--until") if until else None,
    )
    with _admin() as admin:
        page = admin.audit(query, max_results, offset_of(page_token))
    items: list[AuditEvent] = page.items
    listing(
        as_json,
        [e.to_dict() for e in items],
        token_for(page.next_offset),
        lambda: table(
            ["WHEN", "USER", "FROM", "ACTION", "RESOURCE", "CHANGE"],
            [
                [
                    _when(e.timestamp),
                    e.user,
                    e.address or "-",
                    e.action,
                    e.resource + (f"/{e.version}" if e.version is not None else ""),
                    _change(e),
                ]
                for e in items
            ],
        ),
        "No audited writes match",
    )


# --- webhooks --------------------------------------------------------------------------------


def _webhook_rows(items: list[Webhook]) -> str:
    return table(
        ["ID", "URL", "MODEL", "EVENTS", "CREATED BY"],
        [
            [
                h.id,
                h.url,
                h.model or "(every model)",
                "all" if len(h.events) == len(EVENTS) else ",".join(h.events),
                h.created_by,
            ]
            for h in items
        ],
    )


def _delivery_rows(items: list[Delivery]) -> str:
    return table(
        ["ID", "EVENT", "STATE", "ATTEMPTS", "LAST ANSWER", "CREATED", "DELIVERED"],
        [
            [
                d.id,
                d.event,
                d.state,
                d.attempts,
                d.last_status if d.last_status is not None else (d.last_error or "-"),
                _when(d.created_at),
                _when(d.delivered_at) or "-",
            ]
            for d in items
        ],
    )


@click.group()
def webhooks() -> None:
    """Webhooks: signed registry events POSTed to URLs.

    \b
    Examples:
      mlreg webhooks create https://ci.example.com/hook --model mnist
      mlreg webhooks deliveries 1
    """


@webhooks.command("create")
@click.argument("url")
@click.option("--model", default=None, help="Only this model's events (default: every model's).")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENTS),
    help="An event to send (repeatable; default: all).",
)
@click.option("--description", "-d", default=None, help="What the webhook is for.")
@click.option("--secret-stdin", is_flag=True, help="Read the signing secret from stdin.")
@json_option
def webhooks_create(
    url: str,
    model: str | None,
    events: tuple[str, ...],
    description: str | None,
    secret_stdin: bool,
    as_json: bool,
) -> None:
    """Send registry events to URL, signed.

    Prints the signing secret this once.

    \b
    Examples:
      mlreg webhooks create https://ci.example.com/hook --model mnist
      mlreg webhooks create https://chat.example.com/hook --event model_version.stage_changed
      mlreg webhooks create https://ci.example.com/hook --secret-stdin < secret.txt --json
    """
    secret = sys.stdin.readline().strip() if secret_stdin else None
    with _admin() as admin:
        hook, secret = admin.create_webhook(url, list(events) or None, model, description, secret)
    emit(
        as_json,
        {"webhook": hook.to_dict(), "secret": secret},
        lambda: (
            f"Created webhook {hook.id} -> {hook.url}\nsigning secret: {secret}\n"
            "(it is not shown again)"
        ),
    )


@webhooks.command("list")
@json_option
def webhooks_list(as_json: bool) -> None:
    """List webhooks of the models you manage (admins: all).

    \b
    Examples:
      mlreg webhooks list
      mlreg webhooks list --json
    """
    with _admin() as admin:
        items = admin.list_webhooks()
    listing(
        as_json, [h.to_dict() for h in items], None, lambda: _webhook_rows(items), "No webhooks"
    )


@webhooks.command("delete")
@click.argument("webhook_id", type=int)
def webhooks_delete(webhook_id: int) -> None:
    """Delete webhook WEBHOOK_ID, dropping its pending events.

    \b
    Examples:
      mlreg webhooks delete 1
    """
    with _admin() as admin:
        admin.delete_webhook(webhook_id)
    click.echo(f"Deleted webhook {webhook_id}")


@webhooks.command("test")
@click.argument("webhook_id", type=int)
@json_option
def webhooks_test(webhook_id: int, as_json: bool) -> None:
    """Send webhook WEBHOOK_ID a 'ping' event.

    See how it went with `mlreg webhooks deliveries WEBHOOK_ID`.

    \b
    Examples:
      mlreg webhooks test 1
    """
    with _admin() as admin:
        delivery = admin.test_webhook(webhook_id)
    emit(
        as_json,
        delivery.to_dict(),
        lambda: f"Queued ping delivery {delivery.id} to webhook {webhook_id}",
    )


@webhooks.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option(
    "--max-results", default=50, show_default=True, help="How many of the latest to show."
)
@json_option
def webhooks_deliveries(webhook_id: int, max_results: int, as_json: bool) -> None:
    """Show WEBHOOK_ID's latest deliveries and their answers.

    Each delivery's state, attempts and the receiver's last answer.

    \b
    Examples:
      mlreg webhooks deliveries 1
      mlreg webhooks deliveries 1 --max-results 5 --json
    """
    with _admin() as admin:
        items = admin.deliveries(webhook_id, max_results)
    listing(
        as_json,
        [d.to_dict() for d in items],
        None,
        lambda: _delivery_rows(items),
        f"No deliveries to webhook {webhook_id} yet",
    )
