"""Signing in (passwords, tokens, the rate limit), who a request acts as, grants (creator,
default, groups, renames, searches), Host and Origin checks, and the refusal to listen openly
without authentication — on the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select, update

from mlreg.cli import main
from mlreg.errors import InvalidInput
from mlreg.registry import MlregClient
from mlreg.server.access import credentials
from mlreg.server.access.credentials import Passwords, token_digest
from mlreg.server.permissions import Level, Resource
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings
from mlreg.store.tables import PrincipalRow, TokenRow
from tests.teams.conftest import ADMIN_ACTOR, Team, basic, bearer, make_team

UNAUTHENTICATED = {
    "error_code": "UNAUTHENTICATED",
    "message": "authentication required: send a token (Authorization: Bearer …; "
    "MLREG_TRACKING_TOKEN) or a user name and password (HTTP Basic; MLREG_TRACKING_USERNAME "
    "and MLREG_TRACKING_PASSWORD)",
}


def _denied(message: str) -> dict[str, str]:
    return {"error_code": "PERMISSION_DENIED", "message": message}


def _model(team: Team, name: str, who: str = "admin") -> None:
    response = team.call(who, "POST", "/api/v1/models", json={"name": name})
    assert response.status_code == 201, response.json


# --- passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (basic("editor", "editor-password"), 200, None),
        (basic("editor", "wrong-password"), 401, "wrong user name or password"),
        (basic("nobody", "editor-password"), 401, "wrong user name or password"),
        (basic("", ""), 401, "wrong user name or password"),
        (
            {"Authorization": "Basic !!!"},
            401,
            "malformed Basic credentials; send a token (Authorization: Bearer …; "
            "MLREG_TRACKING_TOKEN) or a user name and password (HTTP Basic; "
            "MLREG_TRACKING_USERNAME and MLREG_TRACKING_PASSWORD)",
        ),
        (
            {"Authorization": "Digest x"},
            401,
            "unsupported Authorization scheme 'Digest'; send a token (Authorization: Bearer …; "
            "MLREG_TRACKING_TOKEN) or a user name and password (HTTP Basic; "
            "MLREG_TRACKING_USERNAME and MLREG_TRACKING_PASSWORD)",
        ),
        ({}, 401, UNAUTHENTICATED["message"]),
    ],
    ids=["right", "wrong-password", "unknown-user", "empty", "malformed", "digest", "none"],
)
def test_basic_authentication(team, headers, status, message):
    response = team.client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == status
    if message is None:
        assert response.json["user"]["name"] == "editor"
        assert response.json["authenticated"] is True
    else:
        assert response.json == {"error_code": "UNAUTHENTICATED", "message": message}
        assert response.headers.getlist("WWW-Authenticate") == [
            'Basic realm="mlreg", charset="UTF-8"',
            'Bearer realm="mlreg"',
        ]


def test_passwords_are_stored_as_argon2id_hashes(team, monkeypatch):
    with team.services.registry.store.db.transaction() as session:
        stored = session.scalar(
            select(PrincipalRow.password_hash).where(PrincipalRow.name == "editor")
        )
    assert stored.startswith("$argon2id$")
    assert "editor-password" not in stored
    # The server's own hasher (not the tests' cheap one): argon2-cffi's defaults, 64 MiB.
    monkeypatch.setattr(credentials, "PasswordHasher", PasswordHasher)
    assert Passwords().hash("x").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_verified_password_is_remembered_until_it_changes(team):
    access = team.services.access
    calls = []
    real = access.passwords.verify

    def counting(stored, password):
        calls.append(password)
        return real(stored, password)

    access.passwords.verify = counting
    for _ in range(3):
        assert (
            team.client.get(
                "/api/v1/whoami", headers=basic("editor", "editor-password")
            ).status_code
            == 200
        )
    assert calls == ["editor-password"]  # argon2 ran once; the next two were remembered
    access.set_password(ADMIN_ACTOR, "editor", "a-new-password")
    response = team.client.get("/api/v1/whoami", headers=basic("editor", "editor-password"))
    assert response.status_code == 401  # the old password stops working at once
    assert (
        team.client.get("/api/v1/whoami", headers=basic("editor", "a-new-password")).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "password: expected at least 8 characters"),
        ("x" * 1025, "field 'password': expected at most 1024 characters, got 1025"),
    ],
    ids=["short", "long"],
)
def test_bad_passwords_are_refused(team, password, message):
    response = team.call(
        "admin", "POST", "/api/v1/users", json={"name": "new", "password": password}
    )
    assert (response.status_code, response.json) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": message},
    )


# --- tokens ---------------------------------------------------------------------------------


def test_tokens_are_shown_once_and_stored_as_digests(team):
    created = team.call("editor", "POST", "/api/v1/users/editor/tokens", json={"name": "ci"})
    assert created.status_code == 201
    secret = created.json["secret"]
    assert secret.startswith("mlreg_") and len(secret) > 40
    assert created.json["token"]["prefix"] == secret[:12]
    listed = team.call("editor", "GET", "/api/v1/users/editor/tokens").get_data(as_text=True)
    assert secret not in listed and secret[:12] in listed
    with team.services.registry.store.db.transaction() as session:
        stored = session.scalars(select(TokenRow.token_hash)).all()
    assert token_digest(secret) in stored and secret not in stored
    assert (
        team.client.get("/api/v1/whoami", headers=bearer(secret)).json["user"]["name"] == "editor"
    )


def test_revoked_and_expired_tokens_stop_working(team):
    access = team.services.access
    token, secret = access.create_token(ADMIN_ACTOR, "editor", "laptop")
    assert team.client.get("/api/v1/whoami", headers=bearer(secret)).status_code == 200
    revoked = team.call("editor", "DELETE", f"/api/v1/users/editor/tokens/{token.id}")
    assert revoked.json["token"]["state"] == "revoked"
    response = team.client.get("/api/v1/whoami", headers=bearer(secret))
    assert (response.status_code, response.json["message"]) == (
        401,
        f"token 'laptop' ({secret[:12]}…) was revoked",
    )

    token, secret = access.create_token(ADMIN_ACTOR, "editor", "old", days=1)
    past = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    with team.services.registry.store.db.transaction() as session:
        session.execute(update(TokenRow).where(TokenRow.id == token.id).values(expires_at=past))
    response = team.client.get("/api/v1/whoami", headers=bearer(secret))
    assert (response.status_code, response.json["message"]) == (
        401,
        f"token 'old' ({secret[:12]}…) expired on 2026-01-02 03:04 UTC; create a new one",
    )
    for bad in ("mlreg_" + "x" * 43, "not-a-token"):
        response = team.client.get("/api/v1/whoami", headers=bearer(bad))
        assert (response.status_code, response.json["message"]) == (401, "invalid token")


def test_new_tokens_expire_after_the_configured_days(team):
    token, _ = team.services.access.create_token(ADMIN_ACTOR, "editor", "ci")
    assert token.expires_at is not None
    left = token.expires_at - datetime.now(timezone.utc)
    assert timedelta(days=89, hours=23) < left <= timedelta(days=90)
    never, _ = team.services.access.create_token(ADMIN_ACTOR, "editor", "ci", never_expires=True)
    assert never.expires_at is None


def test_users_manage_their_own_tokens_and_password_only(team):
    mine = team.call("editor", "POST", "/api/v1/users/editor/tokens", json={"name": "mine"})
    assert mine.status_code == 201
    theirs = team.call("editor", "GET", "/api/v1/users/reader/tokens")
    assert theirs.status_code == 403
    assert theirs.json["message"] == (
        "editor needs ADMIN to manage user 'reader' (a user manages only their own tokens and "
        "password)"
    )
    assert (
        team.call(
            "editor", "PUT", "/api/v1/users/editor/password", json={"password": "a-fresh-password"}
        ).status_code
        == 200
    )
    assert (
        team.client.get("/api/v1/whoami", headers=basic("editor", "a-fresh-password")).status_code
        == 200
    )


# --- the rate limit -------------------------------------------------------------------------


def test_failed_sign_ins_are_limited_per_user_across_processes(migrated_backend, tmp_path):
    """A second app on the same database stands for another gunicorn worker (or replica):
    the failures are counted in the database, so the limit holds in both."""
    from mlreg.server.app import create_app

    team = make_team(migrated_backend, tmp_path / "one", login_max_failures=3)
    other_app = create_app(
        ServerSettings(
            auth=True,
            deliver_webhooks=False,
            login_max_failures=3,
            store=StoreSettings(migrated_backend, str(tmp_path / "a2"), "s", home=tmp_path / "two"),
        )
    )
    other = other_app.test_client()
    try:
        for client in (team.client, other, team.client):
            assert client.get("/api/v1/whoami", headers=basic("editor", "wrong")).status_code == 401
        # The right password no longer helps, in either process, until the window passes.
        for client in (team.client, other):
            response = client.get("/api/v1/whoami", headers=basic("editor", "editor-password"))
            assert response.status_code == 429
            assert response.json["message"].startswith(
                "too many failed sign-ins for user 'editor'; try again in "
            )
            assert 1 <= int(response.headers["Retry-After"]) <= 301
        # Another user is not locked out by editor's failures.
        response = team.client.get("/api/v1/whoami", headers=basic("reader", "reader-password"))
        assert response.status_code == 200
    finally:
        other_app.extensions["mlreg.server"].close()
        team.close()


def test_failed_sign_ins_are_limited_per_address(migrated_backend, tmp_path):
    team = make_team(migrated_backend, tmp_path / "s", login_max_failures_per_address=4)
    try:
        for name in ("a", "b", "c", "d"):
            assert team.client.get("/api/v1/whoami", headers=basic(name, "x")).status_code == 401
        response = team.client.get("/api/v1/whoami", headers=basic("editor", "editor-password"))
        assert response.status_code == 429
        assert response.json["message"].startswith(
            "too many failed sign-ins from 127.0.0.1; try again in "
        )
        # Another address is not affected.
        other = team.client.get(
            "/api/v1/whoami",
            headers=basic("editor", "editor-password"),
            environ_base={"REMOTE_ADDR": "10.0.0.7"},
        )
        assert other.status_code == 200
    finally:
        team.close()


def test_the_window_starts_again_after_it_passes(team):
    access = team.services.access
    store = access.store
    keys = ["user:editor", "addr:127.0.0.1"]
    for _ in range(10):
        store.add_failure(keys, access._since())
    assert (
        team.client.get("/api/v1/whoami", headers=basic("editor", "editor-password")).status_code
        == 429
    )
    # The window opened six minutes ago: it has passed (window 300 s).
    from mlreg.store.tables import LoginFailureRow

    with store.db.transaction() as session:
        session.execute(
            update(LoginFailureRow).values(
                window_start=datetime.now(timezone.utc) - timedelta(minutes=6)
            )
        )
    assert (
        team.client.get("/api/v1/whoami", headers=basic("editor", "editor-password")).status_code
        == 200
    )


# --- who a request acts as ------------------------------------------------------------------


def test_a_body_or_header_cannot_claim_another_user(team, world_dir):
    from tests.teams.conftest import make_world

    world = make_world(team, world_dir)
    response = team.call(
        "promoter",
        "POST",
        f"/api/v1/models/{world.model}/versions/1/stage",
        json={"stage": "Production", "user": "mallory"},
        headers={"X-Mlreg-User": "mallory"},
    )
    assert response.status_code == 200
    history = team.call("admin", "GET", f"/api/v1/models/{world.model}/history").json
    assert history["transitions"][-1]["user"] == "promoter"
    events = team.call(
        "admin", "GET", "/api/v1/audit", query_string={"action": "model_version.stage_changed"}
    ).json["events"]
    assert [(e["user"], e["resource"]) for e in events if e["resource"] == world.model] == [
        ("promoter", world.model),
        ("admin", world.model),
    ]


def test_without_auth_the_claimed_user_is_recorded_and_nothing_is_refused(tmp_path):
    from mlreg.server.app import create_app

    settings = ServerSettings(deliver_webhooks=False, store=StoreSettings.for_home(tmp_path))
    app = create_app(settings)
    client = app.test_client()
    try:
        response = client.post(
            "/api/v1/models", json={"name": "m"}, headers={"X-Mlreg-User": "dora"}
        )
        assert response.status_code == 201
        assert client.get("/api/v1/users").status_code == 200
        events = client.get("/api/v1/audit").json["events"]
        # (the server made the Default experiment at start-up, as MLflow's clients expect)
        assert [
            (e["user"], e["action"]) for e in events if e["action"] != "experiment.created"
        ] == [("dora", "registered_model.created")]
    finally:
        app.extensions["mlreg.server"].close()


# --- grants ---------------------------------------------------------------------------------


def test_the_creator_manages_what_they_create_and_others_get_the_default(
    migrated_backend, tmp_path
):
    team = make_team(migrated_backend, tmp_path / "s", default_permission="READ")
    try:
        _model(team, "made-by-editor", "editor")
        grants = team.call("editor", "GET", "/api/v1/models/made-by-editor/grants").json["grants"]
        assert grants == [
            {"principal": "editor", "kind": "user", "level": "MANAGE"},
            {"principal": "everyone", "kind": "group", "level": "READ"},
        ]
        assert team.call("nogrant", "GET", "/api/v1/models/made-by-editor").status_code == 200
        denied = team.call(
            "nogrant", "PATCH", "/api/v1/models/made-by-editor", json={"description": "x"}
        )
        assert denied.json == _denied(
            "nogrant needs EDIT on model 'made-by-editor'; they have READ"
        )
        # An experiment too, and runs in it: created through the API by their creator.
        created = team.call("reader", "POST", "/api/v1/experiments", json={"name": "exp"})
        experiment_id = created.json["experiment"]["experiment_id"]
        grants = team.call("reader", "GET", f"/api/v1/experiments/{experiment_id}/grants").json
        assert grants["grants"][0] == {"principal": "reader", "kind": "user", "level": "MANAGE"}
    finally:
        team.close()


def test_with_default_none_a_new_model_is_private_to_its_creator(team):
    _model(team, "private", "editor")
    assert team.call("editor", "GET", "/api/v1/models/private").status_code == 200
    response = team.call("reader", "GET", "/api/v1/models/private")
    assert response.json == _denied("reader needs READ on model 'private'; they have no permission")
    assert team.call("reader", "GET", "/api/v1/models").json["registered_models"] == []


def test_a_grant_to_a_group_reaches_its_members_and_leaves_with_them(team):
    _model(team, "shared")
    access = team.services.access
    access.create_group(ADMIN_ACTOR, "vision")
    access.set_member(ADMIN_ACTOR, "vision", "nogrant", True)
    response = team.call(
        "admin", "PUT", "/api/v1/models/shared/grants/vision", json={"permission": "PROMOTE"}
    )
    assert {"principal": "vision", "kind": "group", "level": "PROMOTE"} in response.json["grants"]
    assert (
        team.call(
            "nogrant", "PUT", "/api/v1/models/shared/aliases/a", json={"version": 1}
        ).status_code
        == 404
    )  # allowed; no version 1 yet
    access.set_member(ADMIN_ACTOR, "vision", "nogrant", False)
    response = team.call("nogrant", "PUT", "/api/v1/models/shared/aliases/a", json={"version": 1})
    assert response.json == _denied(
        "nogrant needs PROMOTE on model 'shared'; they have no permission"
    )


def test_renaming_a_model_keeps_its_grants(team):
    _model(team, "before")
    team.services.access.grant(ADMIN_ACTOR, Resource.MODEL, "before", "reader", Level.EDIT)
    assert (
        team.call(
            "admin", "POST", "/api/v1/models/before/rename", json={"new_name": "after"}
        ).status_code
        == 200
    )
    grants = team.call("admin", "GET", "/api/v1/models/after/grants").json["grants"]
    assert {"principal": "reader", "kind": "user", "level": "EDIT"} in grants
    assert (
        team.call("reader", "PATCH", "/api/v1/models/after", json={"description": "x"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("who", "level", "resource", "key", "expected"),
    [
        ("nogrant", Level.READ, Resource.MODEL, "shown", False),
        ("nogrant", Level.READ, Resource.SERVER, None, True),  # any signed-in user
        ("nogrant", Level.EDIT, Resource.MODEL, "not-made-yet", True),  # its route says 404
        ("nogrant", Level.ADMIN, Resource.SERVER, None, False),
        ("member", Level.PROMOTE, Resource.MODEL, "shown", True),  # through the group
        ("member", Level.MANAGE, Resource.MODEL, "shown", False),
        ("member", Level.NONE, Resource.MODEL, "shown", True),
        ("admin", Level.ADMIN, Resource.SERVER, None, True),
        ("admin", Level.MANAGE, Resource.MODEL, "shown", True),
        (None, Level.ADMIN, Resource.SERVER, None, True),  # no --auth: everyone may
    ],
)
def test_can_is_the_rule_the_guard_enforces(team, who, level, resource, key, expected):
    """``can(caller, level, resource, key)``: the plain function a page asks what to show;
    the request-level ``can`` asks it for the signed-in caller."""
    from flask import g

    from mlreg.server.routes import can

    _model(team, "shown")
    access = team.services.access
    access.create_user(ADMIN_ACTOR, "member", "member-password")
    access.create_group(ADMIN_ACTOR, "vision")
    access.set_member(ADMIN_ACTOR, "vision", "member", True)
    access.grant(ADMIN_ACTOR, Resource.MODEL, "shown", "vision", Level.PROMOTE)
    caller = None
    if who is not None:
        caller = access.authenticate_password(who, f"{who}-password", "127.0.0.1")
    assert access.can(caller, level, resource, key) is expected
    with team.app.test_request_context("/"):
        if caller is not None:
            g.caller = caller
        assert can(level, resource, key) is expected


def test_searches_show_only_what_the_caller_may_read(team):
    for name in ("seen", "hidden"):
        _model(team, name)
        team.services.registry_as(ADMIN_ACTOR).begin_version(name, "s", None, None, None, None)
    team.services.access.grant(ADMIN_ACTOR, Resource.MODEL, "seen", "reader", Level.READ)
    names = [
        m["name"] for m in team.call("reader", "GET", "/api/v1/models").json["registered_models"]
    ]
    assert names == ["seen"]
    versions = team.call("reader", "GET", "/api/v1/versions").json["model_versions"]
    assert [v["name"] for v in versions] == ["seen"]
    all_names = [
        m["name"] for m in team.call("admin", "GET", "/api/v1/models").json["registered_models"]
    ]
    assert all_names == ["hidden", "seen"]
    # A not-found message lists the models that exist: only those the caller may read.
    response = team.call("reader", "GET", "/api/v1/resolve", query_string={"uri": "models:/nope/1"})
    assert (
        response.json["message"]
        == "registered model 'nope' does not exist; registered models: seen"
    )
    # Experiments likewise, by search and by name.
    tracking = team.services.tracking_as(ADMIN_ACTOR)
    tracking.create_experiment("visible-exp")
    hidden = tracking.create_experiment("hidden-exp")
    visible = tracking.get_experiment_by_name("visible-exp").experiment_id
    team.services.access.grant(ADMIN_ACTOR, Resource.EXPERIMENT, visible, "reader", Level.READ)
    listed = team.call("reader", "GET", "/api/v1/experiments").json["experiments"]
    assert [e["name"] for e in listed] == ["visible-exp"]
    by_name = team.call("reader", "GET", "/api/v1/experiments", query_string={"name": "hidden-exp"})
    assert by_name.json["experiments"] == []
    response = team.call(
        "reader", "POST", "/api/v1/runs/search", json={"experiment_ids": [visible, hidden]}
    )
    assert response.json == _denied(
        f"reader needs READ on experiment {hidden!r}; they have no permission"
    )


def test_resources_without_any_grant_get_the_default_permission(team):
    """Made before authentication was on, or straight on the database: no grants at all."""
    local = StoreSettings(team.services.registry.store.uri, str(team.home / "local"), "dora")
    with MlregClient(local) as client:
        client.create_registered_model("legacy")
    response = team.call("reader", "GET", "/api/v1/models/legacy")
    assert response.json == _denied("reader needs READ on model 'legacy'; they have no permission")
    team.services.access.default_level = Level.READ  # as --default-permission READ would
    assert team.call("reader", "GET", "/api/v1/models/legacy").status_code == 200
    names = [
        m["name"] for m in team.call("reader", "GET", "/api/v1/models").json["registered_models"]
    ]
    assert names == ["legacy"]


def test_taking_the_last_grant_away_leaves_the_model_private(team):
    _model(team, "solo")
    assert team.call("admin", "DELETE", "/api/v1/models/solo/grants/admin").json["grants"] == [
        {"principal": "everyone", "kind": "group", "level": "NONE"}
    ]
    response = team.call("reader", "GET", "/api/v1/models/solo")
    assert response.json == _denied("reader needs READ on model 'solo'; they have no permission")


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/api/v1/models/m/grants/reader",
            {"permission": "ADMIN"},
            "field 'permission': expected one of 'READ', 'EDIT', 'PROMOTE', 'MANAGE', got 'ADMIN'",
        ),
        (
            "/api/v1/models/m/grants/ghost",
            {"permission": "READ"},
            "user or group 'ghost' does not exist",
        ),
        (
            "/api/v1/models/ghost/grants/reader",
            {"permission": "READ"},
            "registered model 'ghost' does not exist",
        ),
    ],
    ids=["admin-is-not-grantable", "unknown-principal", "unknown-model"],
)
def test_bad_grants_say_why(team, path, body, message):
    _model(team, "m")
    response = team.call("admin", "PUT", path, json=body)
    assert response.json["message"] == message


def test_the_last_admin_cannot_be_deleted_or_demoted(team):
    response = team.call("admin", "DELETE", "/api/v1/users/admin")
    assert (response.status_code, response.json["message"]) == (
        400,
        "'admin' is the last admin; create another admin before deleting it",
    )
    response = team.call("admin", "PATCH", "/api/v1/users/admin", json={"admin": False})
    assert response.json["message"] == "'admin' is the last admin; make another admin first"


def test_the_first_admin_comes_from_the_environment_once(migrated_backend, tmp_path):
    from mlreg.server.access.service import AccessService
    from mlreg.server.access.store import AccessStore
    from mlreg.store.database import open_database

    db = open_database(migrated_backend)
    try:
        access = AccessService(AccessStore(db), Passwords())
        assert access.bootstrap_admin("root", None) is None  # no password: nothing made
        made = access.bootstrap_admin("root", "first-password")
        assert made is not None and made.is_admin
        assert access.bootstrap_admin("root", "second-password") is None
        access.authenticate_password("root", "first-password", "127.0.0.1")
    finally:
        db.close()


# --- Host, Origin, and where the server listens ---------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        ("", "127.0.0.1:5000", 200),
        ("", "[::1]:5000", 200),
        ("", "localhost", 200),
        ("", "10.1.2.3", 200),
        ("", "evil.example", 400),
        ("", "mlreg.internal:5000", 400),
        ("mlreg.internal", "mlreg.internal:5000", 200),
        ("*.svc.cluster.local", "mlreg.ml.svc.cluster.local", 200),
        ("*.svc.cluster.local", "svc.cluster.local.evil.example", 400),
        ("*", "anything.example", 200),
    ],
)
def test_host_header_is_checked(tmp_path, allowed, host, status):
    from mlreg.server.app import create_app

    app = create_app(
        ServerSettings(
            allowed_hosts=allowed, deliver_webhooks=False, store=StoreSettings.for_home(tmp_path)
        )
    )
    try:
        response = app.test_client().get("/health", headers={"Host": host})
        assert response.status_code == status
        if status == 400:
            assert response.json["message"] == (
                f"Host {host!r} is not a name this server answers to; add it to "
                "MLREG_ALLOWED_HOSTS (--allowed-hosts)"
            )
    finally:
        app.extensions["mlreg.server"].close()


def test_cross_origin_requests_are_refused_unless_listed(tmp_path):
    from mlreg.server.app import create_app

    app = create_app(
        ServerSettings(
            cors_origins="https://ui.example",
            deliver_webhooks=False,
            store=StoreSettings.for_home(tmp_path),
        )
    )
    client = app.test_client()
    try:
        refused = client.post(
            "/api/v1/models", json={"name": "x"}, headers={"Origin": "https://evil.example"}
        )
        assert (refused.status_code, refused.json["message"]) == (
            403,
            "origin 'https://evil.example' may not call this server; add it to "
            "MLREG_CORS_ORIGINS (--cors-origins)",
        )
        assert client.get("/api/v1/models").json["registered_models"] == []  # nothing was made
        listed = client.get("/api/v1/models", headers={"Origin": "https://ui.example"})
        assert listed.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        preflight = client.options(
            "/api/v1/models",
            headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        same = client.get("/api/v1/models", headers={"Origin": "http://localhost"})
        assert same.status_code == 200
    finally:
        app.extensions["mlreg.server"].close()


@pytest.mark.parametrize(
    ("flags", "ok"),
    [
        ({"host": "0.0.0.0"}, False),
        ({"host": "10.0.0.5"}, False),
        ({"host": "0.0.0.0", "auth": True}, True),
        ({"host": "0.0.0.0", "allow_unauthenticated": True}, True),
        ({"host": "127.0.0.1"}, True),
        ({"host": "::1"}, True),
    ],
)
def test_no_open_listening_without_authentication(flags, ok):
    if ok:
        ServerSettings(**flags)
        return
    with pytest.raises(InvalidInput) as e:
        ServerSettings(**flags)
    assert e.value.message == (
        f"refusing to listen on {flags['host']} without authentication (anyone who reaches it "
        "could change the registry): start with --auth, or --allow-unauthenticated on a "
        "trusted network"
    )


def test_the_cli_refuses_in_one_line(tmp_path):
    result = CliRunner().invoke(
        main, ["server", "--host", "0.0.0.0", "-p", "0"], env={"MLREG_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: refusing to listen on 0.0.0.0 without authentication (anyone who reaches it "
        "could change the registry): start with --auth, or --allow-unauthenticated on a "
        "trusted network\n"
    )
