from __future__ import annotations

import hashlib
import html
import http.server
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from packaging.utils import parse_wheel_filename

from mlreg.version import __version__
from tests.conftest import make_model_dir
from tests.threads import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("MLREG_TEST_BASE_IMAGE", "mlreg-test/python:3.11-bookworm")
BUILD_IMAGE = os.environ.get("MLREG_TEST_BUILD_IMAGE", "mlreg-test/python:3.11-bookworm-build")
MODEL_URI = "models:/mnist/Production"


def mlreg_cli(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """The installed `mlreg` command, exactly as a user runs it."""
    command = shutil.which("mlreg", path=str(Path(sys.executable).parent))
    assert command, "the mlreg console script is not installed next to this Python"
    return subprocess.run(
        [command, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def isolated_pip_env(base: dict[str, str], **pip: str) -> dict[str, str]:
    """``base`` without this machine's pip configuration, plus the given PIP_* settings."""
    env = {k: v for k, v in base.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **pip}


@pytest.fixture
def light_model(tmp_path) -> Path:
    """A model directory with the files a build reads (MLmodel with a signature,
    requirements.txt, python_env.yaml) as save_model writes them, without TensorFlow."""
    path = make_model_dir(tmp_path / "light")
    (path / "requirements.txt").write_text(
        f"mlreg=={__version__}\ntensorflow==2.21.0\nnumpy==2.4.6\n"
    )
    (path / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    )
    return path


@pytest.fixture(scope="session")
def cnn_model(tmp_path_factory) -> Path:
    """The reference CNN, saved by the real flavor (TensorFlow: slow tests only)."""
    from mlreg.tensorflow import save_model
    from tests.tensorflow.zoo import reference_cnn

    path = tmp_path_factory.mktemp("builder") / "cnn"
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 3)).astype(np.float32)
    save_model(reference_cnn(), path, input_example=x)
    return path


@pytest.fixture(scope="session")
def registry_env(cnn_model, tmp_path_factory) -> dict[str, str]:
    """An environment whose registry has the CNN as mnist version 1 in Production.

    Registered with the CLI in this environment only: the session's own MLREG_HOME is left
    alone, so other test modules never see this registry.
    """
    env = {**os.environ, "MLREG_HOME": str(tmp_path_factory.mktemp("builder-registry"))}
    for args in (["register", str(cnn_model), "--name", "mnist"],
                 ["transition", "mnist", "1", "Production"]):  # fmt: skip
        result = mlreg_cli(*args, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    return env


@dataclass(frozen=True)
class WheelhouseRun:
    path: Path
    result: subprocess.CompletedProcess
    seconds: float


@pytest.fixture(scope="session")
def wheelhouse_run(cnn_model, registry_env) -> WheelhouseRun:
    """The README's first command, `mlreg wheelhouse`, with this machine's pip configuration.

    Into a directory kept across sessions (keyed by the model's requirements and mlreg's),
    so only the first session downloads; later ones find every wheel already there.
    """
    key = hashlib.sha256(
        (cnn_model / "requirements.txt").read_bytes() + (ROOT / "setup.cfg").read_bytes()
    ).hexdigest()[:16]
    path = Path.home() / ".cache" / "mlreg-test-wheelhouse" / key
    start = time.monotonic()
    result = mlreg_cli("wheelhouse", "-m", MODEL_URI, "-d", str(path), env=registry_env)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"\nmlreg wheelhouse {seconds:.1f}s: {result.stdout.splitlines()[-2]}")
    return WheelhouseRun(path, result, seconds)


@pytest.fixture(scope="session")
def wheelhouse(wheelhouse_run) -> Path:
    return wheelhouse_run.path


@dataclass
class LocalIndex:
    """A PEP 503 package index on loopback: /simple/ serves a wheelhouse, /empty/simple/
    nothing (every project 404). ``requests`` lists the paths asked for."""

    url: str
    requests: list[str] = field(default_factory=list)

    @property
    def simple(self) -> str:
        return f"{self.url}/simple"

    @property
    def empty(self) -> str:
        return f"{self.url}/empty/simple"


@pytest.fixture(scope="session")
def local_index(wheelhouse, tmp_path_factory):
    root = tmp_path_factory.mktemp("index")
    (root / "files").symlink_to(wheelhouse)
    projects: dict[str, list[str]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        projects.setdefault(parse_wheel_filename(wheel.name)[0], []).append(wheel.name)
    for name, files in projects.items():
        page = root / "simple" / name
        page.mkdir(parents=True)
        links = "".join(f'<a href="/files/{html.escape(f)}">{html.escape(f)}</a>\n' for f in files)
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    index = LocalIndex("")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_request(self, code="-", size="-"):
            index.requests.append(self.path)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}"
    stop = serve_in_thread(server, "package-index")
    yield index
    stop()


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
