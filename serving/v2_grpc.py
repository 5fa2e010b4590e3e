"""The Open Inference Protocol (V2) over gRPC: ``inference.GRPCInferenceService`` on
``--grpc-port``, next to the HTTP port, in every worker.

The service and its messages are KServe's ``grpc_predict_v2`` as Triton ships them in
``tritonclient`` (``pip install 'tritonclient[grpc]'``): ServerLive, ServerReady, ModelReady,
ServerMetadata, ModelMetadata and ModelInfer (typed ``contents`` or ``raw_input_contents``);
Triton's own additions answer UNIMPLEMENTED. Requests go through the same decoding, signature
enforcement, runner and metrics as REST; mlreg's errors become gRPC status codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from mlreg.errors import (
    BackendUnavailable,
    InvalidInput,
    MlregError,
    ModelNotFound,
    PayloadTooLarge,
)
from mlreg.serving import v2
from mlreg.serving.app import GrpcCall, GrpcObserver
from mlreg.serving.predict import raw_bytes, served_model
from mlreg.serving.prediction_log import Record
from mlreg.serving.routes import MAX_REQUEST_BYTES_VAR
from mlreg.serving.state import ServingState
from mlreg.serving.v2_routes import EXTENSIONS, describe
from mlreg.version import __version__

logger = logging.getLogger(__name__)

#: mlreg's HTTP statuses as gRPC codes.
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
#: Typed contents fields by V2 datatype (used when raw_input_contents is empty).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The V2 gRPC service over the server's state (the served version, its runner)."""

    def __init__(self, state: ServingState, observe: GrpcObserver) -> None:
        self.state = state
        self._observe = observe

    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return service_pb2.ServerReadyResponse(ready=self.state.unready_reason() is None)

    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return service_pb2.ServerMetadataResponse(
            name="mlreg", version=__version__, extensions=EXTENSIONS
        )

    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        def call() -> Any:
            # Another model is not an error here: it is not ready (as REST's 404 tells).
            served = self.state.current
            ready = served is not None and self.state.unready_reason() is None
            if served is not None:
                model = served_model(served, self.state.settings)
                try:
                    model.check(request.name, request.version or None)
                except ModelNotFound:
                    ready = False
            return service_pb2.ModelReadyResponse(ready=ready)

        return self._call("ModelReady", context, call, request.name)

    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        def call() -> Any:
            with self.state.serving(0) as served:
                model = served_model(served, self.state.settings)
                model.check(request.name, request.version or None)
                doc = describe(served, model)
            meta = service_pb2.ModelMetadataResponse
            return meta(
                name=doc["name"],
                versions=doc["versions"],
                platform=doc["platform"],
                inputs=[meta.TensorMetadata(**t) for t in doc["inputs"]],
                outputs=[meta.TensorMetadata(**t) for t in doc["outputs"]],
            )

        return self._call("ModelMetadata", context, call, request.name)

    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        plog = self.state.prediction_log
        noted: dict[str, Any] | None = {} if plog is not None and plog.sampled() else None
        return self._call(
            "ModelInfer", context, lambda: self._infer(request, noted), request.id, noted
        )

    def _infer(self, request: Any, noted: dict[str, Any] | None) -> Any:
        state = self.state
        with state.serving(state.settings.timeout) as served:
            if noted is not None:
                noted.update(name=served.backend.source.name, version=served.version)
            model = served_model(served, state.settings)
            model.check(request.model_name, request.model_version or None)
            size = sum(len(raw) for raw in request.raw_input_contents)
            limit = state.max_request_bytes()
            if size > limit:
                raise PayloadTooLarge.body(size, limit, MAX_REQUEST_BYTES_VAR)
            decoded = decode_request(request)
            data, params = v2.model_input(decoded, served.backend)
            if noted is not None:
                noted["inputs"] = data
            keep = (lambda enforced: noted.update(inputs=enforced)) if noted is not None else None
            result = served.runner.predict(data, params, keep)
            if noted is not None:
                noted["outputs"] = result
            outputs = v2.output_tensors(result, served.backend, decoded.outputs)
        response = service_pb2.ModelInferResponse(
            model_name=model.name, model_version=model.version, id=request.id
        )
        for tensor in outputs:
            response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            response.raw_output_contents.append(raw_bytes(tensor.array))
        return response

    def _call(
        self,
        method: str,
        context: grpc.ServicerContext,
        call: Callable[[], Any],
        rid: str = "",
        noted: dict[str, Any] | None = None,
    ) -> Any:
        """Run ``call``; count and log it (and, when ``noted`` holds a sampled request's
        inputs and outputs, log the prediction); turn mlreg's errors into gRPC statuses."""
        start = time.perf_counter()
        version = self.state.version

        def observe(status: int, error: tuple[str, str] | None = None) -> None:
            seconds = time.perf_counter() - start
            peer = context.peer()
            self._observe(GrpcCall(method, status, seconds, version, rid, peer, error))
            plog = self.state.prediction_log
            if noted is not None and plog is not None:
                plog.submit(
                    Record(
                        request_id=rid,
                        model_name=noted.get("name"),
                        model_version=noted.get("version", version),
                        protocol="v2-grpc",
                        status=status,
                        seconds=seconds,
                        inputs=noted.get("inputs"),
                        outputs=noted.get("outputs"),
                        error=error,
                    )
                )

        try:
            response = call()
        except MlregError as e:
            observe(e.status_code, (e.error_code, e.message))
            context.abort(CODES.get(e.status_code, grpc.StatusCode.INTERNAL), e.message)
        except Exception as e:  # a bug: the message names the request, the log has the rest
            logger.exception("gRPC %s failed", method)
            observe(500, ("INTERNAL_ERROR", type(e).__name__))
            context.abort(grpc.StatusCode.INTERNAL, f"internal server error ({type(e).__name__})")
        observe(200)
        return response


def decode_request(request: Any) -> v2.InferRequest:
    """A ModelInferRequest as the protocol's request, its tensors as arrays."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
            "send one per input"
        )
    tensors = []
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        if raw:
            tensors.append(v2.tensor_from_bytes(tensor.name, tensor.datatype, shape, raw[i]))
            continue
        field = CONTENTS.get(tensor.datatype)
        values = getattr(tensor.contents, field) if field is not None else []
        data = list(values) if tensor.datatype == "BYTES" else np.asarray(values)
        tensors.append(v2.tensor_from_data(tensor.name, tensor.datatype, shape, data))
    outputs = [v2.RequestedOutput(o.name, binary=True) for o in request.outputs] or None
    return v2.InferRequest(tensors, outputs, request.id or None, _parameters(request.parameters))


def _parameters(parameters: Any) -> dict[str, Any]:
    out = {}
    for key, value in parameters.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, choice) if choice is not None else None
    return out


def start_server(
    state: ServingState, host: str, port: int, threads: int, observe: GrpcObserver
) -> grpc.Server:
    """Serve the V2 gRPC service on ``host:port`` (shared by every worker: SO_REUSEPORT)."""
    limit = state.settings.max_request_bytes or (100 << 20)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlreg-grpc"),
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", limit + (1 << 20)),
            ("grpc.max_send_message_length", -1),
        ],
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(state, observe), server
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise BackendUnavailable(f"cannot listen for gRPC on {address}")
    server.start()
    logger.info("V2 gRPC service listening on %s", address)
    return server


__all__ = ["InferenceService", "decode_request", "start_server"]
