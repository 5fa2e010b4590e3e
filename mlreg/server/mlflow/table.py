"""MLflow's REST API as a route table, like ``/api/v1``'s: each route declares its method, path,
permission, summary and the fields of its request message.

The request message is read as MLflow's server reads it: from the query string of a GET
(repeated fields as repeated parameters), from the JSON body otherwise; fields MLflow's
protos define but mlreg does not use, and fields of newer clients, are ignored rather than
refused. Errors leave in MLflow's form and with MLflow's statuses (``RESOURCE_ALREADY_EXISTS``
is a 400 there), so MLflow's clients raise what they raise against MLflow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from werkzeug import exceptions as http

from mlreg.errors import InvalidInput, MlregError, PayloadTooLarge
from mlreg.server.api import ROUTES_KEY, Route, describe, message_body
from mlreg.server.permissions import Permission
from mlreg.web.http import HttpConfig, as_error, json_response

Handler = Callable[..., Any]

#: Where MLflow's clients find the API: the REST path and the one its web UI calls.
PREFIXES = {"mlflow_api": "/api/2.0", "mlflow_ajax_api": "/ajax-api/2.0"}

# --- the field types of MLflow's protos, as JSON Schema ------------------------------------

STRING = {"type": "string"}
#: int64 fields: protobuf's JSON writes them as strings, MLflow's clients as numbers.
INT64 = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$", "description": "an integer"}
INT32 = INT64
DOUBLE = {
    "anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"]}]
}
BOOL = {"type": "boolean"}


def repeated(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def message(fields: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A proto message: its fields, the required ones; unknown fields are let through."""
    return {"type": "object", "properties": fields, "required": required or []}


def enum(*names: str) -> dict[str, Any]:
    return {"enum": list(names)}


KEY_VALUE = message({"key": STRING, "value": STRING}, ["key"])

# --- errors as MLflow answers them -----------------------------------------------------------

#: mlreg's error code -> MLflow's error code and HTTP status, where they differ.
_MLFLOW_ERRORS = {
    "RESOURCE_ALREADY_EXISTS": ("RESOURCE_ALREADY_EXISTS", 400),
    "SCHEMA_MISMATCH": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_MLMODEL": ("INVALID_PARAMETER_VALUE", 400),
    "PAYLOAD_TOO_LARGE": ("INVALID_PARAMETER_VALUE", 413),
    "UNSUPPORTED_MEDIA_TYPE": ("INVALID_PARAMETER_VALUE", 415),
    "METHOD_NOT_ALLOWED": ("ENDPOINT_NOT_FOUND", 405),
    # MLflow answers 500 for an invalid state; a state conflict is the caller's, not ours.
    "INVALID_STATE": ("INVALID_STATE", 409),
    "DIGEST_MISMATCH": ("DATA_LOSS", 500),
    "STORE_UNAVAILABLE": ("TEMPORARILY_UNAVAILABLE", 503),
    "REGISTRATION_FAILED": ("INTERNAL_ERROR", 500),
}


def mlflow_error(error: MlregError) -> Response:
    """``{"error_code", "message"}`` with MLflow's code and status: exactly the shape MLflow's
    server answers (mlreg's own code is in ``/api/v1``'s answers)."""
    code, status = _MLFLOW_ERRORS.get(error.error_code, (error.error_code, error.status_code))
    return error_answer(code, status, error.message)


def error_answer(code: str, status: int, message: str) -> Response:
    """An error in MLflow's form with the code and status given: for the calls where MLflow
    answers a kind of error with another code than it usually does (see their handlers)."""
    g.error = (code, message)
    response = json_response(orjson.dumps({"error_code": code, "message": message}), status)
    if status == 413:
        response.headers["Connection"] = "close"
    return response


# --- the table ------------------------------------------------------------------------------


class MlflowApi:
    """Collects MLflow's routes with their declarations, then registers them on blueprints."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        rule: str,
        *,
        permission: Permission,
        summary: str,
        request_message: dict[str, Any] | None = None,
        raw_body: str | None = None,
        raw_response: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a route; the handler gets the request message as ``msg`` (when the route
        declares one) and its path arguments, and returns a dict (the JSON answer) or a
        Response."""

        def register(handler: Handler) -> Handler:
            validator = Draft202012Validator(request_message) if request_message else None

            @functools.wraps(handler)
            def view(**kwargs: Any) -> Response:
                if validator is not None:
                    kwargs["msg"] = read_message(validator, request_message or {})
                answer = handler(**kwargs)
                return answer if isinstance(answer, Response) else ok(answer)

            self.routes.append(
                Route(
                    method,
                    rule,
                    view,
                    permission,
                    summary,
                    "mlflow",
                    request_message,
                    raw_body=raw_body,
                    raw_response=raw_response,
                )
            )
            return handler

        return register

    @staticmethod
    def endpoint(route: Route) -> str:
        area = route.handler.__module__.rsplit(".", 1)[-1]
        return f"{route.method.lower()}_{area}_{route.handler.__name__}"

    def blueprint(self, name: str, prefix: str) -> Blueprint:
        bp = Blueprint(name, __name__, url_prefix=prefix)
        for r in self.routes:
            bp.add_url_rule(r.rule, self.endpoint(r), r.handler, methods=[r.method])
        bp.register_error_handler(MlregError, mlflow_error)
        bp.register_error_handler(http.HTTPException, _http_error)
        return bp

    def mount(self, app: Flask) -> None:
        """Register the routes on ``app`` under every prefix and record each endpoint's
        declaration next to ``/api/v1``'s, where the permission checks find them."""
        table: dict[str, Route] = app.extensions.setdefault(ROUTES_KEY, {})
        for name, prefix in PREFIXES.items():
            app.register_blueprint(self.blueprint(name, prefix))
            for r in self.routes:
                table[f"{name}.{self.endpoint(r)}"] = r


def _http_error(e: http.HTTPException) -> Response:
    limit = current_app.config["MLREG_MAX_REQUEST_BYTES"]
    if isinstance(e, http.RequestEntityTooLarge):
        return mlflow_error(PayloadTooLarge.body(None, limit, "MLREG_MAX_REQUEST_BYTES"))
    config = HttpConfig("", limit, "MLREG_MAX_REQUEST_BYTES")
    error = as_error(e, config) or InvalidInput(e.description or e.name)
    return mlflow_error(error)


def ok(doc: Any, status: int = 200) -> Response:
    return json_response(orjson.dumps(doc), status)


# --- request messages -----------------------------------------------------------------------


def read_message(validator: Draft202012Validator, schema: dict[str, Any]) -> dict[str, Any]:
    """The request message: the query string of a GET, the JSON body of anything else."""
    if request.method == "GET":
        doc: Any = _from_query(schema)
    else:
        doc = message_body()
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        raise InvalidInput(describe(error))
    return doc


def _from_query(schema: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name, field in schema.get("properties", {}).items():
        if name not in request.args:
            continue
        if field.get("type") == "array":
            doc[name] = request.args.getlist(name)
        elif field == BOOL:
            raw = request.args[name].lower()
            doc[name] = raw in ("true", "1") if raw in ("true", "false", "1", "0") else raw
        else:
            doc[name] = request.args[name]
    return doc


def as_int(msg: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """An int64 field (a number or a numeric string), ``default`` when absent or 0."""
    raw = msg.get(name)
    value = int(raw) if raw not in (None, "") else 0
    value = value or default
    if not low <= value <= high:
        raise InvalidInput(f"field '{name}': expected {low}-{high}, got {value}")
    return value


def required(msg: dict[str, Any], *names: str) -> None:
    """Fields MLflow requires but may arrive empty (an empty string is not a value)."""
    for name in names:
        if msg.get(name) in (None, ""):
            raise InvalidInput(f"missing value for required field '{name}'")


#: The table every module of this package declares its routes on.
mlflow_api = MlflowApi()
