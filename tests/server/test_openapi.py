"""The API document the server hands out: valid OpenAPI 3.1, and exactly the routes that exist."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from mlreg.server.app import create_app
from mlreg.server.permissions import Level
from mlreg.server.routes import API_PREFIX, api
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings

METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def document(server) -> dict:
    answer = server.http.get(server.url + API_PREFIX + "/openapi.json", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    return answer.json()


@pytest.fixture(scope="module")
def flask_rules(tmp_path_factory) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every Flask rule under /api/v1 of a freshly built app."""
    home = tmp_path_factory.mktemp("openapi-app")
    app = create_app(ServerSettings(store=StoreSettings.for_home(home)))
    try:
        return {
            (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith(API_PREFIX + "/")
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
    finally:
        app.extensions["mlreg.server"].close()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_every_route_is_documented_and_every_documented_route_exists(document, flask_rules):
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented - flask_rules == set(), "documented but not served"
    assert flask_rules - documented == set(), "served but not documented"
    assert len(documented) == len(api.routes)


def test_every_route_declares_a_permission(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            permission = operation["x-mlreg-permission"]
            assert permission["level"] in Level.__members__, (method, path)
            if permission["level"] != "NONE":
                assert operation["security"], (method, path)
    for route in api.routes:
        assert isinstance(route.permission.level, Level)


def test_path_parameters_match_the_path(document):
    for path, item in document["paths"].items():
        named = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == named, path


def test_errors_are_documented_with_their_shape(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error_code", "message"]
    for item in document["paths"].values():
        for operation in item.values():
            for status in ("400", "404", "413", "415", "503"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/Error"}
