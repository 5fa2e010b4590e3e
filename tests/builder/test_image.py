"""A real image on a real Docker engine: the README's offline recipe, run, predict, labels,
rebuild, the checks before a build and what a failed build says."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import mlreg
from mlreg import pyfunc
from mlreg.builder import engine
from mlreg.builder.context import image_requirements
from mlreg.cli import main
from mlreg.errors import BuildError, DockerError, InvalidInput
from tests.builder.conftest import (
    BASE_IMAGE,
    BUILD_IMAGE,
    MODEL_URI,
    isolated_pip_env,
    mlreg_cli,
)
from tests.serving.server import Peer

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MAX_IMAGE_BYTES = 1.2e9
# The targets; vfs (an engine without overlayfs) copies whole file systems and misses them.
MAX_REBUILD_SECONDS = 30
MAX_READY_SECONDS = 15
IMAGES = ["--base-image", BASE_IMAGE, "--build-image", BUILD_IMAGE]


def fast_storage(client) -> bool:
    return client.info()["Driver"] != "vfs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(container, port: int, start: float, timeout: float = 120) -> float:
    """Seconds from ``start`` (just before ``docker run``) to the first 200 on /ping."""
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        container.reload()
        if container.status == "exited":
            raise AssertionError(f"container exited: {container.logs().decode()[-2000:]}")
        time.sleep(0.25)
    raise AssertionError(f"not ready after {timeout}s: {container.logs().decode()[-2000:]}")


def post(port: int, body: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.status, json.loads(r.read())


@pytest.fixture(scope="module")
def registry(registry_env):
    """This module's in-process calls (pyfunc, MlregClient) see the CLI's registry."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MLREG_HOME", registry_env["MLREG_HOME"])
    mlreg.registry.reset_default_client()
    yield registry_env
    mlreg.registry.reset_default_client()
    mp.undo()


@dataclass(frozen=True)
class Built:
    image: object  # docker.models.images.Image
    seconds: float
    output: str

    @property
    def size(self) -> int:
        return self.image.attrs["Size"]


@pytest.fixture(scope="module")
def built(docker_client, registry, wheelhouse_run):
    """The README's offline recipe, both commands through the installed `mlreg`:
    `mlreg wheelhouse` (the session's wheelhouse_run), then `build-docker --offline`."""
    house = str(wheelhouse_run.path)
    start = time.monotonic()
    result = mlreg_cli(
        "build-docker", "-m", MODEL_URI, "-n", "mlreg-test/mnist:1", *IMAGES,
        "--wheelhouse", house, "--offline", env=registry,
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    image = docker_client.images.get("mlreg-test/mnist:1")
    print(
        f"\nmlreg wheelhouse {wheelhouse_run.seconds:.1f}s; offline build {seconds:.1f}s, "
        f"size {image.attrs['Size'] / 1e6:.0f} MB"
    )
    yield Built(image, seconds, result.stdout)
    docker_client.images.remove("mlreg-test/mnist:1", force=True)
    # the install stage's image (~1.5 GB) has no tag and nothing else uses it
    docker_client.images.prune(filters={"dangling": True})


def test_offline_recipe_builds_with_no_network(built):
    out = built.output
    # the build ran with the engine's network disabled, and said so
    assert "] building mlreg-test/mnist:1 (build network: none); " in out
    assert "sent the build context to the engine: " in out
    assert "step 1/" in out and '"stream"' not in out
    assert f"Built mlreg-test/mnist:1\n  image id: {built.image.id}\n" in out
    assert "docker run -p 8080:8080 mlreg-test/mnist:1" in out


def test_image_serves_the_models_predictions(docker_client, built):
    image = built.image
    assert built.size < MAX_IMAGE_BYTES
    port = free_port()
    start = time.monotonic()
    container = docker_client.containers.run(
        image.id, detach=True, network_mode="host", environment={"MLREG_PORT": str(port)}
    )
    try:
        ready = wait_ready(container, port, start)
        print(f"\nready {ready:.1f}s after docker run")
        if fast_storage(docker_client):
            assert ready < MAX_READY_SECONDS
        model = pyfunc.load_model(MODEL_URI)
        status, answer = post(port, model.serving_input_example)
        assert status == 200
        expected = model.predict(model.input_example)
        np.testing.assert_allclose(np.asarray(answer["predictions"]), expected, rtol=1e-5)
        assert container.attrs["Config"]["User"] == "10001"
        exit_code, out = container.exec_run(["id", "-u"])
        assert exit_code == 0 and out.decode().strip() == "10001"
        health = docker_client.api.inspect_container(container.id)["Config"]["Healthcheck"]
        assert "/ping" in " ".join(health["Test"])
        # strip ran in the build stage only: no binutils (nor pip) in the image
        exit_code, out = container.exec_run(["sh", "-c", "command -v strip ld pip || echo none"])
        assert out.decode().strip() == "none"
    finally:
        container.remove(force=True)


def test_arbitrary_uid_in_group_zero_can_run_it(docker_client, built):
    image = built.image
    port = free_port()
    start = time.monotonic()
    container = docker_client.containers.run(
        image.id,
        detach=True,
        network_mode="host",
        user="123456:0",
        environment={"MLREG_PORT": str(port), "MLREG_THREADS": "2"},
    )
    try:
        wait_ready(container, port, start)
        exit_code, out = container.exec_run(["touch", "/opt/mlreg/work/x"])
        assert exit_code == 0, out
    finally:
        container.remove(force=True)


def test_labels_and_inspect_image(built, registry):
    labels = built.image.labels
    with mlreg.MlregClient() as client:
        digest = client.get_model_version("mnist", 1).digest
    assert labels["io.mlreg.model.name"] == "mnist"
    assert labels["io.mlreg.model.version"] == "1"
    assert labels["io.mlreg.model.stage"] == "Production"
    assert labels["io.mlreg.model.digest"] == f"sha256:{digest}"
    assert labels["org.opencontainers.image.source"] == "models:/mnist/Production"
    assert json.loads(labels["io.mlreg.model.signature"])["inputs"]
    result = CliRunner().invoke(main, ["inspect-image", "mlreg-test/mnist:1"])
    assert result.exit_code == 0
    assert "io.mlreg.model.digest = sha256:" in result.output


def test_new_model_version_reuses_the_dependency_layers(
    docker_client, built, registry, wheelhouse, tmp_path
):
    from mlreg.tensorflow import save_model
    from tests.tensorflow.zoo import reference_cnn

    save_model(reference_cnn(), tmp_path / "v2", input_example=np.zeros((1, 28, 28, 3), np.float32))
    mlreg.register_model(str(tmp_path / "v2"), "mnist")
    start = time.monotonic()
    result = CliRunner().invoke(
        main,
        ["build-docker", "-m", "models:/mnist/2", "-n", "mlreg-test/mnist:2", *IMAGES,
         "--wheelhouse", str(wheelhouse), "--offline", "--json"],
    )  # fmt: skip
    seconds = time.monotonic() - start
    print(f"\nrebuild for a new model version {seconds:.1f}s (full build {built.seconds:.1f}s)")
    try:
        assert result.exit_code == 0, result.output
        image = docker_client.images.get("mlreg-test/mnist:2")
        # --json: one event per line for CI logs, the engine's own JSON never leaks through
        events = [json.loads(line) for line in result.stdout.splitlines()]
        kinds = [e["event"] for e in events]
        assert kinds[0] == "start" and events[0]["network"] == "none"
        assert events[0]["tag"] == "mlreg-test/mnist:2"
        sent = [e for e in events if e["event"] == "context"]
        assert sent[-1]["sent"] == sent[-1]["total"] == events[0]["total"] > 100e6  # the wheels
        steps = [e for e in events if e["event"] == "step"]
        assert [e["step"] for e in steps] == list(range(1, steps[0]["steps"] + 1))
        assert all(e["elapsed"] >= 0 for e in events[:-1]) and "output" not in kinds
        done = events[-1]
        assert done["event"] == "built" and done["image"] == image.id
        assert done["tag"] == "mlreg-test/mnist:2" and done["size"] == image.attrs["Size"]
        assert done["context_bytes"] == events[0]["total"]
        # every step but the model and the labels came from the cache
        cached = {e["step"] for e in events if e["event"] == "cached"}
        assert done["cached_steps"] == len(cached) and done["steps"] == steps[0]["steps"]
        assert not {done["steps"] - 1, done["steps"]} & cached
        layers_1 = built.image.attrs["RootFS"]["Layers"]
        layers_2 = image.attrs["RootFS"]["Layers"]
        # Only the model layer differs: the base, the user and the virtualenv are shared.
        assert layers_1[:-1] == layers_2[:-1] and layers_1[-1] != layers_2[-1]
        assert image.labels["io.mlreg.model.version"] == "2"
        if fast_storage(docker_client):
            assert seconds < MAX_REBUILD_SECONDS
    finally:
        if docker_client.images.list(name="mlreg-test/mnist:2"):
            docker_client.images.remove("mlreg-test/mnist:2", force=True)


def test_offline_build_refused_when_the_wheelhouse_lacks_numpy(
    docker_client, registry, wheelhouse, cnn_model, tmp_path
):
    house = tmp_path / "house"
    house.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        if not wheel.name.startswith("numpy-"):
            os.link(wheel, house / wheel.name)
    numpy = next(
        r for r in (cnn_model / "requirements.txt").read_text().split() if r.startswith("numpy")
    )
    result = mlreg_cli(
        "build-docker", "-m", MODEL_URI, "-n", "mlreg-test/refused:1", *IMAGES,
        "--wheelhouse", str(house), "--offline", env=registry,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    # one line, naming what is missing and the command that fills the wheelhouse
    assert result.stderr == (
        f"Error: wheelhouse {house} lacks {numpy} for cp311 on manylinux_2_36_x86_64 and "
        f"older: fill it with `mlreg wheelhouse -m {MODEL_URI} -d {house}`\n"
    )
    # refused before the build started
    assert result.stdout == ""
    assert not docker_client.images.list(name="mlreg-test/refused")


def test_failed_build_shows_pips_errors_and_the_log(
    docker_client, registry, wheelhouse, local_index, cnn_model, tmp_path
):
    """This machine's pip index reaches pip inside the build; an index without the model's
    requirements fails the install, and the error shows pip's own lines."""
    only_mlreg = tmp_path / "mlreg-only"
    only_mlreg.mkdir()
    for wheel in wheelhouse.glob("mlreg-*.whl"):
        os.link(wheel, only_mlreg / wheel.name)
    env = isolated_pip_env(registry, PIP_INDEX_URL=local_index.empty)
    result = mlreg_cli(
        "build-docker", "-m", MODEL_URI, "-n", "mlreg-test/failed:1", *IMAGES,
        "--wheelhouse", str(only_mlreg), env=env,
    )  # fmt: skip
    assert result.returncode == 11, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: image build failed at step ")
    assert "(RUN set -e; python3 -m venv /opt/mlreg/venv;" in lines[0]
    assert lines[0].endswith("): exit code 1")
    assert f"  | Looking in indexes: {local_index.empty}" in lines
    reqs = image_requirements((cnn_model / "requirements.txt").read_text().split(), gpu=False)
    tf = next(r for r in reqs if r.startswith("tensorflow-cpu"))
    assert f"  | ERROR: No matching distribution found for {tf}" in lines
    assert lines[-2] == (
        f"  No index the build reaches has a wheel of {tf} for this image: make a wheelhouse "
        f"with `mlreg wheelhouse -m {MODEL_URI} -d DIR` and build with --wheelhouse DIR --offline."
    )
    log = Path(lines[-1].removeprefix("  Full log: "))
    text = log.read_text()
    assert text.startswith("Step 1/") and f"ERROR: No matching distribution found for {tf}" in text
    log.unlink()
    assert f"/empty/simple/{tf.split('==')[0]}/" in local_index.requests
    # the progress went as far as the failing step
    assert "step " in result.stdout and not docker_client.images.list(name="mlreg-test/failed")


@pytest.fixture(scope="module")
def peer(cnn_model, tmp_path_factory):
    """The TF Serving test peer on the host's loopback, serving the model's export as cnn."""
    root = tmp_path_factory.mktemp("tfs")
    shutil.copytree(cnn_model / "tfserving" / "1", root / "cnn" / "1")
    peer = Peer("cnn", root / "cnn", root / "peer.log").start()
    yield peer
    peer.stop()


def run_forwarding(docker_client, image_id: str, peer: Peer, **env: str) -> None:
    """Run the image against the peer and check its answer equals the in-process one."""
    port = free_port()
    environment = {
        "MLREG_PORT": str(port),
        "MLREG_TFSERVING_TARGET": peer.target,
        "MLREG_TFSERVING_MODEL_NAME": "cnn",
        **env,
    }
    container = docker_client.containers.run(
        image_id, detach=True, network_mode="host", environment=environment
    )
    try:
        wait_ready(container, port, time.monotonic())
        model = pyfunc.load_model(MODEL_URI)
        status, answer = post(port, model.serving_input_example)
        assert status == 200
        expected = model.predict(model.input_example)
        np.testing.assert_allclose(np.asarray(answer["predictions"]), expected, rtol=1e-5)
    finally:
        container.remove(force=True)


def test_image_forwards_to_tf_serving(docker_client, built, peer):
    run_forwarding(docker_client, built.image.id, peer, MLREG_BACKEND="tfserving")


def test_image_without_tensorflow_built_from_this_machines_index(
    docker_client, built, registry, local_index, peer
):
    """No wheelhouse: pip in the build installs from the index this machine's pip uses (here
    PIP_INDEX_URL), which never reaches the image's layers or history. --quiet: the id only."""
    env = isolated_pip_env(registry, PIP_INDEX_URL=local_index.simple)
    before = len(local_index.requests)
    start = time.monotonic()
    result = mlreg_cli(
        "build-docker", "-m", MODEL_URI, "-n", "mlreg-test/mnist:slim", *IMAGES,
        "--without-tensorflow", "--quiet", env=env,
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        image = docker_client.images.get("mlreg-test/mnist:slim")
        assert result.stdout == f"{image.id}\n" and result.stderr == ""
        fetched = local_index.requests[before:]
        assert any(path.startswith("/files/tensorflow_cpu-") for path in fetched)
        history = json.dumps(image.history()) + json.dumps(image.attrs["Config"])
        assert local_index.url not in history and "PIP_INDEX_URL" not in history
        size = image.attrs["Size"]
        print(
            f"\nwithout TensorFlow, from an index {seconds:.1f}s, {size / 1e6:.0f} MB "
            f"(with: {built.size / 1e6:.0f} MB)"
        )
        assert size < built.size / 2
        assert "MLREG_BACKEND=tfserving" in image.attrs["Config"]["Env"]
        run_forwarding(docker_client, image.id, peer)  # the image's own MLREG_BACKEND
        # no TensorFlow runtime to fall back on: the local backend cannot load the model
        out = docker_client.containers.run(
            image.id,
            ["python", "-c", "import tensorflow as tf; print(hasattr(tf, 'constant'))"],
            remove=True,
        )
        assert out.decode().strip() == "False"
    finally:
        docker_client.images.remove("mlreg-test/mnist:slim", force=True)


def test_build_network_none_has_no_network(docker_client, local_index, tmp_path):
    """What --offline relies on: a build with network "none" cannot even reach the host's
    loopback, where the same step with the host's network can. A failed step that is not
    pip's shows its own last lines, and no advice."""
    port = local_index.url.rsplit(":", 1)[1]
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        f"RUN python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 5); "
        "print('reached the host')\"\n"
    )
    events: list[engine.BuildEvent] = []
    log = tmp_path / "build.log"
    try:
        with pytest.raises(BuildError) as e:
            engine.build(
                docker_client, context, "mlreg-test/network:1", no_cache=True,
                network="none", log=log, on_event=events.append,
            )  # fmt: skip
        lines = e.value.message.splitlines()
        # the step's instruction, shortened to 70 characters
        assert lines[0] == (
            'image build failed at step 2/2 (RUN python3 -c "import socket; '
            "socket.create_connection(('127.0.0.1',…): exit code 1"
        )
        assert lines[-2].startswith("  | ") and "Error" in lines[-2]  # the traceback's last line
        assert lines[-1] == f"  Full log: {log}" and "Traceback" in log.read_text()
        assert events[0].network == "none" and events[-1].event == "failed"
        image = engine.build(
            docker_client, context, "mlreg-test/network:1", no_cache=True, network="host", log=log
        )
        assert "reached the host" in log.read_text() and image.steps == 2
    finally:
        if docker_client.images.list(name="mlreg-test/network"):
            docker_client.images.remove("mlreg-test/network:1", force=True)


def test_base_image_without_python_is_refused(docker_client):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"empty"))
    docker_client.api.import_image_from_data(
        data.getvalue(), repository="mlreg-test/no-python", tag="1"
    )
    try:
        with pytest.raises(DockerError, match="has no usable python3 with the venv module"):
            engine.check_base_image(docker_client, "mlreg-test/no-python:1", "3.11")
        # the probe container is gone even though it could not start
        assert not docker_client.containers.list(
            all=True, filters={"ancestor": "mlreg-test/no-python:1"}
        )
        with pytest.raises(InvalidInput, match=r"saved with Python 3\.12\.1 but base image"):
            engine.check_base_image(docker_client, BASE_IMAGE, "3.12.1")
    finally:
        docker_client.images.remove("mlreg-test/no-python:1", force=True)
