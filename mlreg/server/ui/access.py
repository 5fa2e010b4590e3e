"""What the acting user may do, as the web UI asks it: one decision, :func:`can`.

``can(user, permission, resource)`` is a plain function of who asks, the permission a route
declares (``mlreg.server.permissions``) and the name of the resource it is asked on (a model
name, an experiment id, a run id; None for server-wide levels). Every action the UI offers (a
button, a form) is shown only when :func:`allowed` says so, and :func:`allowed` asks :func:`can`
with the permission the action's route declares — so the button and the check that guards its
route come from one declaration, and a page never offers what its form would be refused. The
UI's routes are checked with the same question before they run (:func:`check_request`), so a
form posted anyway by a user who was not offered it is refused (403) and changes nothing.

Without authentication there is no policy and :func:`can` allows everything. The
authentication work installs its answer with :func:`set_policy` (a function of the same three
arguments, e.g. the signed-in caller's grants), and every page follows it; its own permission
check guards the API and the pages alike before any handler runs.
"""

from __future__ import annotations

from typing import Protocol

from flask import Flask, current_app, request

from mlreg.errors import PermissionDenied
from mlreg.server.api import ROUTES_KEY, Route
from mlreg.server.permissions import Level, Permission, Resource
from mlreg.server.routes import acting_user

POLICY_KEY = "mlreg.server.ui.policy"


class Policy(Protocol):
    def __call__(self, user: str, permission: Permission, resource: str | None) -> bool:
        """Whether ``user`` holds ``permission`` on the resource named ``resource``."""


def set_policy(app: Flask, policy: Policy | None) -> None:
    """Install who-may-do-what for ``app``'s pages (None: everyone may do everything)."""
    if policy is None:
        app.extensions.pop(POLICY_KEY, None)
    else:
        app.extensions[POLICY_KEY] = policy


def can(user: str, permission: Permission, resource: str | None = None) -> bool:
    """Whether ``user`` holds ``permission`` on the resource named ``resource``."""
    if permission.level is Level.NONE:
        return True
    policy: Policy | None = current_app.extensions.get(POLICY_KEY)
    return True if policy is None else bool(policy(user, permission, resource))


def declared(endpoint: str) -> Route:
    """The declaration of a mounted endpoint (``ui.post_transition``); KeyError if none."""
    return current_app.extensions[ROUTES_KEY][endpoint]


def resource_of(endpoint: str, permission: Permission, view_args: dict[str, object]) -> str | None:
    """The name of the resource ``permission`` is asked on, from the route's view arguments."""
    if permission.resource is Resource.SERVER:
        return None
    if permission.arg is None or permission.arg not in view_args:
        raise KeyError(f"{endpoint} needs the view argument {permission.arg!r} to decide")
    return str(view_args[permission.arg])


def allowed(endpoint: str, **view_args: object) -> bool:
    """Whether the acting user may use ``endpoint`` with these view arguments: the permission
    the route declares, on the resource its declared argument names."""
    permission = declared(endpoint).permission
    return can(acting_user(), permission, resource_of(endpoint, permission, view_args))


def check_request() -> None:
    """PermissionDenied (403) unless the acting user may use the UI route of this request.

    Runs before the route (and before a form's CSRF check): a refused form changes nothing.
    """
    endpoint = request.endpoint
    if endpoint is None:
        return
    permission = declared(endpoint).permission
    resource = resource_of(endpoint, permission, dict(request.view_args or {}))
    user = acting_user()
    if not can(user, permission, resource):
        raise PermissionDenied(denied(user, permission, resource))


def denied(user: str, permission: Permission, resource: str | None) -> str:
    """Which permission ``user`` lacks, in words."""
    where = {
        Resource.SERVER: "this server",
        Resource.MODEL: f"model {resource!r}",
        Resource.EXPERIMENT: f"experiment {resource!r}",
        Resource.RUN: f"the experiment of run {resource!r}",
    }[permission.resource]
    return f"{user} needs {permission.level.name} on {where}"
