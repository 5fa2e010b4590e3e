"""MLflow's REST API under ``--auth``: its routes name their resources in the request message
(the query string of a GET, the JSON body otherwise), and the same check as ``/api/v1``'s
reads them there — a field left out, or sent under its older name (``run_uuid``), or a list
of experiments, must not get past it.

Each case: anonymous -> 401, a user without a grant -> 403 naming what they lack, the user
with just enough -> the route's own answer, and nothing changed by the refused ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.teams.conftest import Team, World, make_world

API = "/api/2.0/mlflow"

#: (method, path, message builder, level needed). Messages name the world's resources.
CASES: list[tuple[str, str, Any, str]] = [
    ("GET", "/experiments/get", lambda w: {"experiment_id": w.experiment}, "reader"),
    ("GET", "/experiments/get-by-name", lambda w: {"experiment_name": w.experiment_name}, "reader"),
    (
        "POST",
        "/experiments/update",
        lambda w: {"experiment_id": w.experiment, "new_name": "x"},
        "manager",
    ),
    ("POST", "/runs/create", lambda w: {"experiment_id": w.experiment}, "editor"),
    ("GET", "/runs/get", lambda w: {"run_id": w.run}, "reader"),
    ("GET", "/metrics/get-history", lambda w: {"run_id": w.run, "metric_key": "loss"}, "reader"),
    (
        "POST",
        "/runs/log-metric",
        lambda w: {"run_id": w.run, "key": "m", "value": 1, "timestamp": 1, "step": 0},
        "editor",
    ),
    # the older field name MLflow 1.x clients send
    (
        "POST",
        "/runs/log-parameter",
        lambda w: {"run_uuid": w.run, "key": "p", "value": "1"},
        "editor",
    ),
    ("POST", "/runs/delete", lambda w: {"run_id": w.run}, "manager"),
    ("POST", "/runs/search", lambda w: {"experiment_ids": [w.experiment]}, "reader"),
    ("GET", "/registered-models/get", lambda w: {"name": w.model}, "reader"),
    (
        "POST",
        "/registered-models/set-tag",
        lambda w: {"name": w.model, "key": "k", "value": "v"},
        "editor",
    ),
    (
        "POST",
        "/model-versions/transition-stage",
        lambda w: {
            "name": w.model,
            "version": "1",
            "stage": "Production",
            "archive_existing_versions": False,
        },
        "promoter",
    ),
    ("DELETE", "/registered-models/delete", lambda w: {"name": w.model}, "manager"),
]


def call(team: Team, who: str, method: str, path: str, message: dict[str, Any]) -> Any:
    if method == "GET":
        return team.call(who, method, API + path, query_string=message)
    return team.call(who, method, API + path, json=message)


@pytest.mark.parametrize(
    ("method", "path", "message", "needed"), CASES, ids=[f"{m} {p}" for m, p, _, _ in CASES]
)
def test_each_route_checks_the_resource_its_message_names(
    team, world_dir, method, path, message, needed
):
    world: World = make_world(team, world_dir)
    body = message(world)
    assert call(team, "anonymous", method, path, body).status_code == 401
    refused = call(team, "nogrant", method, path, body)
    assert refused.status_code == 403, refused.get_data(as_text=True)
    assert refused.json["error_code"] == "PERMISSION_DENIED"
    assert "nogrant needs" in refused.json["message"]
    order = ["reader", "editor", "promoter", "manager"]
    below = order[: order.index(needed)]
    for who in below:
        answer = call(team, who, method, path, body)
        assert answer.status_code == 403, (who, answer.get_data(as_text=True))
    answer = call(team, needed, method, path, body)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_the_refused_writes_changed_nothing(team, world_dir):
    world = make_world(team, world_dir)
    for who in ("anonymous", "nogrant", "reader"):
        call(team, who, "POST", "/runs/log-metric", {"run_id": world.run, "key": "m", "value": 1})
        call(team, who, "DELETE", "/registered-models/delete", {"name": world.model})
    run = call(team, "reader", "GET", "/runs/get", {"run_id": world.run}).json["run"]
    assert [m["key"] for m in run["data"].get("metrics", [])] == ["loss"]
    assert (
        call(team, "reader", "GET", "/registered-models/get", {"name": world.model}).status_code
        == 200
    )


def test_a_search_over_several_experiments_needs_read_on_each(team, world_dir):
    mine, theirs = make_world(team, world_dir), make_world(team, world_dir)
    ok = call(team, "reader", "POST", "/runs/search", {"experiment_ids": [mine.experiment]})
    assert ok.status_code == 200
    # the admin made a third experiment the reader holds nothing on
    hidden = call(team, "admin", "POST", "/experiments/create", {"name": f"hidden-{mine.tag}"})
    assert hidden.status_code == 200, hidden.get_data(as_text=True)
    both = [mine.experiment, theirs.experiment, hidden.json["experiment_id"]]
    refused = call(team, "reader", "POST", "/runs/search", {"experiment_ids": both})
    assert refused.status_code == 403
    assert "experiment" in refused.json["message"]


def test_artifact_proxy_paths_are_checked_on_their_experiment_and_model(team, world_dir):
    world = make_world(team, world_dir)
    proxy = "/api/2.0/mlflow-artifacts/artifacts"
    run_path = f"{world.experiment}/{world.run}/artifacts"
    listed = team.call("reader", "GET", proxy, query_string={"path": run_path})
    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert team.call("nogrant", "GET", proxy, query_string={"path": run_path}).status_code == 403
    # the root names no experiment: not a non-admin's to list
    assert team.call("reader", "GET", proxy).status_code == 403
    version = f"{proxy}/registry/{world.model}/1/MLmodel"
    assert team.call("reader", "GET", version).status_code == 200
    assert team.call("nogrant", "GET", version).status_code == 403
    upload = f"{proxy}/{run_path}/new.txt"
    assert team.call("reader", "PUT", upload, data=b"x").status_code == 403
    assert team.call("editor", "PUT", upload, data=b"x").status_code == 200
