"""Signing in to the web UI with a user name and password, and signing out.

The form posts the password once; what the browser keeps is a signed session cookie
(:mod:`mlreg.server.access.sessions`). Wrong passwords count towards the same limits as the
API's (per user name and per address, across workers), and the form says how long to wait.
"""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, request

from mlreg.errors import InvalidInput, RateLimited, Unauthenticated
from mlreg.server import permissions as perm
from mlreg.server.access import sessions
from mlreg.server.access.entities import Caller
from mlreg.server.routes import caller, services
from mlreg.server.ui.pages import action, done, field, link, page, render, return_to, safe_next

#: Longest password the form takes (argon2 hashes any length; this bounds the work).
MAX_PASSWORD = 1024


def auth_on() -> bool:
    return bool(current_app.config["MLREG_AUTH"])


def signed_in() -> Caller | None:
    """Who the page's header names: the request's caller, or on a page anyone may open (the
    sign-in form, an error page), the browser's session (looked up only when a page shows)."""
    found = caller()
    if found is None and auth_on():
        found = sessions.current(services().access)
    return found


@page(
    "/login",
    permission=perm.PUBLIC,
    summary="Sign in with a user name and password (on a server started with --auth); "
    "without it, says there is nothing to sign in to.",
)
def login() -> Response:
    return render("login.html", section=None, next=safe_next(request.args.get("next")) or "/")


@action(
    "/login",
    permission=perm.PUBLIC,
    summary="Check the user name and password and start the browser's session; back to the "
    "page that asked (next), or to the form with what went wrong.",
)
def sign_in() -> Response:
    if not auth_on():
        raise InvalidInput("this server runs without authentication: nothing to sign in to")
    target = return_to("/")
    name = field("username")
    password = request.form.get("password") or ""  # as typed: spaces are part of it
    try:
        if not password:
            raise Unauthenticated("enter your password")
        if len(password) > MAX_PASSWORD:
            raise Unauthenticated(f"a password is at most {MAX_PASSWORD} characters")
        user, stamp = services().access.start_session(name, password, request.remote_addr)
        sessions.begin(user, stamp)
    except (Unauthenticated, RateLimited) as e:
        flash(e.message, "error")
        return redirect(link("login", next=target), code=303)
    return done(f"Signed in as {user.name}.", target)


@action(
    "/logout",
    permission=perm.PUBLIC,
    summary="End the browser's session (the sign-in cookie is cleared).",
)
def sign_out() -> Response:
    sessions.end()
    return done("Signed out.", link("login"))
