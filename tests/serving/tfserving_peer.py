"""A TensorFlow Serving stand-in for the tests: real gRPC, TF Serving's protos, real TensorFlow.

``tensorflow_model_server`` cannot be installed here, so this process implements the parts
of its gRPC API that mlreg uses (``PredictionService.Predict`` and ``GetModelMetadata``,
``ModelService.GetModelStatus``) the way TF Serving does: it watches ``--model_base_path``
for numeric version directories, loads the newest with ``tf.saved_model.load`` (states
START → LOADING → AVAILABLE, older ones → END), answers with its status codes and
messages, and returns outputs in the typed ``*_val`` fields as TF Serving does by default.
Test-only switches (``--load_delay_seconds``, ``--predict_delay_ms``, ``--fail_predict``)
make the slow and failing cases happen on purpose.

Run: python -m tests.serving.tfserving_peer --port 8500 --model_name m --model_base_path DIR
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

State = get_model_status_pb2.ModelVersionStatus
FIELDS = {
    tf.float32: "float_val",
    tf.float64: "double_val",
    tf.int32: "int_val",
    tf.int16: "int_val",
    tf.int8: "int_val",
    tf.uint8: "int_val",
    tf.int64: "int64_val",
    tf.bool: "bool_val",
    tf.string: "string_val",
}


@dataclass
class Version:
    number: int
    state: int = State.START
    loaded: Any = None
    signature_defs: dict[str, Any] = field(default_factory=dict)


class Servables:
    """One model's versions under its base path, as TF Serving's file system source sees them."""

    def __init__(self, name: str, base: Path, load_delay: float, labels: dict[str, int]) -> None:
        self.name = name
        self.labels = labels
        self.base = base
        self.load_delay = load_delay
        self.versions: dict[int, Version] = {}
        self.lock = threading.Lock()

    def poll(self) -> None:
        on_disk = sorted(
            int(p.name) for p in self.base.glob("*") if p.name.isdigit() and p.is_dir()
        )
        wanted = on_disk[-1:]  # the default version policy: the latest version only
        for number in wanted:
            if number not in self.versions or self.versions[number].state == State.END:
                self._load(number)
        with self.lock:
            for number, version in self.versions.items():
                if number not in wanted and version.state == State.AVAILABLE:
                    version.state, version.loaded = State.END, None

    def _load(self, number: int) -> None:
        version = Version(number, State.LOADING)
        with self.lock:
            self.versions[number] = version
        time.sleep(self.load_delay)
        path = self.base / str(number)
        meta = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        version.signature_defs = dict(meta.meta_graphs[0].signature_def)
        version.loaded = tf.saved_model.load(str(path))
        with self.lock:
            version.state = State.AVAILABLE

    def resolve(self, spec: Any, context: grpc.ServicerContext) -> Version:
        """The version a ModelSpec asks for, or abort as TF Serving's ServerCore does."""
        with self.lock:
            available = {n: v for n, v in self.versions.items() if v.state == State.AVAILABLE}
        if spec.HasField("version"):
            wanted = spec.version.value
            request = f"Specific({spec.name}, {wanted})"
        elif spec.version_label:
            labels = self.labels if spec.name == self.name else {}
            if spec.version_label not in labels:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {spec.version_label}",
                )
            wanted = labels[spec.version_label]
            request = f"Specific({spec.name}, {wanted})"
        else:
            wanted = max(available) if available else None
            request = f"Latest({spec.name})"
        if spec.name != self.name or wanted not in available:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
        return available[wanted]


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, servables: Servables, options: argparse.Namespace) -> None:
        self.servables = servables
        self.options = options

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.options.predict_delay_ms:
            time.sleep(self.options.predict_delay_ms / 1000)
        if self.options.fail_predict:
            code = grpc.StatusCode[self.options.fail_predict]
            context.abort(code, f"injected {code.name} for the test")
        version = self.servables.resolve(request.model_spec, context)
        name = request.model_spec.signature_name or "serving_default"
        if name not in version.signature_defs:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature name: "{name}" not found in signature def',
            )
        signature = version.signature_defs[name]
        expected = set(signature.inputs)
        for alias in request.inputs:
            if alias not in expected:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input tensor alias not found in signature: {alias}. Inputs expected to "
                    f"be in the set {{{','.join(sorted(expected))}}}.",
                )
        missing = sorted(expected - set(request.inputs))
        if missing:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Request inputs do not match required inputs for model `{request.model_spec.name}`"
                f". Send extra: {{}}. Missing but required: {{{','.join(missing)}}}.",
            )
        feed = {}
        for i, alias in enumerate(sorted(request.inputs)):
            proto = request.inputs[alias]
            want = signature.inputs[alias].dtype
            if proto.dtype != want:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Expects arg[{i}] to be {tf.as_dtype(want).name} but "
                    f"{tf.as_dtype(proto.dtype).name} is provided",
                )
            feed[alias] = tf.constant(tf.make_ndarray(proto))
        try:
            result = version.loaded.signatures[name](**feed)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e).splitlines()[0])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version.number
        response.model_spec.signature_name = name
        wanted = request.output_filter or list(signature.outputs)
        for alias in wanted:
            response.outputs[alias].CopyFrom(as_proto_field(result[alias].numpy()))
        return response

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.metadata_field:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "GetModelMetadataRequest must specify at least one metadata_field",
            )
        for name in request.metadata_field:
            if name != "signature_def":
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {name} is not supported"
                )
        version = self.servables.resolve(request.model_spec, context)
        defs = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in version.signature_defs.items():
            defs.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version.number
        response.metadata["signature_def"].Pack(defs)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, servables: Servables) -> None:
        self.servables = servables

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.HasField("model_spec"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        spec = request.model_spec
        with self.servables.lock:
            known = {} if spec.name != self.servables.name else dict(self.servables.versions)
        response = get_model_status_pb2.GetModelStatusResponse()
        if spec.HasField("version"):
            if spec.version.value not in known:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {spec.version.value} of model {spec.name}",
                )
            known = {spec.version.value: known[spec.version.value]}
        elif not known:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        for number, version in sorted(known.items()):
            response.model_version_status.add(version=number, state=version.state)
        return response


def as_proto_field(array: Any) -> Any:
    """A TensorProto with the values in the typed field (TF Serving's AsProtoField)."""
    dtype = tf.as_dtype(array.dtype)
    proto = tf.make_tensor_proto([], dtype=dtype, shape=[0])
    proto.ClearField("tensor_content")
    proto.tensor_shape.ClearField("dim")
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, FIELDS[dtype]).extend(array.ravel().tolist())
    return proto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_base_path", type=Path, required=True)
    parser.add_argument("--version_label", action="append", default=[], help="label=version")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=0.2)
    parser.add_argument("--load_delay_seconds", type=float, default=0.0)
    parser.add_argument("--predict_delay_ms", type=float, default=0.0)
    parser.add_argument("--fail_predict", default=None, help="a grpc.StatusCode name")
    options = parser.parse_args()
    labels = {k: int(v) for k, _, v in (item.partition("=") for item in options.version_label)}
    servables = Servables(
        options.model_name, options.model_base_path, options.load_delay_seconds, labels
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(servables, options), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(servables), server)
    server.add_insecure_port(f"127.0.0.1:{options.port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"peer listening on 127.0.0.1:{options.port}", flush=True)
    while not stop.wait(options.file_system_poll_wait_seconds):
        servables.poll()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
