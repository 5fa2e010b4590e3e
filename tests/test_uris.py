from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlreg.errors import InvalidInput, ModelNotFound
from mlreg.uris import current_version, movable, resolve_model_uri
from tests.conftest import make_model_dir


def test_local_path_and_file_uri(tmp_path):
    src = make_model_dir(tmp_path / "my model")
    assert resolve_model_uri(str(src)).path == src.resolve()
    assert resolve_model_uri(src.as_uri()).path == src.resolve()  # percent-encoded space
    assert resolve_model_uri(str(src / "MLmodel")).path == src.resolve()


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        ("", InvalidInput, "model URI is empty"),
        ("s3://bucket/model", InvalidInput, "unsupported model URI scheme 's3'"),
        ("file://otherhost/x", InvalidInput, "names a remote host"),
        ("/does/not/exist", ModelNotFound, "no model at /does/not/exist: the path does not exist"),
    ],
    ids=["empty", "scheme", "remote-file", "missing"],
)
def test_bad_uris(uri, error, message):
    with pytest.raises(error, match=message):
        resolve_model_uri(uri)


@pytest.mark.slow  # a fresh process per scheme
@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/nosuch/1", "registered model 'nosuch' does not exist"),
        ("runs:/nosuchrun/model", "run 'nosuchrun' does not exist"),
    ],
    ids=["models", "runs"],
)
def test_store_schemes_resolve_through_the_table_in_a_fresh_process(tmp_path, uri, message):
    # Nothing imported mlreg.registry or mlreg.tracking first: the table finds them.
    code = (
        "import sys; from mlreg.uris import resolve_model_uri\n"
        "try:\n"
        f"    resolve_model_uri({uri!r})\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e.message)\n"
    )
    env = {**os.environ, "MLREG_HOME": str(tmp_path / "home")}
    env.pop("MLREG_REGISTRY_URI", None)
    env.pop("MLREG_TRACKING_URI", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert message in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("uri", "can_move"),
    [
        ("models:/mnist@champion", True),
        ("models:/mnist/Production", True),
        ("models:/mnist/latest", True),
        ("models:/mnist/3", False),
        ("/models/mnist", False),
        ("file:///models/mnist", False),
        ("runs:/abc/model", False),
    ],
)
def test_only_stages_aliases_and_latest_can_move(uri, can_move):
    assert movable(uri) is can_move


def test_which_version_a_path_names_is_no_question():
    with pytest.raises(InvalidInput) as e:
        current_version("/models/mnist")
    assert e.value.message == (
        "'/models/mnist' cannot move: only registry URIs (models:/name/<stage>, "
        "models:/name@alias, models:/name/latest) name a different version over time"
    )
