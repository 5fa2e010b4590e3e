"""Names with a trailing newline, empty artifact names, inputs that crashed with a traceback
(issue 21, items 9, 10 and 13)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import mlreg
from mlreg.cli import main
from mlreg.errors import InvalidInput, MLmodelError, NotFound
from mlreg.models.model import Model
from mlreg.store.validation import validate_alias, validate_key, validate_name
from tests.conftest import make_model_dir


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (validate_name, "nl\n"),
        (validate_alias, "champion\n"),
        (lambda v: validate_key("tag", v), "team\n"),
        (lambda v: validate_key("metric", v), "loss\n"),
    ],
    ids=["model-name", "alias", "tag-key", "metric-key"],
)
def test_a_trailing_newline_is_not_a_different_name(check, value):
    with pytest.raises(InvalidInput):
        check(value)
    check(value.rstrip("\n"))  # the same name without it is fine


@pytest.mark.usefixtures("tracking_home")
@pytest.mark.parametrize(
    "log",
    [
        lambda: mlreg.log_text("x", ""),
        lambda: mlreg.log_dict({"a": 1}, ""),
        lambda: mlreg.log_image([[0, 0], [0, 0]], ""),
        lambda: mlreg.log_text("x", "dir/"),
    ],
    ids=["text", "dict", "image", "trailing-slash"],
)
def test_an_empty_artifact_name_is_refused_and_the_run_still_logs(log):
    with mlreg.start_run() as run:
        with pytest.raises(InvalidInput, match="unsafe path"):
            log()
        mlreg.log_text("still fine", "ok.txt")  # the run's artifact root is untouched
    files = mlreg.TrackingClient().list_artifacts(run.info.run_id)
    assert [f.path for f in files] == ["ok.txt"]


@pytest.fixture
def env(tmp_path):
    return {"MLREG_HOME": str(tmp_path / "home"), "MLREG_USER": "u"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["versions", "show", "m", "99999999999999999999999"],
            2,
            "expected a positive integer up to",
        ),
        (["download", "models:/m/99999999999999999999999", "-d", "out"], 2, "up to 2147483647"),
        (["models", "list", "--page-token", "eyJvZmZzZXQiOiAtMX0"], 2, "invalid page_token"),
        (["runs", "list", "--filter", "attributes.end_time > 0"], 0, None),
    ],
    ids=["version", "uri", "offset", "end-time-filter"],
)
def test_inputs_that_crashed_are_one_line_errors_or_work(env, tmp_path, args, code, message):
    runner = CliRunner()
    assert runner.invoke(main, ["register", str(make_model_dir(tmp_path / "src")), "-n", "m"],
                         env=env).exit_code == 0  # fmt: skip
    assert runner.invoke(main, ["experiments", "create", "Default"], env=env).exit_code == 0
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == code, result.output
    if message is not None:
        assert result.stderr.startswith("Error: ") and message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_a_bad_signature_name_in_mlmodel_is_an_mlmodel_error(tmp_path):
    from mlreg.models.serving_export import ServingExport

    with pytest.raises(MLmodelError):
        ServingExport.from_dict({"path": "tfserving", "version": 1, "signature_name": 5})


def test_a_deeply_nested_signature_is_an_mlmodel_error(tmp_path):
    model = make_model_dir(tmp_path / "m")
    deep = "[" * 100_000 + "]" * 100_000
    text = (model / "MLmodel").read_text()
    start = text.index("inputs: '") + len("inputs: '")
    end = text.index("'", start)
    (model / "MLmodel").write_text(text[:start] + deep + text[end:])
    with pytest.raises(MLmodelError):
        Model.load(model)


def test_a_huge_mlmodel_file_is_refused_before_it_is_parsed(tmp_path):
    model = make_model_dir(tmp_path / "m")
    with (model / "MLmodel").open("a") as f:
        f.write("padding: '" + "x" * (20 << 20) + "'\n")
    with pytest.raises(MLmodelError, match="larger than"):
        Model.load(model)


def test_not_found_errors_stay_not_found():
    with pytest.raises(NotFound):
        Model.load("/does/not/exist")
    assert json.dumps({"ok": True})


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("./reg.db", "MLREG_REGISTRY_URI: './reg.db' is not a store URI; expected sqlite:///"),
        ("file:///data/x", "MLREG_REGISTRY_URI: 'file:///data/x' is not a store URI"),
        ("mysql://u:pw@h/db", "'mysql://***@h/db' needs a database driver that is not installed"),
    ],
    ids=["relative-path", "file-uri", "missing-driver"],
)
def test_bad_storage_settings_are_one_line_exit_7(tmp_path, uri, message):
    env = {"MLREG_HOME": str(tmp_path), "MLREG_REGISTRY_URI": uri}
    result = CliRunner().invoke(main, ["models", "list"], env=env)
    assert result.exit_code == 7
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1
    assert "pw" not in result.stderr


def test_an_unwritable_home_names_the_variable():
    # A command that writes (reading commands create nothing, so they need no home).
    result = CliRunner().invoke(
        main, ["experiments", "create", "x"], env={"MLREG_HOME": "/proc/nope"}
    )
    assert result.exit_code == 7
    assert result.stderr == (
        "Error: cannot create the registry database at /proc/nope/registry.db: No such file or "
        "directory; point MLREG_HOME (or MLREG_TRACKING_URI) at a writable place\n"
    )
