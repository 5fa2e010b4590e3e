"""Symlinks and special files in a directory handed to mlreg (issue 21, item 1).

Before: register, log_artifacts, generate-dockerfile and download copied through symlinks, so
``passwd -> /etc/passwd`` was stored (digest included), handed out and baked into images;
``w -> /dev/zero`` wrote gigabytes; ``a -> .`` grew exponentially. Now every copy walks the
directory with one walker that refuses what leaves it, and loading an unregistered directory
refuses a symlinked model file from outside.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlreg.cli import main
from mlreg.errors import InvalidInput, PayloadTooLarge, RegistrationFailed
from mlreg.models.files import copy_model_files, model_files
from mlreg.registry import MlregClient
from mlreg.store import StoreSettings
from mlreg.tracking import TrackingClient
from tests.conftest import make_model_dir

ATTACKS = {
    "file-outside": lambda d, out: (d / "passwd").symlink_to("/etc/passwd"),
    "dir-outside": lambda d, out: (d / "keys").symlink_to(out),
    "device": lambda d, out: (d / "w").symlink_to("/dev/zero"),
    "loop": lambda d, out: ((d / "a").symlink_to("."), (d / "b").symlink_to(".")),
    "fifo": lambda d, out: os.mkfifo(d / "pipe"),
}
MESSAGES = {
    "file-outside": r"passwd in .* is a symbolic link to /etc/passwd, outside the directory",
    "dir-outside": r"keys in .* is a symbolic link to .*, outside the directory",
    "device": r"w in .* is a symbolic link to /dev/zero, outside the directory",
    "loop": r"a in .* is a symbolic link to a directory or a special file",
    "fifo": r"pipe in .* is not a regular file",
}


@pytest.fixture
def secret_dir(tmp_path) -> Path:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE KEY")
    return secret


@pytest.fixture(params=sorted(ATTACKS))
def poisoned(request, tmp_path, secret_dir) -> tuple[Path, str]:
    model = make_model_dir(tmp_path / "model")
    ATTACKS[request.param](model / "data", secret_dir)
    return model, MESSAGES[request.param]


def test_the_walker_refuses_each_attack_in_one_line(poisoned):
    model, message = poisoned
    with pytest.raises(InvalidInput, match=message) as e:
        model_files(model)
    assert "\n" not in e.value.message


def test_a_link_to_a_file_inside_is_taken_as_that_file(tmp_path):
    model = make_model_dir(tmp_path / "model")
    (model / "data" / "alias.bin").symlink_to("weights.bin")
    copy_model_files(model, tmp_path / "copy")
    copied = tmp_path / "copy" / "data" / "alias.bin"
    assert not copied.is_symlink() and copied.read_bytes() == b"weights"


def test_register_refuses_and_stores_nothing(poisoned, tmp_path):
    model, message = poisoned
    settings = StoreSettings.for_home(tmp_path / "home")
    with MlregClient(settings) as client, pytest.raises(RegistrationFailed, match=message):
        client.register_model(str(model), "m")
    stored = [p for p in (tmp_path / "home" / "artifacts").rglob("*") if p.is_file()]
    assert stored == []


def test_log_artifacts_refuses(poisoned, tmp_path):
    model, message = poisoned
    with TrackingClient(StoreSettings.for_home(tmp_path / "home")) as tracking:
        run = tracking.create_run()
        with pytest.raises(InvalidInput, match=message):
            tracking.log_artifacts(run.info.run_id, model, "model")
    assert not any(p.is_file() for p in (tmp_path / "home" / "artifacts").rglob("*"))


def test_generate_dockerfile_refuses_and_leaves_no_context(poisoned, tmp_path):
    model, message = poisoned
    out = tmp_path / "context"
    result = CliRunner().invoke(
        main, ["generate-dockerfile", "-m", str(model), "-d", str(out), "--no-require-signature"]
    )
    assert result.exit_code == 2, result.output
    assert re.match("Error: data/" + message, result.stderr), result.stderr
    assert not (out / "model").exists()


def test_loading_a_directory_with_a_symlinked_model_file_is_refused(tmp_path, secret_dir):
    from mlreg import pyfunc

    model = make_model_dir(tmp_path / "model")
    (model / "data" / "model.keras").symlink_to(secret_dir / "id_rsa")
    with pytest.raises(InvalidInput, match=r"model.keras in .* is a symbolic link to .*id_rsa"):
        pyfunc.load_model(model)


def test_a_registration_over_the_size_cap_is_refused(tmp_path):
    model = make_model_dir(tmp_path / "model", payload=b"x" * 10_000)
    settings = StoreSettings.for_home(tmp_path / "home")
    settings = StoreSettings(
        settings.uri, settings.artifact_root, "u", settings.home, max_upload_bytes=5_000
    )
    with MlregClient(settings) as client, pytest.raises(RegistrationFailed) as e:
        client.register_model(str(model), "m")
    assert "more than the limit of 5000 bytes (MLREG_MAX_UPLOAD_BYTES)" in e.value.message
    assert isinstance(e.value.__cause__, PayloadTooLarge)
