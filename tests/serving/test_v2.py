"""The Open Inference Protocol (V2) as clients nobody here wrote speak it: Triton's
``tritonclient`` over HTTP (JSON and the binary tensor data extension) and over gRPC.

Against the real server (gunicorn, the HTTP worker, the gRPC service) on numpy stand-ins of
the models (fast), and against ``mlreg serve`` of the TensorFlow CNN (slow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from mlreg.models.signature import format_shape
from mlreg.pyfunc import load_model
from mlreg.serving import ServingSettings, create_app
from mlreg.serving.backends import tensor_names
from mlreg.serving.v2 import output_names
from tests.serving import fakes
from tests.serving.data import FRAME, images, multi_example
from tests.serving.server import Server, free_port


@dataclass
class V2Target:
    """A server and the two V2 clients pointed at it, and the model it should answer with."""

    server: Server
    model: Any
    name: str
    http: thttp.InferenceServerClient
    grpc: tgrpc.InferenceServerClient


def _start(server: Server, model: Any, grpc_port: int) -> V2Target:
    server.wait_ready()
    name = model.source.name or model.source.path.name
    return V2Target(
        server,
        model,
        name,
        thttp.InferenceServerClient(f"127.0.0.1:{server.port}"),
        tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}"),
    )


def _stop(target: V2Target) -> None:
    target.http.close()
    target.grpc.close()
    target.server.stop()
    assert "Traceback" not in target.server.log()


@pytest.fixture(
    scope="module",
    # Real `mlreg serve` processes (on TensorFlow: slow). The requests they refuse are tested
    # in-process below.
    params=[
        *(pytest.param(kind, marks=pytest.mark.process) for kind in ("cnn", "multi", "columns")),
        pytest.param("tf-cnn", marks=pytest.mark.slow),
    ],
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[V2Target]:
    """The fake models in the real server, or (slow) ``mlreg serve`` of the TensorFlow CNN."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"v2-{kind}")
    port = free_port()
    if kind == "tf-cnn":
        cnn_dir = request.getfixturevalue("cnn_dir")
        server = Server(cnn_dir, tmp / "server.log", args=("--grpc-port", str(port)))
        model = load_model(cnn_dir)
    else:
        env = {"MLREG_GRPC_PORT": str(port)}
        server = Server.fake(kind, tmp / kind, tmp / "server.log", env=env)
        model = getattr(fakes, kind)(tmp / "copy" / kind)  # the same model, to compare with
        model.source = type(model.source)(path=tmp / kind, uri=str(tmp / kind))
    server.wait_ready()
    name = model.source.name or model.source.path.name
    target = V2Target(
        server,
        model,
        name,
        thttp.InferenceServerClient(f"127.0.0.1:{server.port}"),
        tgrpc.InferenceServerClient(f"127.0.0.1:{port}"),
    )
    yield target
    target.http.close()
    target.grpc.close()
    server.stop()
    assert "Traceback" not in server.log()


# --- what each model is sent -------------------------------------------------------------------


def inputs_for(target: V2Target) -> dict[str, np.ndarray]:
    """Named input tensors for the target's model, and what it should answer for them."""
    signature = target.model.signature
    if not signature.inputs.is_tensor_spec():
        return {c: FRAME[c].to_numpy() for c in FRAME.columns}
    if signature.inputs.has_input_names():
        return multi_example(3, seed=5)
    [name] = tensor_names(target.model)
    return {name: images(3, seed=5)}


def expected(target: V2Target, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    signature = target.model.signature
    if not signature.inputs.is_tensor_spec():
        result = target.model.predict(FRAME)
    elif signature.inputs.has_input_names():
        result = target.model.predict(tensors)
    else:
        result = target.model.predict(next(iter(tensors.values())))
    if isinstance(result, dict):
        return {k: np.asarray(v) for k, v in result.items()}
    array = np.asarray(result)
    outputs = target.model.metadata.flavors["tensorflow"]["serving"]["outputs"]
    return {next(iter(outputs)): array}


def datatype(array: np.ndarray) -> str:
    return {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32"}[
        array.dtype.name
    ]


def http_infer(target: V2Target, tensors: dict[str, np.ndarray], binary: bool) -> Any:
    inputs = []
    for name, array in tensors.items():
        i = thttp.InferInput(name, list(array.shape), datatype(array))
        i.set_data_from_numpy(array, binary_data=binary)
        inputs.append(i)
    names = output_names(target.model)
    outputs = [thttp.InferRequestedOutput(n, binary_data=binary) for n in names]
    return target.http.infer(target.name, inputs, outputs=outputs)


def grpc_infer(target: V2Target, tensors: dict[str, np.ndarray]) -> Any:
    inputs = []
    for name, array in tensors.items():
        i = tgrpc.InferInput(name, list(array.shape), datatype(array))
        i.set_data_from_numpy(array)
        inputs.append(i)
    return target.grpc.infer(target.name, inputs)


# --- the tests, on both kinds of server ----------------------------------------------------------


def test_health_and_metadata_over_both_transports(target: V2Target) -> None:
    for client in (target.http, target.grpc):
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(target.name)
        assert not client.is_model_ready("another-model")
    meta = target.http.get_model_metadata(target.name)
    assert meta["name"] == target.name
    assert [i["name"] for i in meta["inputs"]] == list(inputs_for(target))
    grpc_meta = target.grpc.get_model_metadata(target.name, as_json=True)
    assert [i["name"] for i in grpc_meta["inputs"]] == list(inputs_for(target))
    assert target.http.get_server_metadata()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_http_infer_answers_what_the_model_predicts(target: V2Target, binary: bool) -> None:
    tensors = inputs_for(target)
    result = http_infer(target, tensors, binary)
    for name, want in expected(target, tensors).items():
        np.testing.assert_allclose(result.as_numpy(name), want, rtol=1e-6)


def test_grpc_infer_answers_what_the_model_predicts(target: V2Target) -> None:
    tensors = inputs_for(target)
    result = grpc_infer(target, tensors)
    for name, want in expected(target, tensors).items():
        np.testing.assert_allclose(result.as_numpy(name), want, rtol=1e-6)


def test_a_wrong_input_name_is_refused_with_the_same_text_everywhere(target: V2Target) -> None:
    tensors = {"any_name": next(iter(inputs_for(target).values()))}
    names = ", ".join(repr(n) for n in inputs_for(target))
    message = f"unexpected input 'any_name'; expected inputs: {names}"
    with pytest.raises(InferenceServerException) as http_error:
        http_infer(target, tensors, binary=True)
    assert http_error.value.message() == message
    assert http_error.value.status() == "400"
    with pytest.raises(InferenceServerException) as grpc_error:
        grpc_infer(target, tensors)
    assert grpc_error.value.message() == message
    assert grpc_error.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_a_wrong_shape_gets_enforcement_s_message(target: V2Target) -> None:
    if not target.model.signature.inputs.is_tensor_spec():
        pytest.skip("columns have no shape to get wrong")
    tensors = {k: v[:, :1] for k, v in inputs_for(target).items()}
    spec = target.model.signature.inputs.inputs[0]
    label = f"input '{spec.name}'" if spec.name else "input"
    got = tuple(next(iter(tensors.values())).shape)
    with pytest.raises(InferenceServerException) as e:
        grpc_infer(target, tensors)
    assert e.value.message() == (
        f"{label}: expected shape {format_shape(spec.shape)}, got {format_shape(got)}"
    )


# --- protocol details, in this process ---------------------------------------------------------


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> fakes.NumpyModel:
    return fakes.cnn(tmp_path_factory.mktemp("v2-app") / "cnn")


@pytest.fixture(scope="module")
def client(cnn: fakes.NumpyModel) -> Any:
    return create_app(ServingSettings(), model=cnn).test_client()


def infer_body(**tensor: Any) -> dict:
    base = {"name": "image", "shape": [1, 28, 28, 3], "datatype": "FP32"}
    return {"inputs": [{**base, **tensor}]}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"inputs": []}, 400, "'inputs': expected a non-empty list of tensors"),
        ({"inputs": [{"name": "image"}]}, 400, "inputs[0]: missing 'shape', 'datatype'"),
        (
            infer_body(datatype="FP8", data=[1.0]),
            400,
            "input 'image': unsupported datatype 'FP8'; expected one of BOOL, UINT8, UINT16, "
            "UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES",
        ),
        (
            infer_body(data=[1.0, 2.0]),
            400,
            "input 'image': shape [1, 28, 28, 3] holds 2352 values, 'data' has 2",
        ),
        (
            infer_body(shape=[1, -2], data=[1.0]),
            400,
            "input 'image': 'shape' must be a list of at most 32 integers >= 0, got [1, -2]",
        ),
        (infer_body(), 400, "input 'image': no 'data' and no binary_data_size"),
        (
            infer_body(datatype="INT32", data=[0.5] * 2352),
            400,
            "input 'image': INT32 data must be whole numbers, got 0.5",
        ),
        (
            infer_body(datatype="BYTES", data=["a"] * 2352),
            400,
            "input: expected float32, got strings",
        ),
        (
            {**infer_body(data=[0.0] * 2352), "extra": 1},
            400,
            "unknown field 'extra'; expected 'inputs' and optionally 'id', 'parameters', 'outputs'",
        ),
        (
            {**infer_body(data=[0.0] * 2352), "outputs": [{"name": "logits"}]},
            400,
            "unknown output 'logits'; the model's outputs: 'probs'",
        ),
    ],
    ids=[
        "no-inputs",
        "missing-fields",
        "datatype",
        "count",
        "negative-dim",
        "no-data",
        "fraction-in-ints",
        "strings",
        "unknown-field",
        "unknown-output",
    ],
)
def test_bad_v2_requests_are_400s_that_say_why(
    client: Any, body: dict, status: int, message: str
) -> None:
    r = client.post("/v2/models/cnn/infer", json=body)
    assert r.status_code == status
    doc = r.get_json()
    assert (doc["message"], doc["error"]) == (message, message)


def test_versions_and_names_in_the_url_are_checked(client: Any) -> None:
    body = infer_body(data=images(1).reshape(-1).tolist())
    assert client.post("/v2/models/cnn/infer", json=body).status_code == 200
    r = client.post("/v2/models/cnn/versions/3/infer", json=body)
    assert r.status_code == 404
    assert r.get_json()["error"] == (
        "version 3 of 'cnn' is not served here; this server serves no version (a model directory)"
    )
    assert client.get("/v2/models/other").status_code == 404


def test_binary_request_and_binary_output(client: Any, cnn: fakes.NumpyModel) -> None:
    x = images(2)
    header = json.dumps(
        {
            "id": "req-7",
            "inputs": [
                {
                    "name": "image",
                    "shape": [2, 28, 28, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    r = client.post(
        "/v2/models/cnn/infer",
        data=header + x.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    size = int(r.headers["Inference-Header-Content-Length"])
    doc = json.loads(r.data[:size])
    assert doc["id"] == "req-7"
    [out] = doc["outputs"]
    assert out == {
        "name": "probs",
        "datatype": "FP32",
        "shape": [2, 2],
        "parameters": {"binary_data_size": 16},
    }
    got = np.frombuffer(r.data[size:], np.float32).reshape(2, 2)
    np.testing.assert_allclose(got, cnn.predict(x), rtol=1e-6)


@pytest.mark.parametrize(
    ("header", "body_tail", "message"),
    [
        ("abc", b"", "Inference-Header-Content-Length: expected the length of the JSON part"),
        ("99999", b"", "Inference-Header-Content-Length: expected the length of the JSON part"),
        (None, b"\x00" * 10, "the request has 10 bytes of binary data no input claims"),
    ],
    ids=["not-a-number", "too-long", "unclaimed"],
)
def test_bad_binary_framing_is_a_400(
    client: Any, header: str | None, body_tail: bytes, message: str
) -> None:
    x = images(1)
    head = json.dumps(infer_body(parameters={"binary_data_size": x.nbytes})).encode()
    length = str(len(head)) if header is None else header
    r = client.post(
        "/v2/models/cnn/infer",
        data=head + x.tobytes() + body_tail,
        headers={"Inference-Header-Content-Length": length},
    )
    assert r.status_code == 400
    assert r.get_json()["error"].startswith(message)
