"""The API document the server hands out: valid OpenAPI 3.1, and exactly the routes that exist."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from openapi_spec_validator import OpenAPIV31SpecValidator

from mlreg.server.app import create_app
from mlreg.server.mlflow.table import PREFIXES, mlflow_api
from mlreg.server.permissions import Level
from mlreg.server.routes import API_PREFIX, api
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings

METHODS = {"get", "put", "post", "patch", "delete"}
#: MLflow's API is documented under its REST prefix (the /ajax-api alias serves the same routes).
MLFLOW_PREFIX = PREFIXES["mlflow_api"]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[Flask]:
    """A freshly built server app."""
    home = tmp_path_factory.mktemp("openapi-app")
    app = create_app(ServerSettings(store=StoreSettings.for_home(home)))
    yield app
    app.extensions["mlreg.server"].close()


@pytest.fixture(scope="module")
def document(app) -> dict:
    answer = app.test_client().get(API_PREFIX + "/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    return answer.get_json()


@pytest.fixture(scope="module")
def flask_rules(app) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every Flask rule under /api/v1 and of MLflow's declared routes
    under /api/2.0 of the app (not the 501 answers for the rest of MLflow's)."""
    return {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API_PREFIX + "/")
        or (rule.rule.startswith(MLFLOW_PREFIX + "/") and rule.endpoint.startswith("mlflow_api."))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


@pytest.mark.slow  # the validator takes seconds
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
    assert len(documented) == len(api.routes) + len(mlflow_api.routes)


def test_every_route_declares_a_permission(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            permission = operation["x-mlreg-permission"]
            assert permission["level"] in Level.__members__, (method, path)
            if permission["level"] != "NONE":
                assert operation["security"], (method, path)
    for route in [*api.routes, *mlflow_api.routes]:
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


def test_mlflow_routes_are_documented_as_mlflow_reads_them(document):
    """A GET takes its request message as query parameters, anything else as a JSON body;
    each names MLflow's fields and the 501 the rest of MLflow's endpoints answer."""
    for route in mlflow_api.routes:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", MLFLOW_PREFIX + route.rule)
        operation = document["paths"][path][route.method.lower()]
        assert operation["tags"] == ["mlflow"] and "501" in operation["responses"], path
        fields = set((route.body or {}).get("properties", {}))
        query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        if route.method == "GET":
            assert query == fields and "requestBody" not in operation, path
        elif fields:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert set(schema["properties"]) == fields, path
    search = document["paths"][MLFLOW_PREFIX + "/mlflow/runs/search"]["post"]
    assert {"experiment_ids", "filter", "order_by", "max_results", "page_token"} <= set(
        search["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
