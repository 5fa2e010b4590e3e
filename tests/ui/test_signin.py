"""Signing in to the web UI of a server with --auth: the form, the session cookie it leaves,
what ends a session, the limits on wrong passwords, and that the cookie opens only the pages
(never the JSON API)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from mlreg.store.journal import Actor
from tests.teams.conftest import basic
from tests.ui.conftest import SeededHome, Site

ADMIN = Actor("admin", "test")
PASSWORD = "rita's long password"
_FLASH = re.compile(r'<p class="flash (\w+)"[^>]*>([^<]*)</p>')


@contextmanager
def auth_site_with(seeded_home: SeededHome, **overrides) -> Iterator[Site]:
    """A site with --auth (and ``overrides``) on a fresh copy of the seeded data: rita (READ on
    everything, the default), ada (an admin) and bot (tokens only)."""
    sites = seeded_home.site(auth=True, **overrides)
    site = next(sites)
    access = site.app.extensions["mlreg.server"].access
    access.create_user(ADMIN, "rita", PASSWORD)
    access.create_user(ADMIN, "ada", "ada's long password", admin=True)
    access.create_user(ADMIN, "bot", None)
    try:
        yield site
    finally:
        sites.close()


@pytest.fixture
def auth_site(seeded_home) -> Iterator[Site]:
    with auth_site_with(seeded_home) as site:
        yield site


def flashes(html: str) -> list[tuple[str, str]]:
    return [(category, unescape(text)) for category, text in _FLASH.findall(html)]


def flashes_after(site: Site, response) -> list[tuple[str, str]]:
    """The messages on the page a redirect leads to."""
    return flashes(site.client.get(location(response)).get_data(as_text=True))


def sign_in(site: Site, user: str, password: str, next_page: str = "/models"):
    """Post the sign-in form as a browser would: its token from the form's page."""
    return site.client.post(
        "/login",
        data={
            "csrf_token": site.token(f"/login?next={next_page}"),
            "next": next_page,
            "username": user,
            "password": password,
        },
    )


def location(response) -> str:
    parts = urlsplit(response.headers["Location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_a_page_sends_a_browser_that_is_not_signed_in_to_the_form_and_the_api_still_says_401(
    auth_site,
):
    response = auth_site.client.get("/models/cnn?x=1", headers={"Accept": "text/html"})
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query) == {"next": ["/models/cnn?x=1"]}
    assert "WWW-Authenticate" not in response.headers  # no browser password dialog
    status, html = auth_site.get("/login?next=/models/cnn")
    assert status == 200
    assert 'name="password" type="password"' in html and 'autocomplete="current-password"' in html
    api = auth_site.client.get("/api/v1/models")
    assert api.status_code == 401
    assert api.headers.getlist("WWW-Authenticate")[0].startswith('Basic realm="mlreg"')


def test_signing_in_returns_to_the_page_that_asked_and_shows_who_is_signed_in(auth_site):
    response = sign_in(auth_site, "rita", PASSWORD, "/models/cnn")
    assert response.status_code == 303
    assert location(response) == "/models/cnn"
    cookie = response.headers["Set-Cookie"]
    assert "mlreg_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie and "Secure" not in cookie  # plain HTTP here
    status, html = auth_site.get("/models/cnn")
    assert status == 200
    assert ("ok", "Signed in as rita.") in flashes(html)
    assert '<span class="who"' in html and ">rita</span>" in html
    assert 'action="/logout"' in html
    # A reader: no action on the model page but signing out.
    assert re.findall(r'<form method="post" action="([^"]+)"', html) == ["/logout"]
    # The sign-in page (open to anyone) knows the browser is signed in too.
    status, html = auth_site.get("/login")
    assert "You are signed in as <strong>rita</strong>" in html and 'action="/logout"' in html


def test_the_cookie_opens_pages_but_never_the_json_api(auth_site):
    sign_in(auth_site, "rita", PASSWORD)
    assert auth_site.get("/models")[0] == 200
    api = auth_site.client.get("/api/v1/models")
    assert api.status_code == 401
    assert api.get_json()["error_code"] == "UNAUTHENTICATED"
    # The charts' JSON is a page's data: the cookie opens it (and without it, a JSON 401).
    s = auth_site.seeded
    data_url = f"/experiments/{s.experiment_id}/compare/metrics.json?run={s.runs[0]}&key=loss"
    data = auth_site.client.get(data_url)
    assert data.status_code == 200, data.get_data(as_text=True)
    assert len(data.get_json()["metrics"]["loss"]) == 1
    stranger = auth_site.app.test_client().get(data_url)
    assert stranger.status_code == 401 and stranger.get_json()["error_code"] == "UNAUTHENTICATED"


def test_a_next_page_on_another_site_is_ignored(auth_site):
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = sign_in(auth_site, "rita", PASSWORD, evil)
        assert location(response) == "/", evil


def test_a_wrong_password_says_so_and_signs_nobody_in(auth_site):
    response = sign_in(auth_site, "rita", "not it", "/models")
    assert response.status_code == 303
    assert location(response) == "/login?next=/models"
    assert ("error", "wrong user name or password") in flashes_after(auth_site, response)
    assert auth_site.client.get("/models").status_code == 303
    unknown = sign_in(auth_site, "nobody", PASSWORD)
    # The same words for a user nobody has:
    assert ("error", "wrong user name or password") in flashes_after(auth_site, unknown)


def test_a_form_without_its_csrf_token_signs_nobody_in(auth_site):
    response = auth_site.client.post(
        "/login", data={"username": "rita", "password": PASSWORD, "next": "/models"}
    )
    assert response.status_code == 400
    assert "this form cannot be accepted" in unescape(response.get_data(as_text=True))
    assert auth_site.client.get("/models").status_code == 303


def test_signing_in_starts_a_new_session(auth_site):
    """A session planted before sign-in (session fixation) is not the one signed in: the
    cookie's contents, the CSRF token among them, are replaced."""
    auth_site.get("/login")
    with auth_site.client.session_transaction() as before:
        planted = dict(before)
    assert "csrf_token" in planted
    sign_in(auth_site, "rita", PASSWORD)
    with auth_site.client.session_transaction() as after:
        assert after.get("user") == "rita"
        assert after.get("csrf_token") != planted["csrf_token"]


def test_signing_out_ends_the_session_and_needs_the_form_token(auth_site):
    sign_in(auth_site, "rita", PASSWORD)
    refused = auth_site.client.post("/logout", data={})  # another site's form, say
    assert refused.status_code == 400
    assert auth_site.get("/models")[0] == 200  # still signed in
    response = auth_site.post("/logout", {}, page="/models")
    assert response.status_code == 303 and location(response) == "/login"
    html = auth_site.client.get("/login").get_data(as_text=True)
    assert ("ok", "Signed out.") in flashes(html)
    assert auth_site.client.get("/models").status_code == 303


def test_a_new_password_or_a_deleted_user_ends_their_sessions(auth_site):
    access = auth_site.app.extensions["mlreg.server"].access
    sign_in(auth_site, "rita", PASSWORD)
    access.set_password(ADMIN, "rita", "a brand new password")
    assert auth_site.client.get("/models").status_code == 303
    sign_in(auth_site, "rita", "a brand new password")
    assert auth_site.get("/models")[0] == 200
    access.delete_user(ADMIN, "rita")
    access.create_user(ADMIN, "rita", "a brand new password")  # same name and password
    assert auth_site.client.get("/models").status_code == 303


def test_admin_rights_follow_the_user_not_the_cookie(auth_site):
    access = auth_site.app.extensions["mlreg.server"].access
    sign_in(auth_site, "ada", "ada's long password")
    assert 'action="/models/cnn/delete"' in auth_site.get("/models/cnn")[1]
    access.set_admin(ADMIN, "rita", True)  # someone else stays admin
    access.set_admin(ADMIN, "ada", False)
    assert 'action="/models/cnn/delete"' not in auth_site.get("/models/cnn")[1]


def test_a_token_only_user_cannot_sign_in_and_is_not_told_they_exist(auth_site):
    response = sign_in(auth_site, "bot", "anything at all")
    assert ("error", "wrong user name or password") in flashes_after(auth_site, response)


def test_wrong_passwords_past_the_limit_lock_the_form_too(seeded_home):
    with auth_site_with(seeded_home, login_max_failures=3) as site:
        for _ in range(3):
            sign_in(site, "rita", "wrong")
        response = sign_in(site, "rita", PASSWORD)  # right, but locked out
        (category, text), *_ = flashes_after(site, response)
        assert category == "error"
        assert re.fullmatch(r"too many failed sign-ins for user 'rita'; try again in \d+ s", text)
        assert site.client.get("/models").status_code == 303
        # The API's Basic sign-in counts against the same limit.
        assert site.client.get("/api/v1/models", headers=basic("rita", PASSWORD)).status_code == 429


def test_a_form_posted_after_the_session_ended_is_not_sent_and_says_so(auth_site):
    sign_in(auth_site, "ada", "ada's long password")
    token = auth_site.token("/models/cnn")
    auth_site.client.post("/logout", data={"csrf_token": token})
    services = auth_site.app.extensions["mlreg.server"]
    before = services.registry.get_model_version("cnn", 1).stage
    response = auth_site.client.post(
        "/models/cnn/transition",
        data={"csrf_token": token, "next": "/models/cnn", "version": "1", "stage": "Staging"},
    )
    assert response.status_code == 303
    assert location(response) == "/login?next=/models/cnn"
    messages = flashes_after(auth_site, response)
    assert any("the form was not sent" in text for _, text in messages)
    assert services.registry.get_model_version("cnn", 1).stage == before


@pytest.mark.slow  # waits for a session to expire
def test_a_session_expires_after_its_lifetime_without_a_page(seeded_home):
    with auth_site_with(seeded_home, session_hours=1 / 3600) as site:  # one second
        sign_in(site, "rita", PASSWORD)
        assert site.get("/models")[0] == 200
        time.sleep(2.2)
        assert site.client.get("/models").status_code == 303


def test_over_https_the_cookie_is_secure(auth_site):
    client = auth_site.app.test_client()
    page = client.get("/login", base_url="https://localhost")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    response = client.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
        data={"csrf_token": token.group(1), "username": "rita", "password": PASSWORD},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "Secure" in response.headers["Set-Cookie"]


def test_without_auth_there_is_nothing_to_sign_in_to(site):
    status, html = site.get("/login")
    assert status == 200 and "runs without authentication" in html
    assert 'name="password"' not in html
    response = site.post("/login", {"username": "x", "password": "y"}, page="/models/cnn")
    assert any("nothing to sign in to" in text for _, text in flashes_after(site, response))
