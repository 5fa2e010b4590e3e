"""A real image on a real Docker engine: build offline, run, ping, predict, labels, rebuild."""

from __future__ import annotations

import io
import json
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

import mlreg
from mlreg import pyfunc
from mlreg.builder import context as ctx
from mlreg.builder import engine
from mlreg.cli import main
from mlreg.errors import DockerError, InvalidInput
from mlreg.tensorflow import save_model
from tests.builder.conftest import BASE_IMAGE, BUILD_IMAGE
from tests.serving.server import Peer
from tests.tensorflow.zoo import reference_cnn

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MAX_IMAGE_BYTES = 1.2e9
# The targets; vfs (an engine without overlayfs) copies whole file systems and misses them.
MAX_REBUILD_SECONDS = 30
MAX_READY_SECONDS = 15


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


def post(port: int, body: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def registry(cnn_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("image-registry")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLREG_HOME", str(home))
    mlreg.registry.reset_default_client()
    mlreg.register_model(str(cnn_model), "mnist")
    with mlreg.MlregClient() as client:
        client.transition_model_version_stage("mnist", 1, "Production")
    yield home
    mlreg.registry.reset_default_client()
    mp.undo()


@pytest.fixture(scope="module")
def built(docker_client, registry, wheelhouse, tmp_path_factory):
    options = ctx.BuildOptions(
        base_image=BASE_IMAGE, build_image=BUILD_IMAGE, wheelhouse=wheelhouse, offline=True
    )
    context = ctx.write_context(
        "models:/mnist/Production", tmp_path_factory.mktemp("b") / "c", options
    )
    engine.check_base_image(docker_client, BASE_IMAGE, "3.11")
    engine.check_base_image(docker_client, BUILD_IMAGE, "3.11")
    start = time.monotonic()
    image = engine.build(docker_client, context.path, "mlreg-test/mnist:1", progress=lambda _: None)
    image_seconds = time.monotonic() - start
    print(f"\nfull build {image_seconds:.1f}s, size {image.size / 1e6:.0f} MB")
    yield image, image_seconds
    docker_client.images.remove("mlreg-test/mnist:1", force=True)
    # the install stage's image (~1.5 GB) has no tag and nothing else uses it
    docker_client.images.prune(filters={"dangling": True})


def test_image_serves_the_models_predictions(docker_client, built):
    image, _ = built
    assert image.size < MAX_IMAGE_BYTES
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
        model = pyfunc.load_model("models:/mnist/Production")
        answer = post(port, model.serving_input_example)
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
    image, _ = built
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
    image, _ = built
    labels = image.labels
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
    _, first_seconds = built
    save_model(reference_cnn(), tmp_path / "v2", input_example=np.zeros((1, 28, 28, 3), np.float32))
    mlreg.register_model(str(tmp_path / "v2"), "mnist")
    start = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            "build-docker",
            "-m",
            "models:/mnist/2",
            "-n",
            "mlreg-test/mnist:2",
            "--base-image",
            BASE_IMAGE,
            "--build-image",
            BUILD_IMAGE,
            "--wheelhouse",
            str(wheelhouse),
            "--offline",
        ],
    )
    seconds = time.monotonic() - start
    print(f"\nrebuild for a new model version {seconds:.1f}s (full build {first_seconds:.1f}s)")
    try:
        assert result.exit_code == 0, result.output
        image = docker_client.images.get("mlreg-test/mnist:2")
        # progress is a step counter, not the engine's JSON; the end: id, tag, size, next step
        out = result.output
        assert "[1/" in out and '"stream"' not in out
        assert "Built mlreg-test/mnist:2" in out and f"image id: {image.id}" in out
        assert "size:" in out and "docker run -p 8080:8080 mlreg-test/mnist:2" in out
        layers_1 = docker_client.images.get(built[0].id).attrs["RootFS"]["Layers"]
        layers_2 = image.attrs["RootFS"]["Layers"]
        # Only the model layer differs: the base, the user and the virtualenv are shared.
        assert layers_1[:-1] == layers_2[:-1] and layers_1[-1] != layers_2[-1]
        assert image.labels["io.mlreg.model.version"] == "2"
        if fast_storage(docker_client):
            assert seconds < MAX_REBUILD_SECONDS
    finally:
        if docker_client.images.list(name="mlreg-test/mnist:2"):
            docker_client.images.remove("mlreg-test/mnist:2", force=True)


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
        model = pyfunc.load_model("models:/mnist/Production")
        answer = post(port, model.serving_input_example)
        expected = model.predict(model.input_example)
        np.testing.assert_allclose(np.asarray(answer["predictions"]), expected, rtol=1e-5)
    finally:
        container.remove(force=True)


def test_image_forwards_to_tf_serving(docker_client, built, peer):
    image, _ = built
    run_forwarding(docker_client, image.id, peer, MLREG_BACKEND="tfserving")


def test_image_without_tensorflow(docker_client, built, registry, wheelhouse, tmp_path, peer):
    options = ctx.BuildOptions(
        base_image=BASE_IMAGE,
        build_image=BUILD_IMAGE,
        wheelhouse=wheelhouse,
        offline=True,
        without_tensorflow=True,
    )
    context = ctx.write_context("models:/mnist/Production", tmp_path / "c", options)
    image = engine.build(
        docker_client, context.path, "mlreg-test/mnist:slim", progress=lambda _: None
    )
    try:
        full = built[0].size
        print(f"\nwithout TensorFlow {image.size / 1e6:.0f} MB (with: {full / 1e6:.0f} MB)")
        assert image.size < full / 2
        env = docker_client.images.get(image.id).attrs["Config"]["Env"]
        assert "MLREG_BACKEND=tfserving" in env
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
