"""The web UI's route table and what its handlers share: pages (GET) and form actions (POST).

Pages are declared on :data:`pages` like the API's routes on ``routes.api``: each with the
permission it needs, so the server's one permission check enforces a page or a form exactly as
it enforces the API, and :func:`mlreg.server.ui.access.allowed` shows a button only to users
the check would let through.

A form action checks its CSRF token first (Flask-WTF: a token signed with the server's secret
and bound to the browser's session cookie), then runs; a mistake the user can fix (a bad
alias, a stage a version cannot take) goes back to the page the form was on with the message,
after a redirect (303), so reloading never posts twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from mlreg.errors import InvalidInput, MlregError, PayloadTooLarge
from mlreg.server.api import NUL_MESSAGE, Api
from mlreg.server.permissions import Permission
from mlreg.store.pages import MAX_OFFSET

Handler = Callable[..., Response]
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
TAG = "ui"
BLUEPRINT = "ui"
#: Statuses of mistakes a user fixes on the same page (bad input, a state conflict).
FIXABLE = (400, 409)
#: The largest form body taken (the longest field, a description, is 5,000 characters).
FORM_BYTES = 1 << 20

#: The UI's routes take the browser's sign-in cookie (``mlreg.server.access.sessions``).
pages = Api("", lambda: current_app.config["MLREG_MAX_REQUEST_BYTES"], sessions=True)
csrf = CSRFProtect()


def page(rule: str, *, permission: Permission, summary: str) -> Callable[[Handler], Handler]:
    """Declare a page (GET)."""
    return pages.route("GET", rule, permission=permission, summary=summary, tag=TAG)


def action(rule: str, *, permission: Permission, summary: str) -> Callable[[Handler], Handler]:
    """Declare a form action (POST): CSRF-checked; fixable mistakes go back with a message."""

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def checked(**kwargs: Any) -> Response:
            length = request.content_length
            if length is not None and length > FORM_BYTES:
                raise PayloadTooLarge.body(length, FORM_BYTES, "the web UI's form limit")
            request.max_content_length = FORM_BYTES  # a body without a length stops there too
            try:
                csrf.protect()
            except CSRFError as e:
                raise InvalidInput(
                    f"this form cannot be accepted: {e.description} Reload the page and send "
                    "it again (forms are signed for the browser session that loaded them)."
                ) from None
            try:
                return handler(**kwargs)
            except MlregError as e:
                if e.status_code not in FIXABLE:
                    raise
                flash(e.message, "error")
                return back()

        pages.route("POST", rule, permission=permission, summary=summary, tag=TAG)(checked)
        return handler

    return register


def endpoint(handler_name: str, method: str = "GET") -> str:
    return f"{BLUEPRINT}.{method.lower()}_{handler_name}"


def link(handler_name: str, **values: Any) -> str:
    """The URL of a page by its handler's name: ``link("model", name="mnist")``."""
    return url_for(endpoint(handler_name), **values)


def render(template: str, status: int = 200, **context: Any) -> Response:
    response = current_app.make_response((render_template(template, **context), status))
    return response


def field(name: str, *, required: bool = True, default: str = "") -> str:
    """A form field, stripped; InvalidInput naming it when it is required and empty."""
    value = (request.form.get(name) or "").strip()
    if "\x00" in value:  # PostgreSQL's text columns refuse it (the API refuses it too)
        raise InvalidInput(f"field '{name}': {NUL_MESSAGE}")
    if required and not value:
        raise InvalidInput(f"field '{name}': expected a value, got nothing")
    return value or default


def checkbox(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "true", "yes")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this server (never another site: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 for c in target):
        return None
    return target


def return_to(default: str) -> str:
    """The page the form came from (its ``next`` field), else ``default``."""
    return safe_next(request.form.get("next")) or default


def back() -> Response:
    """Redirect (303) to the page the form came from (its ``next`` field, else the home)."""
    return redirect(return_to(link("home")), code=303)


def done(message: str, target: str) -> Response:
    """Say what an action did, on the page it leads to (303: a reload does not post again)."""
    flash(message, "ok")
    return redirect(target, code=303)


def start_param(name: str = "start") -> int:
    """The offset of a page (``?start=100``); InvalidInput naming the parameter."""
    raw = request.args.get(name, "")
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > MAX_OFFSET:
        raise InvalidInput(f"query parameter '{name}': expected 0-{MAX_OFFSET}, got {raw!r}")
    return int(raw)
