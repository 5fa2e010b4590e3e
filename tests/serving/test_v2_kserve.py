"""The V2 protocol (REST in JSON and binary, and gRPC) as the KServe SDK's clients speak it.

A second third-party client beside tritonclient (tests/serving/test_v2.py): KServe's
InferenceRESTClient and InferenceGRPCClient run in their own virtualenv (``bash .ci/kserve.sh``;
they pin pandas below 3) against the real server on numpy stand-ins of the models.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.serving import fakes
from tests.serving.data import images, multi_example
from tests.serving.server import Server, free_port

pytestmark = pytest.mark.process  # the KServe SDK's clients run in their own interpreter

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("kserve_client.py")


def kserve_python() -> str:
    found = os.environ.get("MLREG_KSERVE_PYTHON") or str(ROOT / ".ci/kserve-venv/bin/python")
    if not Path(found).exists():
        pytest.skip("no KServe SDK: run `bash .ci/kserve.sh` (or set MLREG_KSERVE_PYTHON)")
    return found


@pytest.fixture(scope="module", params=["cnn", "multi"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, int, fakes.NumpyModel]]:
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"kserve-{kind}")
    grpc_port = free_port()
    server = Server.fake(
        kind, tmp / kind, tmp / "server.log", env={"MLREG_GRPC_PORT": str(grpc_port)}
    )
    model = getattr(fakes, kind)(tmp / "copy" / kind)  # the same model, to compare with
    try:
        server.wait_ready()
        yield server, kind, grpc_port, model
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_the_kserve_sdk_clients_get_what_the_model_predicts(
    served: tuple[Server, str, int, fakes.NumpyModel], tmp_path: Path
) -> None:
    python = kserve_python()
    server, kind, grpc_port, model = served
    if kind == "cnn":
        [name] = model.metadata.flavors["tensorflow"]["serving"]["inputs"]
        arrays = {name: images(3, seed=7)}
        expected = {"output_0": np.asarray(model.predict(arrays[name]))}
        [out] = model.metadata.flavors["tensorflow"]["serving"]["outputs"]
        expected = {out: expected["output_0"]}
    else:
        arrays = multi_example(3, seed=7)
        expected = {k: np.asarray(v) for k, v in model.predict(arrays).items()}
    paths = {}
    for name, array in arrays.items():
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], array)
    spec = {
        "http": server.url,
        "grpc": f"127.0.0.1:{grpc_port}",
        "model": kind,
        "inputs": paths,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [python, str(CLIENT), str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    for ready in ("rest_server_ready", "rest_model_ready", "grpc_server_ready", "grpc_model_ready"):
        assert answers[ready] is True, (ready, answers)
    for transport in ("rest_json", "rest_binary", "grpc"):
        got = answers[transport]
        assert sorted(got) == sorted(expected), (transport, got.keys())
        for out, want in expected.items():
            np.testing.assert_allclose(got[out], want, rtol=1e-6, err_msg=f"{transport} {out}")
    wrong = json.loads(answers["rest_wrong_model"])
    assert wrong["error_code"] == "RESOURCE_DOES_NOT_EXIST", wrong
    assert f"'{kind}'" in wrong["message"], wrong
