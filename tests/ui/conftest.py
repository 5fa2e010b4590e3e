from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlreg.server.app import create_app
from mlreg.server.settings import ServerSettings
from mlreg.store.settings import StoreSettings
from tests.ui.data import Seeded, seed

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    app: Flask
    client: FlaskClient
    seeded: Seeded

    def get(self, path: str, **kwargs) -> tuple[int, str]:
        response = self.client.get(path, headers={"Accept": "text/html"}, **kwargs)
        return response.status_code, response.get_data(as_text=True)

    def token(self, path: str) -> str:
        """The CSRF token of a form on ``path`` (as a browser would find it)."""
        status, html = self.get(path)
        assert status == 200, html
        match = _TOKEN.search(html)
        assert match, f"no form on {path}"
        return match.group(1)

    def post(self, path: str, data: dict, *, page: str, follow: bool = False):
        """Post a form found on ``page`` (its CSRF token and ``next`` included)."""
        form = {"csrf_token": self.token(page), "next": page, **data}
        return self.client.post(path, data=form, follow_redirects=follow)


def make_site(tmp: Path, **overrides) -> Iterator[Site]:
    """The seeded data behind the real app (``overrides``: more server settings)."""
    settings = StoreSettings.for_home(tmp / "home", "alice")
    seeded = seed(settings, tmp)
    app = create_app(
        ServerSettings(store=settings, secret_key="test-secret-key-0123456789", **overrides)
    )
    app.testing = True
    yield Site(app, app.test_client(), seeded)
    app.extensions["mlreg.server"].close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    """A server with seeded data for tests that only look (shared by the module)."""
    yield from make_site(tmp_path_factory.mktemp("ui"))


@pytest.fixture
def fresh(tmp_path) -> Iterator[Site]:
    """A server with seeded data of its own, for tests that change something."""
    yield from make_site(tmp_path)
