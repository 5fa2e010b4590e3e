"""What the acting user may do, as the web UI asks it: one decision, :func:`can`.

Every action the UI offers (a button, a form) is shown only when :func:`allowed` says so, and
:func:`allowed` reads the permission the action's route declares and asks :func:`can` — so the
button and the check that guards its route come from one declaration, and a page never offers
what its form would be refused.

Without authentication the server lets everyone do everything, and so does :func:`can`. The
authentication work installs a :class:`Policy` with :func:`set_policy` (e.g. the signed-in
caller's grants, held in ``flask.g``), and every page follows it; the routes themselves are
enforced by the server's one permission check before any handler runs, whatever the UI shows.
"""

from __future__ import annotations

from typing import Protocol

from flask import Flask, current_app, request

from mlreg.server.api import ROUTES_KEY, Route
from mlreg.server.permissions import Level, Resource

POLICY_KEY = "mlreg.server.ui.policy"


class Policy(Protocol):
    def __call__(self, level: Level, resource: Resource, name: str | None) -> bool:
        """Whether the request's user holds ``level`` on the resource named ``name`` (a model
        name, an experiment id, a run id; None for server-wide levels)."""


def set_policy(app: Flask, policy: Policy | None) -> None:
    """Install who-may-do-what for ``app``'s pages (None: everyone may do everything)."""
    if policy is None:
        app.extensions.pop(POLICY_KEY, None)
    else:
        app.extensions[POLICY_KEY] = policy


def can(level: Level, resource: Resource = Resource.SERVER, name: str | None = None) -> bool:
    """Whether the acting user holds ``level`` on ``resource`` ``name``."""
    if level is Level.NONE:
        return True
    policy: Policy | None = current_app.extensions.get(POLICY_KEY)
    return True if policy is None else bool(policy(level, resource, name))


def declared(endpoint: str) -> Route:
    """The declaration of a mounted endpoint (``ui.post_transition``); KeyError if none."""
    return current_app.extensions[ROUTES_KEY][endpoint]


def allowed(endpoint: str, **view_args: object) -> bool:
    """Whether the acting user may use ``endpoint`` with these view arguments: the level the
    route declares, on the resource its declared argument names."""
    permission = declared(endpoint).permission
    name = None
    if permission.resource is not Resource.SERVER:
        if permission.arg is None or permission.arg not in view_args:
            raise KeyError(f"{endpoint} needs the view argument {permission.arg!r} to decide")
        name = str(view_args[permission.arg])
    return can(permission.level, permission.resource, name)


def current_path() -> str:
    """Where a form on this page sends the user back to (the page's path and query)."""
    return request.full_path.rstrip("?")
