"""The audit trail: every write recorded (who, when, from where, old -> new) in the transaction
of the write itself; the queries over it; a model's state at a moment (``history --at``)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

import mlreg.registry.sql_store as registry_sql
from mlreg.cli import main
from mlreg.registry import MlregClient
from mlreg.server.audit import AuditQuery
from mlreg.server.permissions import Level, Resource
from mlreg.store import StoreSettings
from tests.teams.conftest import ADMIN_ACTOR, make_world


def _events(team, who="admin", **query):
    response = team.call(who, "GET", "/api/v1/audit", query_string=query)
    assert response.status_code == 200, response.json
    return list(reversed(response.json["events"]))  # oldest first


def test_a_models_life_is_recorded_with_old_and_new_values(team, model_dir):
    def call(who, method, path, **kwargs):
        response = team.call(who, method, "/api/v1" + path, **kwargs)
        assert response.status_code < 300, response.json
        return response

    call("manager", "POST", "/models", json={"name": "m", "description": "first"})
    registry = team.services.registry_as(
        team.services.access.actor_for(None, "manager", "10.0.0.9")
    )
    version = registry.begin_version("m", "src", None, None, None, None)
    registry.store_files(version, model_dir)
    call("manager", "PATCH", "/models/m", json={"description": "second"})
    call("manager", "PUT", "/models/m/tags/team", json={"value": "vision"})
    call("manager", "POST", "/models/m/versions/1/stage", json={"stage": "Production"})
    call("manager", "PUT", "/models/m/aliases/champion", json={"version": 1})
    call("manager", "POST", "/models/m/rename", json={"new_name": "m2"})
    call("manager", "DELETE", "/models/m2/aliases/champion")
    events = _events(team, model="m2")
    # Every step, old -> new (the creator's grant is part of creating the model).
    assert [(e["action"], e["version"], e["old"], e["new"]) for e in events] == [
        ("registered_model.created", None, None, {"description": "first", "tags": {}}),
        (
            "model_version.created",
            1,
            None,
            {"run_id": None, "source": "src", "status": "PENDING_REGISTRATION"},
        ),
        (
            "model_version.ready",
            1,
            {"status": "PENDING_REGISTRATION"},
            {"digest": events[2]["new"]["digest"], "status": "READY"},
        ),
        ("registered_model.updated", None, {"description": "first"}, {"description": "second"}),
        ("registered_model.tag_set", None, {"team": None}, {"team": "vision"}),
        ("model_version.stage_changed", 1, {"stage": "None"}, {"stage": "Production"}),
        (
            "model_alias.set",
            1,
            {"alias": "champion", "version": None},
            {"alias": "champion", "version": 1},
        ),
        ("registered_model.renamed", None, {"name": "m"}, {"name": "m2"}),
        ("model_alias.deleted", 1, {"alias": "champion", "version": 1}, None),
    ]
    assert {e["user"] for e in events} == {"manager"}
    assert [e["address"] for e in events[1:3]] == ["10.0.0.9", "10.0.0.9"]
    assert {e["address"] for e in events[3:] + events[:1]} == {"127.0.0.1"}
    assert [e["resource"] for e in events] == ["m"] * 7 + ["m2", "m2"]
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] < timedelta(minutes=5)


def test_the_audit_row_is_written_in_the_transaction_of_the_change(team, world_dir, monkeypatch):
    """If recording fails, the change is not made; if the change fails after it was recorded,
    the record goes too: they commit or roll back together."""
    world = make_world(team, world_dir)
    before = len(_events(team, model=world.model))
    real = registry_sql.record

    def record_then_fail(session, actor, change):
        real(session, actor, change)
        session.flush()  # the audit row is in the database's transaction now
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(registry_sql, "record", record_then_fail)
    response = team.call(
        "admin",
        "POST",
        f"/api/v1/models/{world.model}/versions/1/stage",
        json={"stage": "Production"},
    )
    assert response.status_code == 500
    monkeypatch.setattr(registry_sql, "record", real)
    version = team.call("admin", "GET", f"/api/v1/models/{world.model}/versions/1").json
    assert version["model_version"]["stage"] == "Staging"  # unchanged
    assert len(_events(team, model=world.model)) == before  # and nothing recorded


def test_a_refused_write_records_nothing(team, world_dir):
    world = make_world(team, world_dir)
    before = _events(team)
    refused = [
        (
            "reader",
            "POST",
            f"/api/v1/models/{world.model}/versions/1/stage",
            {"stage": "Production"},
        ),
        (
            "admin",
            "POST",
            f"/api/v1/models/{world.model}/versions/2/stage",
            {"stage": "Production"},
        ),
        ("admin", "PUT", f"/api/v1/models/{world.model}/aliases/x", {"version": 9}),
        ("admin", "POST", "/api/v1/models", {"name": world.model}),
    ]
    for who, method, path, body in refused:
        assert team.call(who, method, path, json=body).status_code in (403, 404, 409)
    assert _events(team) == before


def test_tracking_writes_are_recorded(team):
    tracking = team.services.tracking_as(team.services.access.actor_for(None, "editor", "10.1.1.1"))
    experiment = tracking.create_experiment("exp", tags={"owner": "vision"})
    run = tracking.create_run(experiment, run_name="cnn").info.run_id
    tracking.log_batch(
        run, metrics=[("loss", 0.5, 0, 1), ("loss", 0.4, 1, 2)], params={"lr": "0.1"}
    )
    tracking.set_terminated(run, "FINISHED")
    events = _events(team, user="editor")
    assert [(e["action"], e["resource"]) for e in events] == [
        ("experiment.created", "exp"),
        ("experiment.tag_set", "exp"),
        ("run.created", "cnn"),
        ("run.logged", "cnn"),
        ("run.updated", "cnn"),
    ]
    assert events[3]["new"] == {"metrics": {"count": 2, "keys": ["loss"]}, "params": {"lr": "0.1"}}
    assert events[4]["old"]["status"] == "RUNNING" and events[4]["new"]["status"] == "FINISHED"
    assert {(e["user"], e["address"]) for e in events} == {("editor", "10.1.1.1")}
    mine = team.call("admin", "GET", f"/api/v1/experiments/{experiment}/audit").json["events"]
    assert [e["action"] for e in mine] == ["experiment.tag_set", "experiment.created"]


def test_run_renames_deletions_and_artifacts_are_recorded(team, tmp_path):
    """Writes that are not rows of their own: a run's name and lifecycle stage (main's
    delete/restore), and its artifact files, uploaded through the server or deleted."""
    tracking = team.services.tracking_as(team.services.access.actor_for(None, "editor", "10.1.1.1"))
    experiment = tracking.create_experiment("files")
    run = tracking.create_run(experiment, run_name="cnn").info.run_id
    start = datetime.now(timezone.utc).isoformat()
    tracking.store.update_run_info(run, run_name="cnn-2")
    tracking.delete_run(run)
    tracking.delete_run(run)  # already deleted: nothing changed, nothing recorded
    tracking.restore_run(run)
    (tmp_path / "notes.txt").write_text("12345")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"x" * 10)
    tracking.log_artifact(run, tmp_path / "notes.txt", "docs")
    tracking.log_artifacts(run, tmp_path / "plots", "plots")
    uploaded = team.call(
        "admin",
        "PUT",
        f"/api/v1/runs/{run}/artifacts/raw/data.bin",
        data=b"abc",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 200, uploaded.json
    assert team.call("admin", "DELETE", f"/api/v1/runs/{run}/artifacts/docs").status_code == 200
    events = _events(team, since=start)
    assert [(e["user"], e["action"], e["resource"], e["old"], e["new"]) for e in events] == [
        ("editor", "run.renamed", "cnn", {"run_name": "cnn"}, {"run_name": "cnn-2"}),
        (
            "editor",
            "run.deleted",
            "cnn-2",
            {"lifecycle_stage": "active"},
            {"lifecycle_stage": "deleted"},
        ),
        (
            "editor",
            "run.restored",
            "cnn-2",
            {"lifecycle_stage": "deleted"},
            {"lifecycle_stage": "active"},
        ),
        ("editor", "artifact.logged", "cnn-2", None, {"path": "docs/notes.txt", "size": 5}),
        ("editor", "artifact.logged", "cnn-2", None, {"path": "plots", "files": 1, "size": 10}),
        ("admin", "artifact.logged", "cnn-2", None, {"path": "raw/data.bin", "size": 3}),
        ("admin", "artifact.deleted", "cnn-2", {"path": "docs"}, None),
    ]


def test_team_changes_are_recorded_without_secrets(team):
    access = team.services.access
    start = datetime.now(timezone.utc).isoformat()
    _, secret = access.create_token(ADMIN_ACTOR, "editor", "ci")
    access.set_password(ADMIN_ACTOR, "editor", "another-password")
    events = _events(team, since=start)
    text = json.dumps(events)
    assert secret not in text and "another-password" not in text
    assert [e["action"] for e in events] == ["token.created", "user.password_set"]


def test_queries_by_user_time_action_and_a_deleted_models_name(team, world_dir):
    world = make_world(team, world_dir)
    start = datetime.now(timezone.utc)
    time.sleep(0.01)
    team.call(
        "promoter",
        "POST",
        f"/api/v1/models/{world.model}/versions/1/stage",
        json={"stage": "Production"},
    )
    team.call("manager", "DELETE", f"/api/v1/models/{world.model}")
    mine = _events(team, user="promoter")
    assert [e["action"] for e in mine] == ["model_version.stage_changed"]
    recent = _events(team, since=start.isoformat())
    assert [(e["user"], e["action"]) for e in recent] == [
        ("promoter", "model_version.stage_changed"),
        ("manager", "registered_model.deleted"),
    ]
    assert recent[1]["old"] == {"aliases": {"champ": 1}, "versions": [1, 2]}
    # The model is gone; its trail is found by the name it had.
    gone = _events(team, model=world.model)
    assert (
        gone[0]["action"] == "registered_model.created"
        and gone[-1]["action"] == "registered_model.deleted"
    )
    until = _events(team, until=start.isoformat(), model=world.model)
    assert "registered_model.deleted" not in [e["action"] for e in until]
    bad = team.call("admin", "GET", "/api/v1/audit", query_string={"since": "yesterday"})
    assert bad.json["message"] == (
        "query parameter 'since': expected an ISO 8601 time such as 2026-06-01T12:00:00Z, "
        "got 'yesterday'"
    )


def test_pages_of_the_trail(team):
    for i in range(5):
        team.call("admin", "POST", "/api/v1/models", json={"name": f"p{i}"})
    first = team.call("admin", "GET", "/api/v1/audit", query_string={"max_results": 3}).json
    second = team.call(
        "admin",
        "GET",
        "/api/v1/audit",
        query_string={"max_results": 3, "page_token": first["next_page_token"]},
    ).json
    names = [e["resource"] for e in first["events"] + second["events"]]
    assert names[:5] == ["p4", "p3", "p2", "p1", "p0"]
    assert second["next_page_token"] is None or len(second["events"]) == 3


# --- which version was in Production then ---------------------------------------------------


def test_the_state_of_a_model_at_a_moment(local_settings, model_dir, tmp_path):
    """v1 to Production, then v2 replaces it (v1 archived), the alias moves, v1 is deleted:
    each moment in between answers what was true then."""
    with MlregClient(local_settings) as client:
        for _ in range(2):
            client.register_model(str(model_dir), "mnist")
        moments = []

        def mark():
            time.sleep(0.01)
            moments.append(datetime.now(timezone.utc))
            time.sleep(0.01)

        mark()  # 0: two versions, nothing promoted
        client.transition_model_version_stage("mnist", 1, "Production")
        client.set_alias("mnist", "champion", 1)
        mark()  # 1: v1 in Production, champion -> 1
        client.transition_model_version_stage(
            "mnist", 2, "Production", archive_existing_versions=True
        )
        client.set_alias("mnist", "champion", 2)
        mark()  # 2: v2 in Production, v1 archived
        client.delete_model_version("mnist", 1)
        mark()  # 3: v1 gone
        states = [client.get_model_state("mnist", at) for at in moments]
        before = client.get_model_state("mnist", moments[0] - timedelta(hours=1))
    assert [(s.versions, s.stages, s.aliases) for s in states] == [
        ([1, 2], {}, {}),
        ([1, 2], {"Production": [1]}, {"champion": 1}),
        ([1, 2], {"Archived": [1], "Production": [2]}, {"champion": 2}),
        ([2], {"Production": [2]}, {"champion": 2}),
    ]
    assert (before.versions, before.stages) == ([], {})

    env = {
        "MLREG_TRACKING_URI": local_settings.uri,
        "MLREG_ARTIFACT_ROOT": str(local_settings.artifact_root),
        "MLREG_HOME": str(tmp_path / "home"),
    }
    at = moments[1].isoformat()
    result = CliRunner().invoke(main, ["history", "mnist", "--at", at], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"mnist at {moments[1].isoformat()}\n"
        "  Production: 1\n"
        "  Staging:    -\n"
        "  Archived:   -\n"
        "  aliases:    champion -> 1\n"
        "  versions:   1, 2\n"
    )
    result = CliRunner().invoke(main, ["history", "mnist", "--at", "noon"], env=env)
    assert (result.exit_code, result.output) == (
        2,
        "Error: --at: expected an ISO 8601 time such as 2026-06-01T12:00:00Z, got 'noon'\n",
    )


def test_history_at_through_the_server(live_team, model_dir, tmp_path, monkeypatch):
    team = live_team.team
    registry = team.services.registry_as(ADMIN_ACTOR)
    registry.register_model(str(model_dir), "served")
    registry.transition_model_version_stage("served", 1, "Production")
    env = {
        "MLREG_TRACKING_URI": live_team.url,
        "MLREG_TRACKING_TOKEN": team.tokens["reader"],
        "MLREG_HOME": str(tmp_path / "client"),
    }
    team.services.access.grant(ADMIN_ACTOR, Resource.MODEL, "served", "reader", Level.READ)
    now = datetime.now(timezone.utc).isoformat()
    result = CliRunner().invoke(main, ["history", "served", "--at", now, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stages"] == {"Production": [1]}


@pytest.mark.parametrize(
    ("who", "query", "status", "found"),
    [
        ("manager", {"model": "kept"}, 200, ["registered_model.created"]),
        ("admin", {"model": "kept"}, 200, ["registered_model.created"]),
        ("editor", {"model": "kept"}, 403, "editor needs MANAGE on model 'kept'; they have EDIT"),
        (
            "manager",
            {},
            403,
            "manager needs ADMIN for this without query parameter 'model' (with it, MANAGE on "
            "that model)",
        ),
        (
            "manager",
            {"experiment": "x"},
            403,
            "manager needs ADMIN for this without query parameter 'model' (with it, MANAGE on "
            "that model)",
        ),
        # A deleted model's trail is the admins': nobody manages it any more.
        ("manager", {"model": "gone"}, 404, "registered model 'gone' does not exist"),
        ("admin", {"model": "gone"}, 200, ["registered_model.created", "registered_model.deleted"]),
        ("anonymous", {"model": "kept"}, 401, None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_api_audit_is_a_models_managers_with_model_and_the_admins_without(
    team, who, query, status, found
):
    for name in ("kept", "gone"):
        assert team.call("admin", "POST", "/api/v1/models", json={"name": name}).status_code == 201
        for user, level in (("manager", Level.MANAGE), ("editor", Level.EDIT)):
            team.services.access.grant(ADMIN_ACTOR, Resource.MODEL, name, user, level)
    assert team.call("admin", "DELETE", "/api/v1/models/gone").status_code == 200
    response = team.call(who, "GET", "/api/v1/audit", query_string=query)
    assert response.status_code == status, response.json
    if status == 200:
        actions = [e["action"] for e in reversed(response.json["events"])]
        assert [a for a in actions if a.startswith("registered_model.")] == found
    elif found is not None:
        assert response.json["message"].startswith(found), response.json


# --- mlreg audit ----------------------------------------------------------------------------


def test_mlreg_audit_on_the_database_and_through_the_server(live_team, tmp_path):
    team = live_team.team
    team.call("manager", "POST", "/api/v1/models", json={"name": "audited"})
    team.call("manager", "PUT", "/api/v1/models/audited/tags/k", json={"value": "v"})
    runner = CliRunner()
    remote = {
        "MLREG_TRACKING_URI": live_team.url,
        "MLREG_TRACKING_TOKEN": team.tokens["manager"],
        "MLREG_HOME": str(tmp_path / "client"),
    }
    result = runner.invoke(main, ["audit", "--model", "audited", "--json"], env=remote)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["next_page_token"] is None
    actions = [e["action"] for e in doc["items"]]
    assert actions == ["registered_model.tag_set", "registered_model.created"]
    # One event a page: the token the first page gives reaches the second.
    first = json.loads(
        runner.invoke(
            main, ["audit", "--model", "audited", "--max-results", "1", "--json"], env=remote
        ).output
    )
    assert [e["action"] for e in first["items"]] == ["registered_model.tag_set"]
    token = first["next_page_token"]
    second = runner.invoke(
        main,
        ["audit", "--model", "audited", "--max-results", "1", "--json", "--page-token", token],
        env=remote,
    )
    assert [e["action"] for e in json.loads(second.output)["items"]] == ["registered_model.created"]
    # The whole trail is the admins': a manager gets a 403 naming it.
    result = runner.invoke(main, ["audit"], env=remote)
    assert (result.exit_code, result.output) == (
        13,
        "Error: manager needs ADMIN for this without query parameter 'model' (with it, "
        "MANAGE on that model)\n",
    )
    local = {
        "MLREG_TRACKING_URI": team.services.registry.store.uri,
        "MLREG_HOME": str(tmp_path / "local"),
        "MLREG_USER": "ops",
    }
    result = runner.invoke(main, ["audit", "--user", "manager"], env=local)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["WHEN", "USER", "FROM", "ACTION", "RESOURCE", "CHANGE"]
    assert "registered_model.tag_set" in lines[1] and '{"k": null} -> {"k": "v"}' in lines[1]
    assert "127.0.0.1" in lines[1]


def test_audit_search_validates_paging(team):
    with pytest.raises(Exception, match="max_results must be between 1 and 1000"):
        team.services.audit.search(AuditQuery(), 0)


def test_direct_database_writes_are_recorded_as_the_local_user(tmp_path, model_dir):
    settings = StoreSettings.for_home(tmp_path / "home", user="dora")
    with MlregClient(settings) as client:
        client.register_model(str(model_dir), "local-model")
    from mlreg.server.audit import AuditLog

    with MlregClient(settings) as client:
        events = AuditLog(client.store.db).search(AuditQuery(model="local-model")).items
    assert [(e.user, e.address, e.action) for e in reversed(events)] == [
        ("dora", None, "registered_model.created"),
        ("dora", None, "model_version.created"),
        ("dora", None, "model_version.ready"),
    ]
