"""Mount the web UI on the server's Flask app: templates, the page table, CSRF, error pages,
and the headers every page carries."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

import jinja2
from flask import Flask, Response, flash, redirect, request, url_for

from mlreg.server.access.sessions import SessionCookies
from mlreg.server.routes import acting_user
from mlreg.server.settings import ServerSettings
from mlreg.server.ui import (  # noqa: F401  (declare the pages)
    experiments,
    home,
    models,
    runs,
    signin,
    versions,
)
from mlreg.server.ui import format as fmt
from mlreg.server.ui.access import allowed, check_request
from mlreg.server.ui.pages import (
    BLUEPRINT,
    TEMPLATES,
    csrf,
    link,
    pages,
    render,
    return_to,
)
from mlreg.version import __version__

#: Scripts and styles only from this server (no inline script, no CDN); images also as data:
#: URIs; nothing may frame a page (clickjacking of its buttons); forms post only here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SESSION_COOKIE = "mlreg_session"

logger = logging.getLogger(__name__)


def install(app: Flask, settings: ServerSettings) -> None:
    """Add the UI's pages to ``app`` (call before the app's HTTP plumbing is installed)."""
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_urlsafe(32),
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        MLREG_AUTH=settings.auth,
        # Only the UI's forms are checked (the JSON API takes no cookies, so no CSRF).
        WTF_CSRF_CHECK_DEFAULT=False,
        # A form stays good as long as the browser session that loaded it.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
    )
    app.session_interface = SessionCookies()
    csrf.init_app(app)
    app.jinja_loader = jinja2.FileSystemLoader(TEMPLATES)  # type: ignore[assignment]
    env = app.jinja_env
    env.autoescape = True  # every template, whatever its name: a <script> name is text
    env.undefined = jinja2.StrictUndefined
    env.trim_blocks = env.lstrip_blocks = True
    env.globals.update(
        allowed=allowed,
        link=link,
        static=lambda path: link("static", filename=path, v=__version__),
        version=__version__,
        acting_user=acting_user,
        signed_in=signin.signed_in,
        auth_on=signin.auth_on,
        here=here,
        page_url=page_url,
    )
    env.filters.update(
        when=fmt.when,
        iso=fmt.iso,
        ago=fmt.ago,
        size=fmt.size,
        number=fmt.number,
        duration=fmt.duration,
    )
    pages.mount(app, BLUEPRINT)
    # The same question the page's buttons were shown by, before a route (or a form's CSRF
    # check) runs, and after the blueprint's own checks (a NUL in the path is refused first);
    # the authentication work's check, for the whole app, has run before all of them.
    app.before_request_funcs.setdefault(BLUEPRINT, []).append(check_request)

    @app.after_request
    def _page_headers(response: Response) -> Response:
        if request.blueprint == BLUEPRINT and response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def here() -> str:
    """This page's path and query (where a form sends the user back to)."""
    return request.full_path.rstrip("?")


def page_url(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    args: dict[str, Any] = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [value]
    return url_for(request.endpoint or "ui.get_home", **(request.view_args or {}), **args)


def wants_page() -> bool:
    """Whether an error of this request should be a page: the UI's own routes, and a browser
    that lost its way outside the API."""
    if request.blueprint == BLUEPRINT:
        return not request.path.endswith(".json")  # the charts' data: errors stay JSON
    if request.endpoint is not None or request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def error_page(status: int, error_code: str, message: str) -> Response | None:
    """The error as a page for the UI's requests; None: the usual JSON body."""
    if not wants_page():
        return None
    if status == 401:
        return to_sign_in(message)
    try:
        return render(
            "error.html",
            status,
            code=status,
            error_code=error_code,
            message=message,
            section=None,
        )
    except Exception:  # the JSON body still says what went wrong
        logger.exception("the error page failed to render")
        return None


def to_sign_in(message: str) -> Response:
    """Send a browser that is not signed in (or no longer) to the sign-in form, which brings
    it back here afterwards; a form it posted was not sent, and it is told so."""
    if request.method == "GET":
        target = here()
    else:
        flash(f"{message}: the form was not sent; sign in and send it again.", "error")
        target = return_to(link("home"))
    return redirect(link("login", next=target), code=303)
