"""Every route of the server x (anonymous, no grant, READ, EDIT, PROMOTE, MANAGE, admin) -> the
exact status, on SQLite and PostgreSQL.

The cases come from the app's route table: a route added without a request here fails
``test_every_route_has_a_request`` (and one without a declared permission fails
tests/test_architecture.py), so no route escapes the matrix. The expected status is computed
from the route's declaration (its level, its resource, its success status), and each 403's
message is checked to name the permission that is missing.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from mlreg.registry.artifacts import dir_digest
from mlreg.server.api import ROUTES_KEY, Route
from mlreg.server.permissions import Level, Resource
from mlreg.store.tarstream import MEDIA_TYPE
from tests.teams.conftest import GRADED, PRINCIPALS, Team, World, make_world

JSON_TYPE = "application/json"


@dataclass
class Request:
    path: str
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


def _tar(model_dir: Any) -> Request:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix())
    return Request(
        "",
        data=buffer.getvalue(),
        headers={"Content-Type": MEDIA_TYPE, "X-Mlreg-Digest": dir_digest(model_dir)},
    )


def _upload(w: World, who: str, model_dir: Any) -> Request:
    tar = _tar(model_dir)
    tar.path = f"/models/{w.model}/versions/2/content"
    return tar


R = Request
NOW = datetime.now(timezone.utc).isoformat()
#: endpoint -> the request that succeeds for a caller allowed to make it, on a fresh world.
REQUESTS: dict[str, Callable[[World, str, Any], Request]] = {
    # --- registered models
    "api_v1.post_create_model": lambda w, who, d: R("/models", {"name": f"new-{w.tag}-{who}"}),
    "api_v1.get_search_models": lambda w, who, d: R("/models"),
    "api_v1.get_get_model": lambda w, who, d: R(f"/models/{w.model}"),
    "api_v1.patch_update_model": lambda w, who, d: R(f"/models/{w.model}", {"description": "d"}),
    "api_v1.post_rename_model": lambda w, who, d: R(
        f"/models/{w.model}/rename", {"new_name": f"renamed-{w.tag}"}
    ),
    "api_v1.delete_delete_model": lambda w, who, d: R(f"/models/{w.model}"),
    "api_v1.put_set_model_tag": lambda w, who, d: R(f"/models/{w.model}/tags/k", {"value": "x"}),
    "api_v1.delete_delete_model_tag": lambda w, who, d: R(f"/models/{w.model}/tags/k"),
    "api_v1.get_versions_by_stage": lambda w, who, d: R(f"/models/{w.model}/stages"),
    "api_v1.get_stage_history": lambda w, who, d: R(f"/models/{w.model}/history"),
    "api_v1.get_model_state": lambda w, who, d: R(f"/models/{w.model}/state", query={"at": NOW}),
    "api_v1.put_set_alias": lambda w, who, d: R(f"/models/{w.model}/aliases/new", {"version": 1}),
    "api_v1.get_get_alias": lambda w, who, d: R(f"/models/{w.model}/aliases/champ"),
    "api_v1.delete_delete_alias": lambda w, who, d: R(f"/models/{w.model}/aliases/champ"),
    # --- versions
    "api_v1.post_create_version": lambda w, who, d: R(
        f"/models/{w.model}/versions", {"source": "s"}
    ),
    "api_v1.put_upload_version": _upload,
    "api_v1.post_finish_version": lambda w, who, d: R(
        f"/models/{w.model}/versions/2/finish", {"status": "FAILED_REGISTRATION"}
    ),
    "api_v1.get_get_version": lambda w, who, d: R(f"/models/{w.model}/versions/1"),
    "api_v1.patch_update_version": lambda w, who, d: R(
        f"/models/{w.model}/versions/1", {"description": "d"}
    ),
    "api_v1.delete_delete_version": lambda w, who, d: R(f"/models/{w.model}/versions/1"),
    "api_v1.put_set_version_tag": lambda w, who, d: R(
        f"/models/{w.model}/versions/1/tags/k", {"value": "x"}
    ),
    "api_v1.delete_delete_version_tag": lambda w, who, d: R(f"/models/{w.model}/versions/1/tags/k"),
    "api_v1.post_transition": lambda w, who, d: R(
        f"/models/{w.model}/versions/1/stage", {"stage": "Production"}
    ),
    "api_v1.get_list_version_files": lambda w, who, d: R(f"/models/{w.model}/versions/1/files"),
    "api_v1.get_download_version_file": lambda w, who, d: R(
        f"/models/{w.model}/versions/1/files/MLmodel"
    ),
    "api_v1.get_search_versions": lambda w, who, d: R("/versions"),
    "api_v1.get_resolve": lambda w, who, d: R("/resolve", query={"uri": f"models:/{w.model}/1"}),
    "api_v1.get_leftovers": lambda w, who, d: R("/leftovers"),
    "api_v1.post_discard_leftover": lambda w, who, d: R("/leftovers/discard", {"location": "x"}),
    # --- experiments and runs
    "api_v1.post_create_experiment": lambda w, who, d: R(
        "/experiments", {"name": f"new-{w.tag}-{who}"}
    ),
    "api_v1.get_search_experiments": lambda w, who, d: R("/experiments"),
    "api_v1.get_get_experiment": lambda w, who, d: R(f"/experiments/{w.experiment}"),
    "api_v1.put_set_experiment_tag": lambda w, who, d: R(
        f"/experiments/{w.experiment}/tags/k", {"value": "x"}
    ),
    "api_v1.post_create_run": lambda w, who, d: R("/runs", {"experiment_id": w.experiment}),
    "api_v1.get_get_run": lambda w, who, d: R(f"/runs/{w.run}"),
    "api_v1.patch_update_run": lambda w, who, d: R(f"/runs/{w.run}", {"status": "FINISHED"}),
    "api_v1.post_log_batch": lambda w, who, d: R(f"/runs/{w.run}/batch", {"params": {"p": "1"}}),
    "api_v1.get_metric_history": lambda w, who, d: R(f"/runs/{w.run}/metrics/loss"),
    "api_v1.post_search_runs": lambda w, who, d: R(
        "/runs/search", {"experiment_ids": [w.experiment]}
    ),
    "api_v1.get_list_artifacts": lambda w, who, d: R(f"/runs/{w.run}/artifacts"),
    "api_v1.get_download_artifact": lambda w, who, d: R(f"/runs/{w.run}/artifacts/a.txt"),
    "api_v1.put_upload_artifact": lambda w, who, d: R(
        f"/runs/{w.run}/artifacts/b.txt",
        data=b"bytes",
        headers={"Content-Type": "application/octet-stream"},
    ),
    "api_v1.delete_delete_artifact": lambda w, who, d: R(f"/runs/{w.run}/artifacts/a.txt"),
    "api_v1.patch_rename_experiment": lambda w, who, d: R(
        f"/experiments/{w.experiment}", {"name": f"renamed-{w.tag}"}
    ),
    "api_v1.delete_delete_experiment": lambda w, who, d: R(f"/experiments/{w.experiment}"),
    "api_v1.post_restore_experiment": lambda w, who, d: R(f"/experiments/{w.experiment}/restore"),
    "api_v1.delete_delete_experiment_tag": lambda w, who, d: R(
        f"/experiments/{w.experiment}/tags/k"
    ),
    "api_v1.delete_delete_run": lambda w, who, d: R(f"/runs/{w.run}"),
    "api_v1.post_restore_run": lambda w, who, d: R(f"/runs/{w.run}/restore"),
    "api_v1.delete_delete_run_tag": lambda w, who, d: R(f"/runs/{w.run}/tags/mlreg.user"),
    "api_v1.post_log_inputs": lambda w, who, d: R(f"/runs/{w.run}/inputs", {"datasets": []}),
    "api_v1.post_log_outputs": lambda w, who, d: R(f"/runs/{w.run}/outputs", {"models": []}),
    # --- logged models
    "api_v1.post_create_logged_model": lambda w, who, d: R(
        "/logged-models", {"experiment_id": w.experiment}
    ),
    "api_v1.post_search_logged_models": lambda w, who, d: R(
        "/logged-models/search", {"experiment_ids": [w.experiment]}
    ),
    "api_v1.get_get_logged_model": lambda w, who, d: R(f"/logged-models/{w.logged_model}"),
    "api_v1.patch_finalize_logged_model": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}", {"status": "READY"}
    ),
    "api_v1.delete_delete_logged_model": lambda w, who, d: R(f"/logged-models/{w.logged_model}"),
    "api_v1.put_set_logged_model_tag": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/tags/k", {"value": "x"}
    ),
    "api_v1.delete_delete_logged_model_tag": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/tags/k"
    ),
    "api_v1.post_log_logged_model_params": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/params", {"params": {"q": "2"}}
    ),
    "api_v1.get_list_logged_model_artifacts": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/artifacts"
    ),
    "api_v1.get_download_logged_model_artifact": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/artifacts/a.txt"
    ),
    "api_v1.put_upload_logged_model_artifact": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/artifacts/b.txt",
        data=b"bytes",
        headers={"Content-Type": "application/octet-stream"},
    ),
    "api_v1.delete_delete_logged_model_artifact": lambda w, who, d: R(
        f"/logged-models/{w.logged_model}/artifacts/a.txt"
    ),
    # --- users, tokens, groups, grants
    "api_v1.get_whoami": lambda w, who, d: R("/whoami"),
    "api_v1.get_list_users": lambda w, who, d: R("/users"),
    "api_v1.post_create_user": lambda w, who, d: R("/users", {"name": f"u-{w.tag}-{who}"}),
    "api_v1.get_get_user": lambda w, who, d: R(f"/users/{w.victim}"),
    "api_v1.patch_update_user": lambda w, who, d: R(f"/users/{w.victim}", {"admin": False}),
    "api_v1.delete_delete_user": lambda w, who, d: R(f"/users/{w.victim}"),
    "api_v1.put_set_password": lambda w, who, d: R(
        f"/users/{w.victim}/password", {"password": "a-long-password"}
    ),
    "api_v1.get_list_tokens": lambda w, who, d: R(f"/users/{w.victim}/tokens"),
    "api_v1.post_create_token": lambda w, who, d: R(f"/users/{w.victim}/tokens", {"name": "t"}),
    "api_v1.delete_revoke_token": lambda w, who, d: R(f"/users/{w.victim}/tokens/{w.victim_token}"),
    "api_v1.get_list_groups": lambda w, who, d: R("/groups"),
    "api_v1.post_create_group": lambda w, who, d: R("/groups", {"name": f"g-{w.tag}-{who}"}),
    "api_v1.delete_delete_group": lambda w, who, d: R(f"/groups/{w.group}"),
    "api_v1.put_add_member": lambda w, who, d: R(f"/groups/{w.group}/members/{w.other}"),
    "api_v1.delete_remove_member": lambda w, who, d: R(f"/groups/{w.group}/members/{w.victim}"),
    "api_v1.get_model_grants": lambda w, who, d: R(f"/models/{w.model}/grants"),
    "api_v1.put_grant_model": lambda w, who, d: R(
        f"/models/{w.model}/grants/{w.other}", {"permission": "READ"}
    ),
    "api_v1.delete_revoke_model": lambda w, who, d: R(f"/models/{w.model}/grants/{w.victim}"),
    "api_v1.get_experiment_grants": lambda w, who, d: R(f"/experiments/{w.experiment}/grants"),
    "api_v1.put_grant_experiment": lambda w, who, d: R(
        f"/experiments/{w.experiment}/grants/{w.other}", {"permission": "EDIT"}
    ),
    "api_v1.delete_revoke_experiment": lambda w, who, d: R(
        f"/experiments/{w.experiment}/grants/{w.victim}"
    ),
    # --- audit
    "api_v1.get_audit": lambda w, who, d: R("/audit", query={"model": w.model}),
    "api_v1.get_model_audit": lambda w, who, d: R(f"/models/{w.model}/audit"),
    "api_v1.get_experiment_audit": lambda w, who, d: R(f"/experiments/{w.experiment}/audit"),
    # --- webhooks
    "api_v1.get_list_webhooks": lambda w, who, d: R("/webhooks"),
    "api_v1.post_create_webhook": lambda w, who, d: R("/webhooks", {"url": "http://127.0.0.1:9/"}),
    "api_v1.post_create_model_webhook": lambda w, who, d: R(
        f"/models/{w.model}/webhooks", {"url": "http://127.0.0.1:9/"}
    ),
    "api_v1.get_get_webhook": lambda w, who, d: R(f"/webhooks/{w.webhook}"),
    "api_v1.delete_delete_webhook": lambda w, who, d: R(f"/webhooks/{w.webhook}"),
    "api_v1.post_test_webhook": lambda w, who, d: R(f"/webhooks/{w.webhook}/test"),
    "api_v1.get_webhook_deliveries": lambda w, who, d: R(f"/webhooks/{w.webhook}/deliveries"),
    # --- open to anyone
    "api_v1.get_openapi": lambda w, who, d: R("/openapi.json"),
    "ops.get_health": lambda w, who, d: R("/health"),
    "ops.get_ready": lambda w, who, d: R("/ready"),
    "ops.get_metrics": lambda w, who, d: R("/metrics"),
}


def routes_of(team: Team) -> dict[str, Route]:
    """The REST API's and the probes' routes (MLflow's API: test_mlflow_auth.py; the web UI's
    pages and forms: tests/ui/test_access.py)."""
    return {
        endpoint: route
        for endpoint, route in team.app.extensions[ROUTES_KEY].items()
        if endpoint.startswith(("api_v1.", "ops."))
    }


def level_of(who: str, route: Route) -> Level:
    """What ``who`` holds on the resource a world's request names."""
    if who == "admin":
        return Level.ADMIN
    if route.permission.resource is Resource.USER:
        return Level.NONE  # the requests name another user (the world's victim)
    return GRADED.get(who, Level.NONE)


def expected(who: str, route: Route) -> tuple[int, str | None]:
    """The status ``who`` gets, and for a 403 the message."""
    needed = route.permission
    if needed.level is Level.NONE:
        return route.status, None
    if who == "anonymous":
        return 401, None
    if needed.level is Level.ADMIN:
        if who == "admin":
            return route.status, None
        return 403, f"{who} needs ADMIN for this (they are not an admin)"
    if needed.resource is Resource.SERVER:
        return route.status, None
    have = level_of(who, route)
    if have >= needed.level:
        return route.status, None
    return 403, None  # the message depends on the resource: see denial_message


def denial_message(who: str, route: Route, w: World) -> str:
    needed, have = route.permission, level_of(who, route)
    held = "no permission" if have is Level.NONE else have.name
    resource = route.permission.resource
    if resource is Resource.USER:
        return (
            f"{who} needs ADMIN to manage user {w.victim!r} (a user manages only their own "
            "tokens and password)"
        )
    if resource is Resource.WEBHOOK:
        return (
            f"{who} needs MANAGE on the model of webhook {w.webhook} (ADMIN for a webhook of "
            f"every model); they have {held}"
        )
    what = {
        Resource.MODEL: f"model {w.model!r}",
        Resource.RUN: f"the experiment of run {w.run!r}",
        Resource.EXPERIMENT: f"experiment {w.experiment!r}",
        Resource.LOGGED_MODEL: f"the experiment of logged model {w.logged_model!r}",
    }[resource]
    return f"{who} needs {needed.level.name} on {what}; they have {held}"


def test_every_route_has_a_request(team):
    """A route added to the server must be added here too (else it escapes the matrix)."""
    assert set(routes_of(team)) == set(REQUESTS)


def _cases() -> list[Any]:
    return [
        pytest.param(e, who, id=f"{e.split('.', 1)[1]}-{who}")
        for e in REQUESTS
        for who in PRINCIPALS
    ]


@pytest.fixture(scope="module")
def module_team(request, tmp_path_factory):
    """One server per backend for the whole matrix (each case makes its own world)."""
    from tests.teams.conftest import make_team

    kind = request.param
    home = tmp_path_factory.mktemp(f"matrix-{kind}")
    if kind == "sqlite":
        uri = f"sqlite:///{home / 'registry.db'}"
    else:
        uri = request.getfixturevalue("postgres_matrix_uri")
    made = make_team(uri, home / "server")
    yield made, {}
    made.close()


@pytest.mark.slow  # 546 requests per database, each on its world of resources
@pytest.mark.parametrize(
    "module_team",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
@pytest.mark.parametrize(("endpoint", "who"), _cases())
def test_permission_matrix(module_team, world_dir, endpoint, who):
    team, worlds = module_team
    route = routes_of(team)[endpoint]
    status, message = expected(who, route)
    # A refused request or a read leaves the world as it was, so one world per route serves
    # them all; a write that is let through gets a world of its own.
    if route.method != "GET" and status < 400:
        world = make_world(team, world_dir)
    else:
        world = worlds.get(endpoint) or worlds.setdefault(endpoint, make_world(team, world_dir))
    req = REQUESTS[endpoint](world, who, world_dir)
    prefix = "" if endpoint.startswith("ops.") else "/api/v1"
    kwargs: dict[str, Any] = {"headers": req.headers, "query_string": req.query}
    if req.json is not None:
        kwargs["json"] = req.json
    elif req.data is not None:
        kwargs["data"] = req.data
    elif route.method in ("POST", "PUT", "PATCH") and route.body is not None:
        kwargs["json"] = {}
    response = team.call(who, route.method, prefix + req.path, **kwargs)
    body = response.get_data(as_text=True)
    assert response.status_code == status, f"{route.method} {req.path} as {who}: {body[:300]}"
    if status == 401:
        assert response.headers.getlist("WWW-Authenticate") == [
            'Basic realm="mlreg", charset="UTF-8"',
            'Bearer realm="mlreg"',
        ]
    if status == 403:
        assert response.json == {
            "error_code": "PERMISSION_DENIED",
            "message": message or denial_message(who, route, world),
        }
