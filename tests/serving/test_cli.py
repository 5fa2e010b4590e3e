"""``mlreg serve`` argument handling, and a model that cannot load stopping the server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlreg.cli.main import main
from tests.serving.data import images
from tests.serving.server import MLREG, Server, free_port


def test_no_model() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"MLREG_MODEL_URI": ""})
    assert result.exit_code == 2
    assert "no model to serve: pass -m URI or set MLREG_MODEL_URI" in result.output


def test_missing_model_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "-m", str(tmp_path / "nope")])
    assert result.exit_code == 4
    assert (
        result.output.strip() == f"Error: no model at {tmp_path / 'nope'}: the path does not exist"
    )


def test_model_uri_from_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve"], env={"MLREG_MODEL_URI": str(tmp_path)})
    assert result.exit_code == 4
    assert "the directory has no MLmodel file" in result.output


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "-m", str(tmp_path)], env={"MLREG_PORT": "http"})
    assert result.exit_code == 2
    assert result.output.strip() == "Error: MLREG_PORT: expected an integer, got 'http'"


def test_flag_value_is_checked_and_the_error_names_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "-m", str(tmp_path), "--workers", "0"])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: --workers: expected an integer >= 1, got 0"
    # The same value from the environment names the variable.
    result = CliRunner().invoke(main, ["serve", "-m", str(tmp_path)], env={"MLREG_WORKERS": "0"})
    assert result.output.strip() == "Error: MLREG_WORKERS: expected an integer >= 1, got 0"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-p", "80000"], "Error: --port: expected a port number 0-65535, got 80000"),
        (["--port", "80000"], "Error: --port: expected a port number 0-65535, got 80000"),
        (["--log-level", "loud"], "Invalid value for '--log-level': 'loud' is not one of"),
        (["--poll-interval", "soon"], "Error: --poll-interval: expected a duration"),
        (["--xla-max-batch", "-1"], "Error: --xla-max-batch: expected an integer 0-64 (0 = off)"),
    ],
)
def test_errors_name_the_flag_that_was_typed(tmp_path: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["serve", "-m", str(tmp_path), *args])
    assert result.exit_code == 2
    assert says in result.output, result.output


def test_log_level_flag_reaches_the_settings(tmp_path: Path) -> None:
    # A valid --log-level passes the settings check; the missing model is the next error.
    result = CliRunner().invoke(main, ["serve", "-m", str(tmp_path), "--log-level", "DEBUG"])
    assert result.exit_code == 4, result.output
    assert "the directory has no MLmodel file" in result.output


def test_help_shows_the_variable_behind_each_flag() -> None:
    from mlreg.cli.serve import serve
    from mlreg.serving.settings import env_var

    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "-p, --port INTEGER" in result.output
    assert "--log-level [debug|info|warning|error|critical]" in result.output
    flags = [p for p in serve.params if p.name != "help"]
    for param in flags:  # every flag is a setting, and its help names the variable
        assert f"[env: {env_var(param.name)}]" in (param.help or ""), param.name
    assert "[env: MLREG_TFSERVING_TARGET]" in " ".join(result.output.split())


@pytest.mark.process  # a fresh interpreter
def test_cli_import_does_not_import_tensorflow() -> None:
    code = "import sys, mlreg.cli.main; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_a_model_that_cannot_load_stops_the_server(cnn_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(cnn_dir, broken)
    (broken / "tfserving" / "1" / "saved_model.pb").unlink()
    proc = subprocess.run(
        [MLREG, "serve", "-m", str(broken), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "model failed to load" in proc.stderr
    assert "Worker failed to boot" in proc.stderr


@pytest.mark.slow
def test_serves_a_registry_uri_resolved_once(cnn_dir: Path, tmp_path: Path) -> None:
    env = {"MLREG_HOME": str(tmp_path / "home")}
    subprocess.run(
        [MLREG, "register", str(cnn_dir), "-n", "mnist"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    server = Server("models:/mnist/latest", tmp_path / "serve.log", env=env).wait_ready()
    try:
        meta = server.get("/metadata").json()
        assert (meta["name"], meta["version"], meta["uri"]) == ("mnist", 1, "models:/mnist/latest")
        assert len(meta["digest"]) == 64
        # The banner says what the URI resolved to, with the digest's start.
        banner = f"serving models:/mnist/latest -> version 1, sha256:{meta['digest'][-64:][:12]} on"
        assert banner in server.log(), server.log()[:2000]
        assert "model ready: models:/mnist/latest (version 1) loaded and warmed up in" in (
            server.log()
        )
        r = server.post("/v1/models/mnist/versions/1:predict", {"instances": images(1).tolist()})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1
        assert server.post("/v1/models/other:predict", {"instances": [[1]]}).status_code == 404
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["-m", "models:/mnist/3", "--follow"],
            {},
            "Error: --follow needs a URI that can name another version later: "
            "models:/name@alias, models:/name/<stage> or models:/name/latest, not "
            "'models:/mnist/3'",
        ),
        (
            ["-m", "models:/mnist@champion", "--follow", "--poll-interval", "soon"],
            {},
            "Error: --poll-interval: expected a duration like 30s, 500ms or 2m, got 'soon'",
        ),
        (
            ["-m", "models:/mnist@champion"],
            {"MLREG_FOLLOW": "true", "MLREG_POLL_INTERVAL": "0s"},
            "Error: MLREG_POLL_INTERVAL: expected a duration > 0, got 0.0",
        ),
    ],
    ids=["fixed-version", "bad-interval-flag", "zero-interval-variable"],
)
def test_follow_settings_are_checked_before_anything_starts(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = CliRunner().invoke(main, ["serve", *args], env=env)
    assert result.exit_code == 2
    assert result.output.strip() == message
