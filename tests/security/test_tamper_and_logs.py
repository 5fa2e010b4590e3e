"""The digest cache and a same-size edit; log forging through a request path
(issue 21, items 14 and 11)."""

from __future__ import annotations

import logging
import os

import pytest

from mlreg.errors import DigestMismatch
from mlreg.server.app import ACCESS_LOGGER, create_app
from mlreg.server.settings import ServerSettings
from mlreg.store.settings import StoreSettings
from tests.conftest import make_model_dir


@pytest.fixture
def settings(local_settings):
    return local_settings


def test_a_same_size_edit_with_its_mtime_put_back_is_caught(client, tmp_path):
    version = client.register_model(str(make_model_dir(tmp_path / "m")), "m")
    first = client.resolve("models:/m/1")  # verified and remembered
    weights = first.path / "data" / "weights.bin"
    st = weights.stat()
    weights.write_bytes(b"WEIGHTS")  # same size as b"weights"
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # the timestamp put back
    with pytest.raises(DigestMismatch, match="do not match their recorded digest"):
        client.resolve("models:/m/1")
    assert version.digest == first.digest


def test_a_request_path_cannot_forge_an_access_log_line(tmp_path, caplog):
    app = create_app(ServerSettings(store=StoreSettings.for_home(tmp_path)))
    try:
        with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
            app.test_client().get("/x%0a2026-11-27 12:00:00,000 INFO [1] mlreg: FORGED%0d")
    finally:
        app.extensions["mlreg.server"].close()
    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line
    assert "/x\\x0a2026-11-27" in line and "FORGED\\x0d" in line
    assert record.path == "/x\\x0a2026-11-27 12:00:00,000 INFO [1] mlreg: FORGED\\x0d"
