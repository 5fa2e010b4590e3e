from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlreg.tensorflow import save_model
from tests.tensorflow.zoo import reference_cnn

ROOT = Path(__file__).resolve().parents[2]
# pip does not widen a manylinux tag to older ones, so list every glibc up to bookworm's.
PLATFORMS = [
    arg
    for tag in [*(f"manylinux_2_{v}_x86_64" for v in range(36, 16, -1)), "manylinux2014_x86_64"]
    for arg in ("--platform", tag)
]
BASE_IMAGE = os.environ.get("MLREG_TEST_BASE_IMAGE", "mlreg-test/python:3.11-bookworm")
BUILD_IMAGE = os.environ.get("MLREG_TEST_BUILD_IMAGE", "mlreg-test/python:3.11-bookworm-build")


@pytest.fixture(scope="session")
def cnn_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("builder") / "cnn"
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 3)).astype(np.float32)
    save_model(reference_cnn(), path, input_example=x)
    return path


@pytest.fixture(scope="session")
def docker_client():
    """The local engine; skipped without one, but CI must have one (bash .ci/docker.sh)."""
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine for the image tests: {e}")
        pytest.skip(f"no Docker engine ({type(e).__name__}); run `bash .ci/docker.sh` to enable")
    for image in (BASE_IMAGE, BUILD_IMAGE):
        try:
            client.images.get(image)
        except Exception:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs the image {image} (bash .ci/docker.sh)")
            pytest.skip(f"image {image} missing; run `bash .ci/docker.sh`")
    yield client
    client.close()


@pytest.fixture(scope="session")
def wheelhouse(cnn_model, tmp_path_factory) -> Path:
    """Every wheel the image needs, for cp311 manylinux, cached across runs by requirements."""
    reqs = sorted((cnn_model / "requirements.txt").read_text().split())
    reqs = [
        r.replace("tensorflow==", "tensorflow-cpu==") for r in reqs if not r.startswith("mlreg==")
    ]
    mlreg_wheel_dir = tmp_path_factory.mktemp("mlreg-wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(mlreg_wheel_dir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    mlreg_wheel = next(mlreg_wheel_dir.glob("mlreg-*.whl"))
    setup_cfg = (ROOT / "setup.cfg").read_bytes()
    key = hashlib.sha256("\n".join([*reqs, "tfs"]).encode() + setup_cfg).hexdigest()[:16]
    cache = Path.home() / ".cache" / "mlreg-test-wheelhouse" / key
    if not (cache / ".complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "-d",
                str(cache),
                "--only-binary=:all:",
                *PLATFORMS,
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                str(mlreg_wheel),
                *reqs,
            ],
            check=True,
            capture_output=True,
        )
        # TF Serving's client declares the full `tensorflow`; the image installs it --no-deps.
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache),
             "--only-binary=:all:", "tensorflow-serving-api"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (cache / ".complete").write_text("ok")
    house = tmp_path_factory.mktemp("wheelhouse")
    for wheel in cache.glob("*.whl"):
        if not wheel.name.startswith("mlreg-"):
            os.link(wheel, house / wheel.name)
    shutil.copy2(mlreg_wheel, house / mlreg_wheel.name)
    return house
