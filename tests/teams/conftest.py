"""A team's server in this process: the real app (auth on) on SQLite or PostgreSQL, users with
tokens at each level, and worlds of resources to act on."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlreg.server.app import create_app
from mlreg.server.permissions import Level, Resource
from mlreg.server.services import Services
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings
from mlreg.store.journal import Actor
from tests.conftest import make_model_dir
from tests.threads import serve_in_thread

#: The users of the permission matrix and the level each holds on a world's resources.
GRADED = {
    "reader": Level.READ,
    "editor": Level.EDIT,
    "promoter": Level.PROMOTE,
    "manager": Level.MANAGE,
}
PRINCIPALS = ["anonymous", "nogrant", *GRADED, "admin"]
ADMIN_ACTOR = Actor("admin", "test")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Team:
    app: Flask
    client: FlaskClient
    services: Services
    home: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {} if who == "anonymous" else bearer(self.tokens[who])

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers(who), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def close(self) -> None:
        self.services.close()


def make_team(uri: str, home: Path, **overrides: Any) -> Team:
    settings = ServerSettings(
        auth=True,
        deliver_webhooks=overrides.pop("deliver_webhooks", False),
        default_permission=overrides.pop("default_permission", "NONE"),
        store=StoreSettings(uri, str(home / "artifacts"), "server", home=home),
        **overrides,
    )
    app = create_app(settings)
    services: Services = app.extensions["mlreg.server"]
    team = Team(app, app.test_client(), services, home)
    access = services.access
    for name in ["nogrant", *GRADED, "admin"]:
        access.create_user(ADMIN_ACTOR, name, f"{name}-password", admin=name == "admin")
        team.tokens[name] = access.create_token(ADMIN_ACTOR, name, "tests")[1]
    return team


@pytest.fixture
def team(migrated_backend, tmp_path) -> Iterator[Team]:
    made = make_team(migrated_backend, tmp_path / "server")
    yield made
    made.close()


@dataclass
class World:
    """Resources made by the admin, on which each graded user holds their level."""

    tag: str
    model: str
    experiment: str
    experiment_name: str
    run: str
    webhook: int
    victim: str
    victim_token: int
    group: str
    other: str
    logged_model: str = ""


def make_world(team: Team, model_dir: Path) -> World:
    tag = uuid.uuid4().hex[:8]
    services, access = team.services, team.services.access
    registry = services.registry_as(ADMIN_ACTOR)
    tracking = services.tracking_as(ADMIN_ACTOR)
    model = f"m-{tag}"
    ready = registry.begin_version(model, "src", None, None, None, None)
    registry.store_files(ready, model_dir)
    registry.begin_version(model, "src", None, None, None, None)  # version 2, PENDING
    registry.set_alias(model, "champ", 1)
    registry.set_registered_model_tag(model, "k", "v")
    registry.set_model_version_tag(model, 1, "k", "v")
    registry.transition_model_version_stage(model, 1, "Staging")
    experiment_name = f"e-{tag}"
    experiment = tracking.create_experiment(experiment_name)
    tracking.set_experiment_tag(experiment, "k", "v")
    run = tracking.create_run(experiment).info.run_id
    tracking.log_batch(run, metrics=[("loss", 0.5, 0, None)])
    artifact = team.home / f"a-{tag}" / "a.txt"
    artifact.parent.mkdir(parents=True)
    artifact.write_text("artifact")
    tracking.log_artifact(run, artifact)
    logged = tracking.create_logged_model(experiment, "lm", source_run_id=run, tags={"k": "v"})
    tracking.log_owner_file(logged, artifact)
    hook, _ = services.webhooks.create(ADMIN_ACTOR, "http://127.0.0.1:9/hook", None, model)
    victim, other, group = f"v-{tag}", f"o-{tag}", f"g-{tag}"
    access.create_user(ADMIN_ACTOR, victim, None)
    access.create_user(ADMIN_ACTOR, other, None)
    token, _ = access.create_token(ADMIN_ACTOR, victim, "victim's")
    access.create_group(ADMIN_ACTOR, group)
    access.set_member(ADMIN_ACTOR, group, victim, True)
    for who, level in [*GRADED.items(), (victim, Level.READ)]:
        access.grant(ADMIN_ACTOR, Resource.MODEL, model, who, level)
        access.grant(ADMIN_ACTOR, Resource.EXPERIMENT, experiment, who, level)
    return World(
        tag,
        model,
        experiment,
        experiment_name,
        run,
        hook.id,
        victim,
        token.id,
        group,
        other,
        logged.model_id,
    )


@pytest.fixture
def world_dir(tmp_path) -> Path:
    return make_model_dir(tmp_path / "model")


@pytest.fixture(scope="module")
def postgres_matrix_uri(postgres_admin, postgres_template):
    """A PostgreSQL database at the current schema for one module's server."""
    from tests.conftest import _create_database, _drop_database, _uri

    name = _create_database(postgres_admin, postgres_template)
    yield _uri(postgres_admin, name)
    _drop_database(postgres_admin, name)


@dataclass
class LiveTeam:
    """A team's server (auth on) on a real loopback socket, in a thread of this process."""

    url: str
    team: Team
    stop: Any


def start_live_team(uri: str, home: Path, **overrides: Any) -> LiveTeam:
    from werkzeug.serving import make_server

    team = make_team(uri, home, **overrides)
    server = make_server("127.0.0.1", 0, team.app, threaded=True)
    stop_serving = serve_in_thread(server, "live-team")

    def stop() -> None:
        stop_serving()
        team.close()

    return LiveTeam(f"http://127.0.0.1:{server.server_port}", team, stop)


@pytest.fixture
def live_team(migrated_backend, tmp_path) -> Iterator[LiveTeam]:
    live = start_live_team(migrated_backend, tmp_path / "server")
    yield live
    live.stop()
