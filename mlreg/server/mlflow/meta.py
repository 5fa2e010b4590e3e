"""What MLflow's clients ask a server about itself (``/version``, ``/server-info``), and the
answer for MLflow's endpoints mlreg does not implement: a 501 ``NOT_IMPLEMENTED`` naming the
endpoint and the area it belongs to (tracing, the prompt registry, GenAI evaluation ...),
never an HTML 404 or a 500. A known path asked with the wrong method is a 405.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, request

from mlreg.errors import MethodNotAllowed, NotSupported
from mlreg.server import permissions as perm
from mlreg.server.api import ROUTES_KEY, Handler, Route
from mlreg.server.mlflow.table import PREFIXES, mlflow_api, mlflow_error, ok
from mlreg.version import __version__

bp = Blueprint("mlflow_meta", __name__)

#: MLflow's areas mlreg leaves out, by the first segment of the path after ``/mlflow/``.
AREAS = {
    "traces": "tracing",
    "unified-traces": "tracing",
    "get-online-trace-details": "tracing",
    "scorers": "GenAI evaluation (scorers)",
    "datasets": "GenAI evaluation datasets",
    "label-schemas": "GenAI evaluation (label schemas)",
    "review-queues": "GenAI evaluation (review queues)",
    "issues": "GenAI evaluation (issues)",
    "prompt-optimization": "the prompt registry (prompt optimization)",
    "prompts": "the prompt registry",
    "webhooks": "webhooks",
    "gateway": "the AI gateway",
    "endpoints": "the AI gateway",
    "secrets": "the AI gateway",
    "workspaces": "workspaces",
    "jobs": "jobs",
}
#: Single endpoints of areas mlreg does implement, by path after ``/mlflow/``.
ENDPOINTS = {
    "metrics/get-history-bulk-interval": "metric histories by interval (MLflow's web UI)",
    "experiments/search-datasets": "dataset search (MLflow's web UI)",
    "artifacts/presigned-upload-url": "presigned artifact URLs",
    "artifacts/presigned-download-url": "presigned artifact URLs",
    "server-features": "server features",
}
UNSUPPORTED_RULES = [
    *(f"{prefix}/mlflow/<path:rest>" for prefix in PREFIXES.values()),
    *(f"{prefix}/mlflow-artifacts/<path:rest>" for prefix in PREFIXES.values()),
    "/api/3.0/mlflow/<path:rest>",
    "/ajax-api/3.0/mlflow/<path:rest>",
    "/v1/traces",
    "/graphql",
]
SERVER_INFO_RULES = ["/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
#: These routes by endpoint, each declared with what it needs (all open: they describe the
#: server, or refuse, and never touch its data).
META_ROUTES: dict[str, Route] = {}


def _declare(rule: str, endpoint: str, handler: Handler, methods: list[str], summary: str) -> None:
    bp.add_url_rule(rule, endpoint, handler, methods=methods)
    method = methods[0] if len(methods) == 1 else "ANY"
    META_ROUTES[f"{bp.name}.{endpoint}"] = Route(
        method, rule, handler, perm.PUBLIC, summary, "mlflow"
    )


def mount(app: Flask) -> None:
    """Register these routes on ``app`` with their declarations (see MlflowApi.mount)."""
    app.register_blueprint(bp)
    app.extensions.setdefault(ROUTES_KEY, {}).update(META_ROUTES)


def version() -> Response:
    """The server's version, as MLflow's ``/version`` answers it (plain text)."""
    return Response(__version__, mimetype="text/plain")


def server_info() -> Response:
    """What MLflow 3's clients check before using optional features."""
    return ok(
        {
            "store_type": "mlreg",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            # Large files go up in parts through this server (mpu/create, parts, complete).
            "multipart_uploads_enabled": True,
            # Downloads stream from this server (ranges work; no separate part URLs needed).
            "multipart_downloads_enabled": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {},
            "mlreg_version": __version__,
        }
    )


_declare("/version", "version", version, ["GET"], "The server's version (MLflow's /version).")
for _rule in SERVER_INFO_RULES:
    _declare(
        _rule,
        f"server_info_{_rule.split('/')[1]}",
        server_info,
        ["GET"],
        "What the server supports (MLflow 3's server-info).",
    )


def _route_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Every declared MLflow route as (method, regex of its path under a prefix)."""
    out = []
    for route in mlflow_api.routes:
        pattern = re.sub(r"<path:\w+>", ".+", route.rule)
        pattern = re.sub(r"<(?:\w+:)?\w+>", "[^/]+", pattern)
        out.append((route.method, re.compile(pattern + "$")))
    return out


def unsupported(rest: str = "") -> Response:
    """501 for MLflow's endpoints mlreg leaves out; 405 for a known one asked wrongly."""
    path = request.path
    for prefix in PREFIXES.values():
        if path.startswith(prefix + "/"):
            allowed = sorted(
                {m for m, regex in _route_patterns() if regex.match(path[len(prefix) :])}
            )
            if allowed:
                return mlflow_error(
                    MethodNotAllowed(
                        f"method {request.method} is not allowed on {path}; allowed: "
                        f"{', '.join(allowed)}"
                    )
                )
    return mlflow_error(NotSupported(f"{_what(path)}: {request.method} {path}; {_SEE}"))


_SEE = "see 'Using MLflow clients' in mlreg's README for what mlreg server supports"


def _what(path: str) -> str:
    if path == "/v1/traces":
        return "mlreg server does not implement MLflow's tracing (OpenTelemetry trace export)"
    if path == "/graphql":
        return "mlreg server does not implement MLflow's GraphQL API (MLflow's web UI)"
    _, _, rest = path.partition("/mlflow/")
    if "/mlflow-artifacts/" in path:
        return "mlreg server does not implement this endpoint of MLflow's artifact proxy"
    for endpoint, area in ENDPOINTS.items():
        if rest == endpoint:
            return f"mlreg server does not implement MLflow's {area}"
    area = AREAS.get(rest.split("/", 1)[0])
    if area is not None:
        return f"mlreg server does not implement MLflow's {area}"
    return "mlreg server does not implement this MLflow endpoint"


for _n, _rule in enumerate(UNSUPPORTED_RULES):
    _declare(
        _rule,
        f"unsupported_{_n}",
        unsupported,
        METHODS,
        "501 for MLflow's endpoints mlreg leaves out (405 for a known one asked wrongly).",
    )
