"""Drive a V2 server with the KServe SDK's own clients (InferenceRESTClient, InferenceGRPCClient).

Runs in the KServe virtualenv (``bash .ci/kserve.sh``: its pins differ from mlreg's), not in the
test process, so it imports neither mlreg nor the tests. Usage::

    python kserve_client.py SPEC.json    # prints the answers as one JSON document

SPEC: ``{"http": "http://host:port", "grpc": "host:port", "model": NAME,
"inputs": {NAME: PATH.npy, ...}}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest
from kserve.inference_client import RESTConfig

DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32"}


def request(model: str, arrays: dict[str, np.ndarray], binary: bool) -> InferRequest:
    inputs = []
    for name, array in arrays.items():
        tensor = InferInput(name, list(array.shape), DATATYPES[array.dtype.name])
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return InferRequest(model_name=model, infer_inputs=inputs)


def outputs(response) -> dict[str, list]:
    return {o.name: o.as_numpy().tolist() for o in response.outputs}


async def main(spec: dict) -> dict:
    arrays = {name: np.load(path) for name, path in spec["inputs"].items()}
    model, base = spec["model"], spec["http"]
    answers: dict = {}
    rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        answers["rest_server_ready"] = await rest.is_server_ready(base)
        answers["rest_model_ready"] = await rest.is_model_ready(base, model)
        for kind, binary in (("rest_json", False), ("rest_binary", True)):
            response = await rest.infer(base, request(model, arrays, binary), model_name=model)
            answers[kind] = outputs(response)
        try:
            await rest.infer(base, request("no-such-model", arrays, False), model_name="nope")
        except Exception as e:  # the SDK raises httpx's error with the server's answer
            answers["rest_wrong_model"] = str(getattr(e, "response", None) and e.response.text)
    finally:
        await rest.close()
    grpc = InferenceGRPCClient(spec["grpc"], timeout=30)
    try:
        answers["grpc_server_ready"] = await grpc.is_server_ready()
        answers["grpc_model_ready"] = await grpc.is_model_ready(model)
        answers["grpc"] = outputs(await grpc.infer(request(model, arrays, False)))
    finally:
        await grpc.close()
    return answers


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(asyncio.run(main(json.load(f)))))
