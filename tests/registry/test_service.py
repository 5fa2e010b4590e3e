"""The registry's rules on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import pytest

from mlreg.errors import (
    AlreadyExists,
    InvalidInput,
    ModelNotFound,
    RegistrationFailed,
    VersionConflict,
)
from mlreg.registry import Stage, VersionStatus
from mlreg.registry.artifacts import dir_digest
from mlreg.store.validation import validate_name
from tests.conftest import make_model_dir


def test_versions_are_numbered_and_ready_with_digest_and_signature(client, model_dir, stored):
    v1 = client.register_model(str(model_dir), "mnist", tags={"team": "cv"}, description="first")
    v2 = client.register_model(str(model_dir), "mnist")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.status is VersionStatus.READY and v1.stage is Stage.NONE
    assert v1.tags == {"team": "cv"} and v1.description == "first"
    assert v1.source == str(model_dir)
    assert v1.signature["inputs"] == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}
    ]
    files = stored("mnist", 1)
    assert v1.digest == dir_digest(files) == dir_digest(model_dir)
    assert (files / "data" / "weights.bin").read_bytes() == b"weights"
    model = client.get_registered_model("mnist")
    assert model.latest_version == 2


def test_deleted_version_number_is_never_reused(client, model_dir, stored):
    for _ in range(3):
        client.register_model(str(model_dir), "m")
    files = stored("m", 3)
    client.delete_model_version("m", 3)
    assert not files.exists()
    assert client.register_model(str(model_dir), "m").version == 4
    with pytest.raises(ModelNotFound, match=r"version 3 of 'm' does not exist; versions: 1, 2, 4"):
        client.get_model_version("m", 3)


def test_transition_is_case_insensitive_and_recorded(client, model_dir):
    client.register_model(str(model_dir), "m")
    v = client.transition_model_version_stage("m", 1, "sTaGiNg", user="bob")
    assert v.stage is Stage.STAGING
    client.transition_model_version_stage("m", 1, "PRODUCTION")
    history = client.get_stage_history("m")
    assert [(h.from_stage.value, h.to_stage.value, h.user) for h in history] == [
        ("None", "Staging", "bob"),
        ("Staging", "Production", "alice"),
    ]


def test_archive_existing_leaves_exactly_one_production_version(client, model_dir):
    for _ in range(3):
        client.register_model(str(model_dir), "m")
    client.transition_model_version_stage("m", 1, "Production")
    client.transition_model_version_stage("m", 2, "Production")
    prod = client.search_model_versions(name="m", stage="production").items
    assert sorted(v.version for v in prod) == [1, 2]  # without the flag both stay
    client.transition_model_version_stage("m", 3, "Production", archive_existing_versions=True)
    prod = client.search_model_versions(name="m", stage="Production").items
    assert [v.version for v in prod] == [3]
    archived = client.search_model_versions(name="m", stage="Archived").items
    assert sorted(v.version for v in archived) == [1, 2]
    moves = [(h.version, h.to_stage.value) for h in client.get_stage_history("m")][-3:]
    assert sorted(moves) == [(1, "Archived"), (2, "Archived"), (3, "Production")]


def test_unknown_stage(client, model_dir):
    client.register_model(str(model_dir), "m")
    with pytest.raises(InvalidInput, match="unknown stage 'prod'; expected one of: None, Staging"):
        client.transition_model_version_stage("m", 1, "prod")


def test_aliases(client, model_dir):
    client.register_model(str(model_dir), "m")
    client.register_model(str(model_dir), "m")
    client.set_alias("m", "champion", 1)
    client.set_alias("m", "champion", 2)  # moves
    assert client.get_version_by_alias("m", "champion").version == 2
    assert client.get_model_version("m", 2).aliases == ["champion"]
    assert client.get_registered_model("m").aliases == {"champion": 2}
    assert client.resolve("models:/m@champion").version == 2
    client.delete_alias("m", "champion")
    with pytest.raises(
        ModelNotFound, match="alias 'champion' of 'm' does not exist; aliases: none"
    ):
        client.resolve("models:/m@champion")


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "reserved"),
        ("V12", "reserved"),
        ("1abc", "invalid alias"),
        ("a/b", "invalid alias"),
        ("", "invalid alias"),
    ],
    ids=["latest", "v-number", "leading-digit", "slash", "empty"],
)
def test_alias_validation(client, model_dir, alias, message):
    client.register_model(str(model_dir), "m")
    with pytest.raises(InvalidInput, match=message):
        client.set_alias("m", alias, 1)


def test_search_models_by_pattern_and_tag_with_paging(client, model_dir):
    for name in ["alpha", "beta", "gamma", "alpine"]:
        client.create_registered_model(name, tags={"kind": "a" if name.startswith("al") else "b"})
    page = client.search_registered_models(name_like="al%")
    assert [m.name for m in page.items] == ["alpha", "alpine"]
    assert [m.name for m in client.search_registered_models(tags={"kind": "b"}).items] == [
        "beta",
        "gamma",
    ]
    first = client.search_registered_models(order_by="name DESC", max_results=3)
    assert [m.name for m in first.items] == ["gamma", "beta", "alpine"]
    rest = client.search_registered_models(
        order_by="name DESC", max_results=3, offset=first.next_offset
    )
    assert [m.name for m in rest.items] == ["alpha"] and rest.next_offset is None
    with pytest.raises(InvalidInput, match="invalid order_by 'size'"):
        client.search_registered_models(order_by="size")


def test_search_versions_by_stage_alias_and_tag(client, model_dir):
    for i in range(4):
        client.register_model(str(model_dir), "m", tags={"parity": str(i % 2)})
    client.transition_model_version_stage("m", 2, "Staging")
    client.set_alias("m", "best", 3)
    assert [v.version for v in client.search_model_versions(name="m").items] == [4, 3, 2, 1]
    assert [
        v.version for v in client.search_model_versions(name="m", order_by="version ASC").items
    ] == [1, 2, 3, 4]
    assert [v.version for v in client.search_model_versions(name="m", stage="staging").items] == [2]
    assert [v.version for v in client.search_model_versions(alias="best").items] == [3]
    assert [
        v.version for v in client.search_model_versions(name="m", tags={"parity": "1"}).items
    ] == [4, 2]


def test_search_versions_by_the_run_that_produced_them(client, model_dir):
    """What a run's page lists: the versions registered from it, across models."""
    client.register_model(str(model_dir), "a", run_id="run-one")
    client.register_model(str(model_dir), "b", run_id="run-two")
    client.register_model(str(model_dir), "b", run_id="run-one")
    found = client.search_model_versions(run_id="run-one", order_by="name ASC").items
    assert [(v.name, v.version) for v in found] == [("a", 1), ("b", 2)]
    assert client.search_model_versions(run_id="run-three").items == []


def test_rename_and_delete(client, model_dir, stored):
    v = client.register_model(str(model_dir), "old")
    client.create_registered_model("taken")
    with pytest.raises(AlreadyExists, match="'taken' already exists"):
        client.rename_registered_model("old", "taken")
    client.rename_registered_model("old", "new")
    assert client.resolve("models:/new/1").version == 1
    files = stored("new", v.version)
    client.delete_registered_model("new")
    assert not files.exists()
    with pytest.raises(
        ModelNotFound, match="registered model 'new' does not exist; registered models: taken"
    ):
        client.get_registered_model("new")


def test_duplicate_model(client):
    client.create_registered_model("m")
    with pytest.raises(AlreadyExists, match="registered model 'm' already exists"):
        client.create_registered_model("m")


# --- model URIs --------------------------------------------------------------------------


def test_each_uri_form(client, model_dir):
    for _ in range(3):
        client.register_model(str(model_dir), "mnist")
    client.transition_model_version_stage("mnist", 2, "Production")
    client.transition_model_version_stage("mnist", 3, "Staging")
    client.set_alias("mnist", "champion", 1)
    cases = {
        "models:/mnist/1": 1,
        "models:/mnist/Production": 2,
        "models:/mnist/production": 2,
        "models:/mnist/Staging": 3,
        "models:/mnist/latest": 3,
        "models:/mnist@champion": 1,
    }
    for uri, version in cases.items():
        resolved = client.resolve(uri)
        assert (resolved.name, resolved.version, resolved.uri) == ("mnist", version, uri)
        assert (resolved.path / "MLmodel").is_file()
        assert resolved.digest == client.get_model_version("mnist", version).digest


def test_newest_version_in_a_stage_wins(client, model_dir):
    for _ in range(3):
        client.register_model(str(model_dir), "m")
    client.transition_model_version_stage("m", 1, "Production")
    client.transition_model_version_stage("m", 3, "Production")
    assert client.resolve("models:/m/Production").version == 3


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        (
            "models:/nope/1",
            ModelNotFound,
            "registered model 'nope' does not exist; registered models: mnist",
        ),
        (
            "models:/mnist/9",
            ModelNotFound,
            "version 9 of 'mnist' does not exist; versions: 1, 2, 3, 4",
        ),
        (
            "models:/mnist/Production",
            ModelNotFound,
            "no version of 'mnist' is in stage Production; None: 1, 2, 3; Staging: 4",
        ),
        (
            "models:/mnist@gone",
            ModelNotFound,
            "alias 'gone' of 'mnist' does not exist; aliases: none",
        ),
        ("models:/mnist/Live", InvalidInput, "unknown stage 'Live'"),
        ("models:/mnist", InvalidInput, "expected models:/<name>/<version|stage|latest>"),
        ("models:/mnist/1/extra", InvalidInput, "expected models:/<name>/<version|stage|latest>"),
        ("models:/../etc/1", InvalidInput, "invalid model name '..'"),
    ],
    ids=["model", "version", "stage", "alias", "bad-stage", "no-ref", "extra", "traversal"],
)
def test_not_found_messages_say_what_exists(client, model_dir, uri, error, message):
    for _ in range(4):
        client.register_model(str(model_dir), "mnist")
    client.transition_model_version_stage("mnist", 4, "Staging")
    with pytest.raises(error) as e:
        client.resolve(uri)
    assert message in e.value.message


def test_latest_without_ready_versions(client):
    client.create_registered_model("empty")
    with pytest.raises(ModelNotFound, match="'empty' has no READY version yet"):
        client.resolve("models:/empty/latest")


def test_source_must_be_a_model(client, tmp_path):
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ModelNotFound, match="has no MLmodel file"):
        client.register_model(str(tmp_path / "notamodel"), "m")
    with pytest.raises(ModelNotFound, match="does not exist"):
        client.register_model(str(tmp_path / "missing"), "m")
    assert client.search_registered_models().items == []


def test_register_from_a_registry_uri(client, model_dir):
    client.register_model(str(model_dir), "a")
    v = client.register_model("models:/a/1", "b")
    assert v.digest == client.get_model_version("a", 1).digest


def test_only_ready_versions_can_be_promoted(client, tmp_path):
    src = make_model_dir(tmp_path / "src")
    (src / "data" / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RegistrationFailed, match="registration of 'm' version 1 failed"):
        client.register_model(str(src), "m")
    with pytest.raises(VersionConflict, match="version 1 of 'm' is FAILED_REGISTRATION"):
        client.transition_model_version_stage("m", 1, "Production")
    with pytest.raises(VersionConflict, match=r"is FAILED_REGISTRATION .*it cannot be loaded"):
        client.resolve("models:/m/1")


@pytest.mark.parametrize(
    "name",
    ["../etc", "a/b", "a\\b", "..", "%2e%2e", "/abs", "", "a" * 129, "-lead", "sp ace"],
    ids=[
        "dotdot",
        "slash",
        "backslash",
        "dots",
        "encoded",
        "absolute",
        "empty",
        "long",
        "dash",
        "space",
    ],
)
def test_model_names_that_could_become_paths_are_rejected(client, model_dir, name, stored):
    with pytest.raises(InvalidInput, match="invalid model name"):
        validate_name(name)
    with pytest.raises(InvalidInput, match="invalid model name"):
        client.register_model(str(model_dir), name)
    assert not any(p.is_file() for p in stored.root.rglob("*"))
