"""Browser sign-in: after the web UI's sign-in form, a signed session cookie names the user.

The cookie is Flask's (signed with the server's secret, ``MLREG_SECRET_KEY``; HttpOnly,
SameSite=Lax, Secure over HTTPS) and carries the user's name and a stamp of their stored
password hash (:meth:`AccessService.start_session`): each request looks the user up again, so
a deleted user, a new password or a lost admin flag takes effect on the next page. It is
accepted only by routes declared to take it (the web UI's, ``Api(sessions=True)``), whose
forms carry CSRF tokens; the JSON API never reads it, so a page of another site cannot use a
signed-in browser to call the API.
"""

from __future__ import annotations

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface

from mlreg.server.access.entities import Caller
from mlreg.server.access.service import AccessService

USER_KEY = "user"
STAMP_KEY = "stamp"


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over HTTPS (directly,
    or as the proxy says with ``--proxy-hops``)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def begin(caller: Caller, stamp: str) -> None:
    """Start a browser session for ``caller`` (a new one: whatever the cookie held before,
    CSRF token included, is dropped, so a session planted before sign-in is worthless)."""
    session.clear()
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME without a request
    session[USER_KEY] = caller.name
    session[STAMP_KEY] = stamp


def end() -> None:
    session.clear()


def current(access: AccessService) -> Caller | None:
    """The user this request's session cookie names, while it is still theirs."""
    name, stamp = session.get(USER_KEY), session.get(STAMP_KEY)
    if not isinstance(name, str) or not isinstance(stamp, str):
        return None
    caller = access.session_caller(name, stamp)
    if caller is None:
        session.clear()  # a stale cookie is dropped, not asked about on every page
    return caller
