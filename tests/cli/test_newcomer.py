"""What a newcomer meets first: which store mlreg uses, reading without creating one, one
--json shape for listings, the messages that say what to do, register's and download's
reports, the prompts that say what a delete touches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlreg
from mlreg.cli import main
from mlreg.registry import reset_default_client
from mlreg.store import migrate
from mlreg.tracking import fluent
from tests.conftest import make_model_dir


@pytest.fixture
def home(tmp_path, monkeypatch) -> Iterator[Path]:
    """A fresh MLREG_HOME (not created), with the working directory beside it."""
    monkeypatch.chdir(tmp_path)
    for var in ("MLREG_REGISTRY_URI", "MLREG_TRACKING_URI", "MLREG_ARTIFACT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLREG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLREG_USER", "dora")
    fluent.reset()
    reset_default_client()
    yield tmp_path / "home"
    fluent.reset()
    reset_default_client()


def cli(*args: str, code: int = 0, stdin: str | None = None):
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


@pytest.fixture
def src(tmp_path) -> Path:
    return make_model_dir(tmp_path / "iris-model")


WHERE = "sqlite:///{home}/registry.db (nothing stored there yet)"

READERS = {
    "models-list": (["models", "list"], 0, "stdout", "No registered models in {where}\n"),
    "versions-list": (["versions", "list"], 0, "stdout", "No versions in {where}\n"),
    "experiments-list": (["experiments", "list"], 0, "stdout", "No experiments in {where}\n"),
    "runs-list": (["runs", "list"], 0, "stdout", "No runs in {where}\n"),
    "gc-dry-run": (
        ["gc", "--dry-run"],
        0,
        "stdout",
        "Nothing to remove: nothing is stored at {where}\n",
    ),
    "models-show": (
        ["models", "show", "iris"],
        4,
        "stderr",
        "Error: registered model 'iris' does not exist; there is no registry at {where}\n",
    ),
    "versions-list-name": (
        ["versions", "list", "iris"],
        4,
        "stderr",
        "Error: registered model 'iris' does not exist; there is no registry at {where}\n",
    ),
    "history": (
        ["history", "iris", "--version", "7"],
        4,
        "stderr",
        "Error: registered model 'iris' does not exist; there is no registry at {where}\n",
    ),
    "download": (
        ["download", "models:/iris/1", "-d", "out"],
        4,
        "stderr",
        "Error: cannot resolve models:/iris/1: nothing is stored at {where}\n",
    ),
    "runs-show": (
        ["runs", "show", "abc"],
        4,
        "stderr",
        "Error: run 'abc' does not exist; there are no runs in {where}\n",
    ),
    "runs-list-experiment": (
        ["runs", "list", "-e", "mnist"],
        4,
        "stderr",
        "Error: experiment 'mnist' does not exist; there are no experiments in {where}\n",
    ),
    "artifacts-list": (
        ["artifacts", "list", "--run-id", "abc"],
        4,
        "stderr",
        "Error: run 'abc' does not exist; there are no runs in {where}\n",
    ),
}


@pytest.mark.parametrize(
    ("args", "code", "stream", "expected"), READERS.values(), ids=list(READERS)
)
def test_reading_a_fresh_home_creates_nothing_and_says_where_it_looked(
    home, args, code, stream, expected
):
    result = cli(*args, code=code)
    assert getattr(result, stream) == expected.format(where=WHERE.format(home=home))
    assert not home.exists()
    assert not Path("out").exists()


def test_json_listings_of_a_fresh_home_are_empty_pages(home):
    for args in (["models", "list"], ["versions", "list"], ["experiments", "list"]):
        assert json.loads(cli(*args, "--json").stdout) == {"items": [], "next_page_token": None}
    assert not home.exists()


def test_info_names_the_store_and_creates_nothing(home):
    lines = cli("info").stdout.splitlines()
    assert lines[:5] == [
        f"registry:      sqlite:///{home}/registry.db",
        f"artifact root: {home}/artifacts",
        "user:          dora",
        f"home:          {home}",
        "schema:        - (not created yet)",
    ]
    assert lines[5].startswith("versions:      mlreg 0.1.0, python 3.")
    assert not home.exists()
    cli("experiments", "create", "x")
    doc = json.loads(cli("info", "--json").stdout)
    assert doc["schema_revision"] == doc["schema_head"] == migrate.head_revision()
    assert set(doc["versions"]) == {"mlreg", "python", "tensorflow", "keras", "mlflow"}


def test_info_masks_the_password_and_survives_an_unreachable_database(home, monkeypatch):
    monkeypatch.setenv("MLREG_TRACKING_URI", "postgresql+psycopg://mlreg:s3cret@127.0.0.1:1/db")
    result = cli("info")
    assert "registry:      postgresql+psycopg://mlreg:***@127.0.0.1:1/db\n" in result.stdout
    assert "schema:        - (unreachable: cannot open the registry database" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr


@pytest.mark.process  # a fresh interpreter
def test_info_does_not_import_tensorflow(home):
    code = (
        "import sys; from click.testing import CliRunner; from mlreg.cli import main; "
        "r = CliRunner().invoke(main, ['info', '--json']); assert r.exit_code == 0, r.output; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True, env=dict(os.environ))
    assert out.strip() == "False"


def test_every_listing_has_one_json_shape_and_says_when_there_is_more(home, src):
    for name in ("b", "a", "c"):
        cli("register", str(src), "-n", name)
    mlreg.set_experiment("e")
    with mlreg.start_run() as run:
        mlreg.log_text("x", "notes.txt")
    for args in (
        ["models", "list"],
        ["versions", "list"],
        ["versions", "list", "a"],
        ["history", "a"],
        ["experiments", "list"],
        ["runs", "list", "-e", "e"],
        ["artifacts", "list", "--run-id", run.info.run_id],
    ):
        doc = json.loads(cli(*args, "--json").stdout)
        assert set(doc) == {"items", "next_page_token"}, args
    page = json.loads(cli("models", "list", "--max-results", "2", "--json").stdout)
    assert [m["name"] for m in page["items"]] == ["a", "b"]
    text = cli("models", "list", "--max-results", "2").stdout.splitlines()
    assert text[-1] == f"(more results: add --page-token {page['next_page_token']})"
    rest = cli("models", "list", "--page-token", page["next_page_token"], "--json").stdout
    assert [m["name"] for m in json.loads(rest)["items"]] == ["c"]


def test_times_are_labelled_utc(home, src):
    cli("register", str(src), "-n", "iris")
    cli("transition", "iris", "1", "Staging")
    assert "UPDATED (UTC)" in cli("models", "list").stdout
    assert "CREATED (UTC)" in cli("versions", "list").stdout
    assert "WHEN (UTC)" in cli("history", "iris").stdout
    assert " UTC\n" in cli("versions", "show", "iris", "1").stdout


def test_versions_without_a_name_are_grouped_by_model(home, src):
    for name in ("b", "a", "b", "a"):
        cli("register", str(src), "-n", name)
    rows = [line.split()[:2] for line in cli("versions", "list").stdout.splitlines()[1:]]
    assert rows == [["a", "2"], ["a", "1"], ["b", "2"], ["b", "1"]]


def test_history_of_a_version_that_never_was_is_not_found(home, src):
    cli("register", str(src), "-n", "iris")
    result = cli("history", "iris", "--version", "7", code=4)
    assert result.stderr == "Error: version 7 of 'iris' does not exist; versions: 1\n"
    assert cli("history", "iris", "--version", "1").stdout == (
        "No stage transitions of 'iris' version 1 yet\n"
    )


def test_register_records_an_absolute_source(home, src, tmp_path):
    os.chdir(src.parent)
    cli("register", f"./{src.name}", "-n", "iris")
    shown = json.loads(cli("versions", "show", "iris", "1", "--json").stdout)
    assert shown["source"] == str(src.resolve())


def test_register_refuses_a_run_that_does_not_exist(home, src):
    result = cli("register", str(src), "-n", "iris", "--run-id", "nosuchrun", code=4)
    assert result.stderr.startswith("Error: run 'nosuchrun' does not exist")
    cli("experiments", "create", "x")
    result = cli("register", str(src), "-n", "iris", "--run-id", "nosuchrun", code=4)
    assert result.stderr == "Error: run 'nosuchrun' does not exist\n"
    assert "iris" not in cli("models", "list").stdout
    with mlreg.start_run() as run:
        pass
    cli("register", str(src), "-n", "iris", "--run-id", run.info.run_id)
    assert cli("versions", "show", "iris", "1", "--json").stdout.count(run.info.run_id) == 1


def test_register_says_when_the_files_are_identical_and_can_skip(home, src, tmp_path):
    cli("register", str(src), "-n", "iris")
    second = cli("register", str(src), "-n", "iris").stdout.splitlines()
    assert second[1] == (
        "Note: its files are identical to version 1 of 'iris' (--skip-if-unchanged registers "
        "nothing then)"
    )
    skipped = cli("register", str(src), "-n", "iris", "--skip-if-unchanged").stdout
    assert skipped.startswith("Unchanged: models:/iris/2 has exactly these files (sha256:")
    doc = json.loads(
        cli("register", str(src), "-n", "iris", "--skip-if-unchanged", "--json").stdout
    )
    assert (doc["registered"], doc["version"]) == (False, 2)
    other = make_model_dir(tmp_path / "other", payload=b"other weights")
    doc = json.loads(
        cli("register", str(other), "-n", "iris", "--skip-if-unchanged", "--json").stdout
    )
    assert (doc["registered"], doc["version"], doc["identical_to"]) == (True, 3, [])
    assert json.loads(cli("versions", "list", "iris", "--json").stdout)["items"][0]["version"] == 3


def test_download_says_what_a_stage_or_alias_resolved_to(home, src, tmp_path):
    cli("register", str(src), "-n", "iris")
    cli("register", str(src), "-n", "iris")
    cli("alias", "set", "iris", "champion", "1")
    out = cli("download", "models:/iris@champion", "-d", "a").stdout
    assert out.startswith("Downloaded models:/iris@champion (version 1 of 'iris', sha256:")
    doc = json.loads(cli("download", "models:/iris/latest", "-d", "b", "--json").stdout)
    assert (doc["name"], doc["version"], doc["path"]) == ("iris", 2, str(tmp_path / "b"))
    assert (tmp_path / "b" / "MLmodel").is_file()
    out = cli("download", str(src), "-d", "c").stdout  # a directory, no registry needed
    assert out == f"Downloaded {src} ({src}) to c\n"


def test_deleting_a_version_in_use_names_its_stage_and_aliases(home, src):
    cli("register", str(src), "-n", "iris")
    cli("transition", "iris", "1", "Production")
    cli("alias", "set", "iris", "champion", "1")
    result = cli("versions", "delete", "iris", "1", stdin="n\n", code=1)
    assert result.stdout.startswith(
        "Delete models:/iris/1? It is in Production (models:/iris/Production) and behind "
        "alias models:/iris@champion. [y/N]"
    )
    cli("register", str(src), "-n", "iris")
    result = cli("versions", "delete", "iris", "2", stdin="n\n", code=1)
    assert result.stdout.startswith("Delete models:/iris/2? [y/N]")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["download", "models://iris/1", "-d", "out"],
            2,
            "Error: invalid model URI 'models://iris/1': write models:/<name>/<version|stage|"
            "latest> or models:/<name>@<alias>, with one slash after 'models:' (e.g. "
            "models:/iris/1)\n",
        ),
        (
            ["download", "iris", "-d", "out"],
            4,
            "Error: no model at iris: the path does not exist; 'iris' is a registered model: did "
            "you mean models:/iris/latest?\n",
        ),
        (
            ["serve", "-m", "iris"],
            4,
            "Error: no model at iris: the path does not exist; 'iris' is a registered model: did "
            "you mean models:/iris/latest?\n",
        ),
        (
            ["download", "tulip", "-d", "out"],
            4,
            "Error: no model at tulip: the path does not exist\n",
        ),
    ],
    ids=["double-slash", "name-as-path", "serve-name", "unknown-name"],
)
def test_messages_that_say_what_was_meant(home, src, args, code, message):
    cli("register", str(src), "-n", "iris")
    assert cli(*args, code=code).stderr == message


def test_runs_list_names_the_experiments_there_are(home):
    mlreg.set_experiment("mnist")
    with mlreg.start_run(run_name="r"):
        pass
    result = cli("runs", "list", code=4)
    assert result.stderr == (
        "Error: experiment 'Default' does not exist; experiments: mnist (pass --experiment NAME)\n"
    )
    result = cli("runs", "list", "-e", "iris", code=4)
    assert result.stderr == "Error: experiment 'iris' does not exist; experiments: mnist\n"
    assert cli("runs", "list", "-e", "mnist").stdout.splitlines()[1].split()[1] == "r"
    rows = cli("experiments", "list").stdout.splitlines()
    assert rows[0].split() == ["ID", "NAME", "CREATED", "(UTC)", "ARTIFACTS"]
    assert rows[1].split()[:2] == ["1", "mnist"]


@pytest.mark.parametrize("where", ["local", pytest.param("server", marks=pytest.mark.server)])
def test_runs_delete_and_restore(home, where, request, monkeypatch):
    if where == "server":  # the CLI through the server's delete and restore routes
        monkeypatch.setenv("MLREG_TRACKING_URI", request.getfixturevalue("live_server").url)
        fluent.reset()
    mlreg.set_experiment("mnist")
    ids = []
    for name in ("a", "b"):
        with mlreg.start_run(run_name=name) as run:
            ids.append(run.info.run_id)
    assert cli("runs", "delete", ids[0]).stdout == f"Deleted run {ids[0]}\n"
    listed = json.loads(cli("runs", "list", "-e", "mnist", "--json").stdout)["items"]
    assert [r["run_id"] for r in listed] == [ids[1]]
    deleted = json.loads(
        cli("runs", "list", "-e", "mnist", "--view", "deleted_only", "--json").stdout
    )["items"]
    assert [(r["run_id"], r["lifecycle_stage"]) for r in deleted] == [(ids[0], "deleted")]
    assert "(deleted)" in cli("runs", "show", ids[0]).stdout
    # One unknown id: nothing is deleted.
    result = cli("runs", "delete", ids[1], "0" * 32, code=4)
    assert result.stderr == f"Error: run '{'0' * 32}' does not exist\n"
    assert len(json.loads(cli("runs", "list", "-e", "mnist", "--json").stdout)["items"]) == 1
    assert cli("runs", "restore", ids[0]).stdout == f"Restored run {ids[0]}\n"
    assert len(json.loads(cli("runs", "list", "-e", "mnist", "--json").stdout)["items"]) == 2


def test_artifacts_list_and_download(home, tmp_path):
    with mlreg.start_run() as run:
        mlreg.log_text("hello", "notes/a.txt")
        mlreg.log_dict({"k": 1}, "config.json")
    run_id = run.info.run_id
    rows = cli("artifacts", "list", "--run-id", run_id).stdout.splitlines()
    assert rows == ["PATH         SIZE", "config.json  12", "notes/       -"]
    inner = json.loads(cli("artifacts", "list", "-r", run_id, "-a", "notes", "--json").stdout)
    assert inner == {
        "items": [{"path": "notes/a.txt", "is_dir": False, "size": 5}],
        "next_page_token": None,
    }
    cli("artifacts", "download", "-r", run_id, "-d", "all")
    assert (tmp_path / "all" / "notes" / "a.txt").read_text() == "hello"
    out = cli("artifacts", "download", "-r", run_id, "-a", "notes/a.txt", "-d", "one.txt").stdout
    assert out == f"Downloaded notes/a.txt of run {run_id} to one.txt\n"
    assert (tmp_path / "one.txt").read_text() == "hello"
    result = cli("artifacts", "download", "-r", run_id, "-a", "nope", "-d", "x", code=4)
    assert result.stderr.startswith("Error: ")
    result = cli("artifacts", "download", "-r", run_id, "-d", "all", code=2)
    assert result.stderr == "Error: destination all exists and is not empty\n"


@pytest.mark.parametrize("command", [["serve", "-m", "MODEL"], ["server"]], ids=["serve", "server"])
def test_a_port_in_use_is_one_line_and_exit_14(home, src, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [str(src) if a == "MODEL" else a for a in command]
        result = cli(*args, "--port", str(port), code=14)
    assert result.stderr.splitlines()[-1] == (
        f"Error: port {port} is in use on 127.0.0.1; pick another with --port"
    )
    assert "Traceback" not in result.output
