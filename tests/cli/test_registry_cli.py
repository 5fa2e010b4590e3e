"""The registry commands through click's runner and through the installed `mlreg` script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlreg.cli import main
from mlreg.store import migrate
from mlreg.store.database import make_engine
from tests.conftest import make_model_dir


@pytest.fixture
def env(settings) -> dict[str, str]:
    """The CLI on each store: SQLite, PostgreSQL, or an mlreg server."""
    return {
        "MLREG_HOME": str(settings.home),
        "MLREG_REGISTRY_URI": settings.uri,
        "MLREG_ARTIFACT_ROOT": settings.artifact_root,
        "MLREG_USER": "carol",
    }


@pytest.fixture
def run(env):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, stdin: str | None = None):
        result = runner.invoke(main, list(args), env=env, input=stdin)
        assert result.exit_code == code, (result.output, result.stderr)
        return result

    return invoke


@pytest.fixture
def src(tmp_path) -> Path:
    return make_model_dir(tmp_path / "src")


def test_register_promote_and_inspect(run, src):
    out = run("register", str(src), "--name", "mnist", "--tag", "team=cv", "-d", "first").output
    assert out.startswith("Registered models:/mnist/1 (sha256:")
    data = json.loads(run("register", str(src), "-n", "mnist", "--json").output)
    assert data["version"] == 2 and data["status"] == "READY" and len(data["digest"]) == 64
    assert (
        run("transition", "mnist", "2", "production").output
        == "models:/mnist/2 is now in Production\n"
    )
    table = run("versions", "list", "mnist").output.splitlines()
    assert table[0].split() == [
        "NAME",
        "VERSION",
        "STAGE",
        "STATUS",
        "ALIASES",
        "CREATED",
        "(UTC)",
        "DIGEST",
    ]
    assert table[1].split()[:4] == ["mnist", "2", "Production", "READY"]
    shown = run("versions", "show", "mnist", "1").output
    assert "tags:        team=cv" in shown and "description: first" in shown
    history = json.loads(run("history", "mnist", "--json").output)["items"]
    assert [(h["version"], h["from_stage"], h["to_stage"], h["user"]) for h in history] == [
        (2, "None", "Production", "carol")
    ]
    assert "carol" in run("history", "mnist").output


def test_archive_existing_from_the_cli(run, src):
    for _ in range(2):
        run("register", str(src), "-n", "m")
    run("transition", "m", "1", "Production")
    run("transition", "m", "2", "Production", "--archive-existing")
    listed = json.loads(run("versions", "list", "m", "--stage", "Production", "--json").output)
    assert [v["version"] for v in listed["items"]] == [2]


def test_models_list_show_rename_delete(run, src):
    run("register", str(src), "-n", "alpha")
    run("register", str(src), "-n", "beta")
    listed = json.loads(run("models", "list", "--filter", "al%", "--json").output)
    assert [m["name"] for m in listed["items"]] == ["alpha"]
    run("models", "update", "alpha", "-d", "the first")
    assert "description:    the first" in run("models", "show", "alpha").output
    run("models", "rename", "alpha", "gamma")
    run("models", "delete", "gamma", stdin="n\n", code=1)  # declined: nothing happens
    assert "gamma" in run("models", "list").output
    run("models", "delete", "gamma", "--yes")
    names = [line.split()[0] for line in run("models", "list").output.splitlines()[1:]]
    assert names == ["beta"]
    assert "gamma" not in run("models", "list").output


def test_alias_download_versions_delete_and_gc(run, src, tmp_path):
    run("register", str(src), "-n", "m")
    assert run("alias", "set", "m", "champion", "1").output == "models:/m@champion -> version 1\n"
    run("download", "models:/m@champion", "-d", str(tmp_path / "out"))
    assert (tmp_path / "out" / "data" / "weights.bin").read_bytes() == b"weights"
    run("alias", "delete", "m", "champion")
    run("versions", "delete", "m", "1", "--yes")
    assert run("register", str(src), "-n", "m").output.startswith("Registered models:/m/2")
    assert run("gc", "--dry-run").output.endswith(
        "Would remove 0 versions and 0 temporary copies\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["models", "show", "nope"], 4, "Error: registered model 'nope' does not exist"),
        (["versions", "show", "m", "7"], 4, "Error: version 7 of 'm' does not exist; versions: 1"),
        (
            ["versions", "show", "m", "x"],
            2,
            "Error: invalid version 'x': expected a positive integer",
        ),
        (["transition", "m", "1", "Live"], 2, "Error: unknown stage 'Live'"),
        (["alias", "set", "m", "v1", "1"], 2, "Error: alias 'v1' is reserved"),
        (["register", "/nope", "-n", "m"], 4, "Error: no model at /nope: the path does not exist"),
        (["register", "SRC", "-n", "../x"], 2, "Error: invalid model name '../x'"),
        (["register", "SRC", "-n", "m", "--tag", "novalue"], 2, "Error: invalid tag 'novalue'"),
        (
            ["download", "models:/m/Production", "-d", "OUT"],
            4,
            "Error: no version of 'm' is in stage Production; None: 1",
        ),
    ],
    ids=["model", "version", "bad-version", "stage", "alias", "source", "name", "tag", "stage-uri"],
)
def test_errors_are_one_line_with_the_error_class_exit_code(
    run, src, tmp_path, args, code, message
):
    run("register", str(src), "-n", "m")
    args = [str(src) if a == "SRC" else str(tmp_path / "o") if a == "OUT" else a for a in args]
    result = run(*args, code=code)
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]  # one line
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.output


def test_real_entry_point_exit_codes_and_stderr(env, src):
    mlreg_bin = str(Path(sys.executable).with_name("mlreg"))
    full_env = {**os.environ, **env}
    ok = subprocess.run(
        [mlreg_bin, "register", str(src), "--name", "cli-model"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("Registered models:/cli-model/1")
    missing = subprocess.run(
        [mlreg_bin, "versions", "show", "cli-model", "5"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 4
    assert missing.stderr == "Error: version 5 of 'cli-model' does not exist; versions: 1\n"
    assert missing.stdout == ""


def test_db_upgrade_brings_an_old_schema_to_head(tmp_path, backend):
    env = {"MLREG_HOME": str(tmp_path / "home"), "MLREG_REGISTRY_URI": backend}
    engine = make_engine(backend)
    migrate.upgrade(engine, "0001")
    engine.dispose()
    runner = CliRunner()
    stale = runner.invoke(main, ["models", "list"], env=env)
    assert stale.exit_code == 7
    assert "run `mlreg db upgrade`" in stale.stderr
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert (
        upgraded.exit_code == 0
        and upgraded.output == f"Schema at {migrate.head_revision()} (was 0001)\n"
    )
    assert (
        runner.invoke(main, ["db", "upgrade"], env=env).output
        == f"Schema at {migrate.head_revision()} (up to date)\n"
    )
    assert runner.invoke(main, ["models", "list"], env=env).exit_code == 0
