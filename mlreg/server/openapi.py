"""The OpenAPI 3.1 document of ``/api/v1`` and of MLflow's API on the server, generated from the
route tables (so it cannot drift)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mlreg.errors import MlregError
from mlreg.server.api import Api, Route
from mlreg.server.permissions import Level
from mlreg.version import __version__

_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TEXT = {"type": ["string", "null"]}
LIFECYCLE = {"enum": ["active", "deleted"]}

COMPONENTS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error_code", "message"],
    },
    "RegisteredModel": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": NULLABLE_TEXT,
            "tags": STRING_MAP,
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "latest_version": {"type": ["integer", "null"]},
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "ModelVersion": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "stage": {"enum": ["None", "Staging", "Production", "Archived"]},
            "status": {"enum": ["PENDING_REGISTRATION", "READY", "FAILED_REGISTRATION"]},
            "status_message": NULLABLE_TEXT,
            "source": {"type": "string"},
            "run_id": NULLABLE_TEXT,
            "description": NULLABLE_TEXT,
            "tags": STRING_MAP,
            "aliases": {"type": "array", "items": {"type": "string"}},
            "signature": {"type": ["object", "null"]},
            "digest": {"type": ["string", "null"], "description": "sha256 of the files"},
            "model_id": {
                "type": ["string", "null"],
                "description": "the logged model the version was made from",
            },
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "Transition": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "from_stage": {"type": "string"},
            "to_stage": {"type": "string"},
            "user": {"type": "string"},
            "timestamp": TIME,
        },
    },
    "Experiment": {
        "type": "object",
        "properties": {
            "experiment_id": {"type": "string"},
            "name": {"type": "string"},
            "artifact_location": {"type": "string"},
            "tags": STRING_MAP,
            "creation_time": {"type": "integer", "description": "ms since the epoch"},
            "last_update_time": {"type": "integer", "description": "ms since the epoch"},
            "lifecycle_stage": LIFECYCLE,
        },
    },
    "Run": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "experiment_id": {"type": "string"},
            "run_name": {"type": "string"},
            "status": {"enum": ["RUNNING", "FINISHED", "FAILED", "KILLED"]},
            "start_time": {"type": "integer"},
            "end_time": {"type": ["integer", "null"]},
            "parent_run_id": NULLABLE_TEXT,
            "artifact_uri": {"type": "string"},
            "lifecycle_stage": LIFECYCLE,
            "params": STRING_MAP,
            "metrics": {"type": "object", "description": "latest value per key"},
            "tags": STRING_MAP,
            "inputs": {
                "type": "object",
                "properties": {
                    "datasets": {"type": "array", "items": {"type": "object"}},
                    "models": {"type": "array", "items": {"type": "string"}},
                },
            },
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Metric": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "value": {"oneOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]},
            "timestamp": {"type": "integer"},
            "step": {"type": "integer"},
            "model_id": {"type": "string"},
            "dataset_name": {"type": "string"},
            "dataset_digest": {"type": "string"},
        },
    },
    "LoggedModel": {
        "type": "object",
        "description": "A model logged on its own (MLflow 3), with files under artifact_uri",
        "properties": {
            "model_id": {"type": "string"},
            "experiment_id": {"type": "string"},
            "name": {"type": "string"},
            "artifact_uri": {"type": "string"},
            "status": {"enum": ["PENDING", "READY", "FAILED"]},
            "status_message": NULLABLE_TEXT,
            "creation_time": {"type": "integer"},
            "last_update_time": {"type": "integer"},
            "source_run_id": NULLABLE_TEXT,
            "model_type": NULLABLE_TEXT,
            "lifecycle_stage": LIFECYCLE,
            "tags": STRING_MAP,
            "params": STRING_MAP,
            "metrics": {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}},
        },
    },
    "File": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "is_dir": {"type": "boolean"},
            "size": {"type": ["integer", "null"]},
        },
    },
    "User": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "is_admin": {"type": "boolean"},
            "has_password": {"type": "boolean"},
            "groups": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Group": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "members": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Token": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "user": {"type": "string"},
            "name": {"type": "string"},
            "prefix": {"type": "string", "description": "the token's first characters"},
            "state": {"enum": ["active", "expired", "revoked"]},
            "created_at": TIME,
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"},
            "last_used_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Grant": {
        "type": "object",
        "properties": {
            "principal": {"type": "string"},
            "kind": {"enum": ["user", "group"]},
            "level": {"enum": ["NONE", "READ", "EDIT", "PROMOTE", "MANAGE"]},
        },
    },
    "AuditEvent": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "timestamp": TIME,
            "user": {"type": "string"},
            "address": NULLABLE_TEXT,
            "action": {"type": "string", "description": "e.g. model_version.stage_changed"},
            "resource_type": {"type": "string"},
            "resource_id": NULLABLE_TEXT,
            "resource": {"type": "string", "description": "its name at the time"},
            "version": {"type": ["integer", "null"]},
            "old": {"description": "the value before (JSON)"},
            "new": {"description": "the value after (JSON)"},
        },
    },
    "ModelState": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "at": TIME,
            "versions": {"type": "array", "items": {"type": "integer"}},
            "stages": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "integer"}},
            },
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "Webhook": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "model": NULLABLE_TEXT,
            "description": NULLABLE_TEXT,
            "created_by": {"type": "string"},
            "created_at": TIME,
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "webhook_id": {"type": "integer"},
            "event_id": {"type": "string"},
            "event": {"type": "string"},
            "state": {"enum": ["pending", "sending", "delivered", "failed"]},
            "attempts": {"type": "integer"},
            "created_at": TIME,
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            "last_status": {"type": ["integer", "null"]},
            "last_error": NULLABLE_TEXT,
            "history": {"type": "array", "items": {"type": "object"}},
        },
    },
}

ERRORS = {
    "400": "Bad input: the message names the field and what was expected",
    "401": "No or wrong credentials (with --auth); WWW-Authenticate says how to sign in",
    "403": "Signed in, but without the permission the route needs (the message names it)",
    "404": "Not found: the message says what exists",
    "409": "Conflicts with the current state (e.g. a version that is not READY)",
    "413": "Body over the limit",
    "415": "Wrong Content-Type",
    "429": "Too many failed sign-ins; Retry-After says when to try again",
    "503": "The database is unavailable",
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """A Flask rule as an OpenAPI path, with its path parameters."""
    params = []
    for m in _PARAM.finditer(rule):
        schema: dict[str, Any] = {"type": "string"}
        if m["conv"] == "path":
            schema["description"] = "may contain '/'"
        params.append({"name": m["name"], "in": "path", "required": True, "schema": schema})
    return _PARAM.sub(lambda m: "{" + m["name"] + "}", rule), params


def operation(route: Route) -> dict[str, Any]:
    _, path_params = openapi_path(route.rule)
    query = [{"name": n, "in": "query", "schema": s} for n, s in route.query.items()]
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
        "x-mlreg-permission": {
            "level": route.permission.level.name,
            "resource": route.permission.resource.value,
            "needs": route.permission.describe(),
        },
        "parameters": path_params + query,
        "responses": {
            str(route.status): {"description": "OK", "content": _content(route)},
            **{
                code: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
                for code, text in ERRORS.items()
            },
        },
    }
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    elif route.raw_body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {route.raw_body: {"schema": {"type": "string", "format": "binary"}}},
        }
    if route.permission.level is not Level.NONE:
        op["security"] = [{"basic": []}, {"bearer": []}, {}]
    return op


def _content(route: Route) -> dict[str, Any]:
    if route.raw_response:
        return {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {"application/json": {"schema": route.response or {"type": "object"}}}


def mlflow_operation(route: Route) -> dict[str, Any]:
    """An operation of MLflow's API: its request message is the query string of a GET and the
    JSON body otherwise, as MLflow's server reads it."""
    op = operation(route)
    area = route.handler.__module__.rsplit(".", 1)[-1]
    op["operationId"] = f"mlflow_{route.method.lower()}_{area}_{route.handler.__name__}"
    message = route.body or {}
    if route.method == "GET" and message:
        op.pop("requestBody", None)
        required = set(message.get("required", []))
        op["parameters"] += [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in message.get("properties", {}).items()
        ]
    op["responses"]["501"] = {
        "description": "An MLflow endpoint mlreg leaves out (the message names it)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return op


def document(api: Api, mlflow: Sequence[Route] = (), mlflow_prefix: str = "") -> dict[str, Any]:
    """The document of ``api``'s routes, and of MLflow's routes under ``mlflow_prefix``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in api.routes:
        path, _ = openapi_path(api.prefix + route.rule)
        paths.setdefault(path, {})[route.method.lower()] = operation(route)
    for route in mlflow:
        path, _ = openapi_path(mlflow_prefix + route.rule)
        paths.setdefault(path, {})[route.method.lower()] = mlflow_operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mlreg server",
            "version": __version__,
            "description": "Registry and tracking server of mlreg: its own API under /api/v1, "
            "and MLflow's REST API under /api/2.0 (tag 'mlflow'; the same routes answer under "
            "/ajax-api/2.0, and MLflow's other endpoints answer 501). Errors are "
            '{"error_code", "message"}; error codes: '
            + ", ".join(sorted({c.error_code for c in _error_classes()})),
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _error_classes() -> list[type[MlregError]]:
    found, todo = [], [MlregError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
