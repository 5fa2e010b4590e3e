"""Model archives for Spark executors: unpacked once per digest, refused when changed."""

from __future__ import annotations

import io
import tarfile

import pytest

from mlreg.batch.ship import archive_name, pack, unpack
from mlreg.errors import DigestMismatch
from mlreg.registry.artifacts import dir_digest
from tests.conftest import make_model_dir


@pytest.fixture
def model(tmp_path):
    return make_model_dir(tmp_path / "model")


def test_pack_and_unpack_round_trip(tmp_path, model):
    digest = dir_digest(model)
    archive = pack(model, digest, tmp_path)
    assert archive.name == archive_name(digest) == f"mlreg-model-{digest}.tar"
    target = unpack(archive, digest, tmp_path / "cache")
    assert target == tmp_path / "cache" / digest
    assert dir_digest(target) == digest
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [digest]  # no temp dirs left
    (target / "data" / "weights.bin").write_bytes(b"changed after the check")
    assert unpack(archive, digest, tmp_path / "cache") == target  # checked once, then cached


def test_an_archive_changed_in_transit_is_refused(tmp_path, model):
    digest = dir_digest(model)
    (model / "data" / "weights.bin").write_bytes(b"tampered")
    archive = pack(model, digest, tmp_path)
    with pytest.raises(DigestMismatch) as e:
        unpack(archive, digest, tmp_path / "cache")
    assert e.value.message.startswith(
        f"model archive {archive.name} does not match its digest (expected sha256 {digest[:12]}"
    )
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("name", ["../evil", "/etc/evil"], ids=["dotdot", "absolute"])
def test_an_archive_reaching_outside_is_refused(tmp_path, name):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DigestMismatch, match="which is not a plain file inside the model"):
        unpack(archive, "0" * 64, tmp_path / "cache")
    assert not (tmp_path / "evil").exists()
