"""The Python API, the REST stores and the CLI against a server with authentication, signed in
with a token (MLREG_TRACKING_TOKEN) or a user name and password (…_USERNAME/_PASSWORD, and the
MLFLOW_ names); and the team commands on the database and through the server."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import mlreg
from mlreg.cli import main
from mlreg.errors import PermissionDenied, Unauthenticated
from mlreg.registry import MlregClient, reset_default_client
from mlreg.server.permissions import Level, Resource
from mlreg.store import StoreSettings
from mlreg.tracking import fluent
from tests.teams.conftest import ADMIN_ACTOR

CREDENTIAL_VARS = [
    f"{prefix}_TRACKING_{name}"
    for prefix in ("MLREG", "MLFLOW")
    for name in ("TOKEN", "USERNAME", "PASSWORD")
]


@pytest.fixture
def client_for(monkeypatch, tmp_path):
    """A registry client of the server signed in with the given variables (read, as always,
    from the environment when the client is made)."""

    def make(url: str, **env: str) -> MlregClient:
        for var in CREDENTIAL_VARS:
            monkeypatch.delenv(var, raising=False)
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        home = tmp_path / f"client-{len(env)}-{sorted(env.values())[:1]}"
        return MlregClient(StoreSettings(url, tmp_path / "unused", "claimed-name", home=home))

    return make


def test_register_promote_and_load_with_tokens(live_team, model_dir, client_for):
    team = live_team.team
    team.call("admin", "POST", "/api/v1/models", json={"name": "shared"})
    for who, level in (("editor", Level.EDIT), ("promoter", Level.PROMOTE)):
        team.services.access.grant(ADMIN_ACTOR, Resource.MODEL, "shared", who, level)
    with client_for(live_team.url, MLREG_TRACKING_TOKEN=team.tokens["editor"]) as editor:
        version = editor.register_model(str(model_dir), "shared")
        assert version.status.value == "READY"
        with pytest.raises(PermissionDenied) as denied:
            editor.transition_model_version_stage("shared", 1, "Production")
        assert denied.value.message == "editor needs PROMOTE on model 'shared'; they have EDIT"
    with client_for(
        live_team.url,
        MLREG_TRACKING_USERNAME="promoter",
        MLREG_TRACKING_PASSWORD="promoter-password",
    ) as promoter:
        moved = promoter.transition_model_version_stage("shared", 1, "Production", user="mallory")
        assert moved.stage.value == "Production"
        assert promoter.get_stage_history("shared")[-1].user == "promoter"
        loaded = promoter.resolve("models:/shared/Production")
        assert (loaded.path / "MLmodel").is_file()
    with (
        client_for(live_team.url, MLFLOW_TRACKING_TOKEN=team.tokens["nogrant"]) as stranger,
        pytest.raises(PermissionDenied, match="nogrant needs READ on model 'shared'"),
    ):
        stranger.resolve("models:/shared/Production")


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, "authentication required: send a token"),
        ({"MLREG_TRACKING_TOKEN": "mlreg_wrong"}, "invalid token"),
        (
            {"MLREG_TRACKING_USERNAME": "editor", "MLREG_TRACKING_PASSWORD": "nope"},
            "wrong user name or password",
        ),
    ],
    ids=["none", "bad-token", "bad-password"],
)
def test_clients_say_what_is_wrong_with_their_credentials(
    live_team, client_for, credentials, message
):
    with client_for(live_team.url, **credentials) as client, pytest.raises(Unauthenticated) as e:
        client.search_registered_models()
    assert e.value.message.startswith(message)


@pytest.mark.parametrize(
    "names",
    [
        {"MLREG_TRACKING_TOKEN": "{token}"},
        {"MLFLOW_TRACKING_TOKEN": "{token}"},
        {"MLREG_TRACKING_USERNAME": "editor", "MLREG_TRACKING_PASSWORD": "editor-password"},
        {"MLFLOW_TRACKING_USERNAME": "editor", "MLFLOW_TRACKING_PASSWORD": "editor-password"},
    ],
    ids=["token", "mlflow-token", "password", "mlflow-password"],
)
def test_the_fluent_api_and_the_cli_sign_in_from_the_environment(
    live_team, tmp_path, monkeypatch, names
):
    team = live_team.team
    for var in [v for v in os.environ if v.startswith(("MLREG_", "MLFLOW_"))]:
        monkeypatch.delenv(var)
    env = {k: v.format(token=team.tokens["editor"]) for k, v in names.items()}
    env |= {
        "MLREG_TRACKING_URI": live_team.url,
        "MLREG_HOME": str(tmp_path / "home"),
        "MLREG_USER": "claimed-name",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fluent.reset()
    reset_default_client()
    try:
        mlreg.set_experiment("team-exp")
        with mlreg.start_run(run_name="r") as run:
            mlreg.log_param("lr", "0.1")
            mlreg.log_metric("loss", 0.25)
        stored = mlreg.get_run(run.info.run_id)
        assert stored.data.params == {"lr": "0.1"}
        assert stored.data.tags["mlreg.user"] == "editor"  # the signed-in user, not the claim
    finally:
        fluent.reset()
        reset_default_client()
    result = CliRunner().invoke(main, ["models", "list"], env=env)
    assert result.exit_code == 0, result.output
    grants = team.call("admin", "GET", "/api/v1/audit", query_string={"user": "editor"}).json
    assert {e["action"] for e in grants["events"]} >= {"experiment.created", "run.created"}


# --- the team commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "line", "method"),
    [
        ({"MLREG_TRACKING_TOKEN": "mlreg_abcdefghijklmnop"}, "a token (mlreg_abcdef…)", "token"),
        (
            {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "pw-of-alice"},
            "user alice with a password",
            "password",
        ),
        (
            {"MLREG_TRACKING_USERNAME": "bob"},
            "user bob with no password (MLREG_TRACKING_PASSWORD)",
            "password",
        ),
        (
            {},
            "none (a server with --auth answers 401: set MLREG_TRACKING_TOKEN, or "
            "MLREG_TRACKING_USERNAME and MLREG_TRACKING_PASSWORD)",
            None,
        ),
    ],
    ids=["token", "mlflow-names", "no-password", "none"],
)
def test_info_says_how_a_client_of_a_server_signs_in(tmp_path, monkeypatch, env, line, method):
    """Read from the environment only (no request: the server may be down), never the secret."""
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    variables = {
        "MLREG_TRACKING_URI": "http://127.0.0.1:1",
        "MLREG_HOME": str(tmp_path / "home"),
        **env,
    }
    result = CliRunner().invoke(main, ["info"], env=variables)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3] == f"sign-in:       {line}"
    assert "abcdefghijklmnop" not in result.output and "pw-of-alice" not in result.output
    doc = json.loads(CliRunner().invoke(main, ["info", "--json"], env=variables).output)
    assert doc["sign_in"]["method"] == method


def test_the_first_admin_is_made_on_the_database(tmp_path):
    env = {"MLREG_HOME": str(tmp_path / "home"), "MLREG_USER": "ops"}
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["server", "users", "create", "root", "--admin", "--password-stdin", "--json"],
        input="root-password\n",
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["is_admin"] is True
    listed = runner.invoke(main, ["server", "users", "list"], env=env)
    assert listed.output.splitlines()[1].split()[:3] == ["root", "yes", "yes"]
    result = runner.invoke(main, ["server", "users", "create", "x"], input="", env=env)
    assert (result.exit_code, result.output) == (
        2,
        "Error: no terminal to ask for the password on: pipe it with --password-stdin\n",
    )
    result = runner.invoke(main, ["server", "tokens", "list"], env=env)
    assert (result.exit_code, result.output) == (
        2,
        "Error: on the database nobody is signed in; name the user (--user NAME), or point "
        "MLREG_TRACKING_URI at the server\n",
    )


LAST_GRANT_GONE = "PRINCIPAL  KIND   PERMISSION\neveryone   group  NONE\n"


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (
            ["bob", "EDIT"],
            2,
            "Error: bob holds PROMOTE on model 'shared', not EDIT; nothing was revoked\n",
        ),
        (
            ["carol", "READ"],
            2,
            "Error: carol holds no grant on model 'shared', not READ; nothing was revoked\n",
        ),
        (
            ["bob", "promote"],
            0,
            # The last grant taken away leaves the model private, not at the default.
            LAST_GRANT_GONE,
        ),
        (["bob"], 0, LAST_GRANT_GONE),
    ],
    ids=["other-level", "no-grant", "named-level", "any-level"],
)
def test_revoke_with_a_permission_takes_only_that(tmp_path, args, code, output):
    env = {"MLREG_HOME": str(tmp_path / "home"), "MLREG_USER": "ops"}
    runner = CliRunner()
    for name in ("bob", "carol"):
        made = runner.invoke(main, ["server", "users", "create", name, "--no-password"], env=env)
        assert made.exit_code == 0, made.output
    with MlregClient(StoreSettings.from_env({"MLREG_HOME": env["MLREG_HOME"]})) as registry:
        registry.create_registered_model("shared")
    granted = runner.invoke(
        main, ["server", "grant", "bob", "PROMOTE", "--model", "shared"], env=env
    )
    assert granted.exit_code == 0, granted.output
    result = runner.invoke(main, ["server", "revoke", *args, "--model", "shared"], env=env)
    assert (result.exit_code, result.output) == (code, output)
    left = runner.invoke(main, ["server", "grants", "--model", "shared", "--json"], env=env)
    expected = [{"principal": "bob", "kind": "user", "level": "PROMOTE"}]
    if code == 0:
        expected = [{"principal": "everyone", "kind": "group", "level": "NONE"}]
    assert json.loads(left.output)["items"] == expected


def test_team_commands_through_the_server(live_team, tmp_path):
    team = live_team.team
    runner = CliRunner()

    def run(who, *args, input=None):
        env = {
            "MLREG_TRACKING_URI": live_team.url,
            "MLREG_TRACKING_TOKEN": team.tokens[who],
            "MLREG_HOME": str(tmp_path / who),
        }
        return runner.invoke(main, list(args), env=env, input=input)

    made = run(
        "admin", "server", "users", "create", "carol", "--password-stdin", input="carol-password\n"
    )
    assert made.output == "Created user carol\n"
    assert run("admin", "server", "groups", "create", "vision").output == "Created group vision\n"
    added = run("admin", "server", "groups", "add", "vision", "carol", "editor")
    assert added.output == "vision: carol, editor\n"
    team.call("admin", "POST", "/api/v1/models", json={"name": "mnist"})
    granted = run("admin", "server", "grant", "vision", "promote", "--model", "mnist", "--json")
    assert {"principal": "vision", "kind": "group", "level": "PROMOTE"} in json.loads(
        granted.output
    )["items"]
    exp = team.call("admin", "POST", "/api/v1/experiments", json={"name": "exp"}).json
    granted = run("admin", "server", "grant", "carol", "EDIT", "--experiment", "exp")
    assert granted.exit_code == 0, granted.output
    assert granted.output == (
        "PRINCIPAL  KIND  PERMISSION\nadmin      user  MANAGE\ncarol      user  EDIT\n"
    )
    # carol, signed in with her password, makes herself a token and promotes through the group.
    env = {
        "MLREG_TRACKING_URI": live_team.url,
        "MLREG_TRACKING_USERNAME": "carol",
        "MLREG_TRACKING_PASSWORD": "carol-password",
        "MLREG_HOME": str(tmp_path / "carol"),
    }
    token = runner.invoke(main, ["server", "tokens", "create", "-n", "laptop", "--json"], env=env)
    secret = json.loads(token.output)["secret"]
    env = {**env, "MLREG_TRACKING_TOKEN": secret}
    listed = runner.invoke(main, ["server", "tokens", "list"], env=env)
    assert listed.output.splitlines()[1].split()[1:4] == ["carol", "laptop", secret[:12] + "…"]
    grants = runner.invoke(main, ["server", "grants", "--model", "mnist"], env=env)
    assert (grants.exit_code, grants.output) == (
        13,
        "Error: carol needs MANAGE on model 'mnist'; they have PROMOTE\n",
    )
    not_admin = runner.invoke(main, ["server", "users", "list"], env=env)
    assert not_admin.output == "Error: carol needs ADMIN for this (they are not an admin)\n"
    revoked = runner.invoke(main, ["server", "tokens", "revoke", "1"], env=env)
    assert (revoked.exit_code, revoked.output) == (4, "Error: user 'carol' has no token 1\n")
    token_id = json.loads(token.output)["token"]["id"]
    revoked = runner.invoke(main, ["server", "tokens", "revoke", str(token_id)], env=env)
    assert revoked.output == f"Revoked token {token_id} (laptop) of carol\n"
    gone = runner.invoke(main, ["server", "tokens", "list"], env=env)
    assert gone.exit_code == 13 and "was revoked" in gone.output
    removed = run("admin", "server", "revoke", "carol", "--experiment", "exp", "--json")
    assert "carol" not in [g["principal"] for g in json.loads(removed.output)["items"]]
    assert exp["experiment"]["name"] == "exp"
    both = run("admin", "server", "grant", "carol", "READ", "--model", "m", "--experiment", "e")
    assert both.output == "Error: name exactly one of --model NAME and --experiment NAME\n"
    deleted = run("admin", "server", "users", "delete", "carol")
    assert deleted.output == "Deleted user carol\n"
