"""The ``tfserving`` backend: requests are checked here and computed by TensorFlow Serving.

The HTTP front is the same as with the in-process backend (payload formats, signature
enforcement, errors); only the model call becomes a ``PredictionService.Predict`` over one
long-lived gRPC channel per worker. At start-up the served signature is read with
``GetModelMetadata`` and must match the MLmodel, or the server stops with one line saying
how; afterwards ``/ping`` follows ``ModelService.GetModelStatus``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from mlreg.errors import (
    BackendError,
    BackendUnavailable,
    InvalidInput,
    MLmodelError,
    MlregError,
    ModelNotFound,
    Timeout,
)
from mlreg.models.model import Model
from mlreg.models.serving_export import ServingExport
from mlreg.models.signature import ModelSignature, TensorSpec
from mlreg.models.tensors import TensorIO, TensorPort
from mlreg.pyfunc import PyFuncModel
from mlreg.serving.backends import model_source, version_of
from mlreg.serving.metrics import Metrics, VersionMetrics
from mlreg.serving.settings import ServingSettings
from mlreg.serving.tensor_proto import from_proto, numpy_dtype, to_proto
from mlreg.uris import ResolvedModel

logger = logging.getLogger(__name__)

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
STATE_NAMES = get_model_status_pb2.ModelVersionStatus.State.Name
#: Deadline of the readiness probe's GetModelStatus call.
PROBE_SECONDS = 2.0

# Retry only UNAVAILABLE (the request never reached a server), a few times, quickly; the
# per-request deadline still bounds the whole call. Reconnect quickly after the peer comes
# back, and ping only while calls are in flight (TF Serving, like every gRPC server,
# answers idle pings more often than every 5 minutes with GOAWAY "too_many_pings").
_SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [
                {"service": "tensorflow.serving.PredictionService"},
                {"service": "tensorflow.serving.ModelService"},
            ],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}
CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 1 << 30),
]


class TFServingClient:
    """One model in one TF Serving: Predict, GetModelMetadata and GetModelStatus."""

    def __init__(self, settings: ServingSettings, model_name: str, metrics: VersionMetrics) -> None:
        self.target = str(settings.tfserving_target)
        self.model_name = model_name
        self.version = settings.tfserving_model_version
        self.version_label = settings.tfserving_version_label
        self.signature_name = settings.tfserving_signature
        self.timeout = settings.tfserving_timeout_ms / 1000
        self._metrics = metrics
        self._channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        status = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._predict, self._metadata = predict.Predict, predict.GetModelMetadata
        self._status = status.GetModelStatus

    @property
    def servable(self) -> str:
        """The model as TF Serving knows it, for messages: ``mnist`` version 3 at host:port."""
        if self.version is not None:
            which = f"version {self.version}"
        elif self.version_label:
            which = f"version label {self.version_label!r}"
        else:
            which = "latest version"
        return f"model {self.model_name!r} ({which}) in TensorFlow Serving at {self.target}"

    def _spec(self, spec: model_pb2.ModelSpec, signature: bool = True) -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        elif self.version_label:
            spec.version_label = self.version_label
        if signature:
            spec.signature_name = self.signature_name

    def predict(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Send the named input arrays; the named output arrays."""
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec)
        for name, array in feed.items():
            request.inputs[name].CopyFrom(to_proto(array))
        response = self._call("Predict", self._predict, request, self.timeout)
        return {name: from_proto(proto) for name, proto in response.outputs.items()}

    def signature(self) -> Any:
        """The served SignatureDef (``GetModelMetadata``)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, signature=False)
        response = self._call("GetModelMetadata", self._metadata, request, self.timeout)
        defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(defs)
        if self.signature_name not in defs.signature_def:
            raise MLmodelError(
                f"{self.servable} has no signature {self.signature_name!r} "
                f"(it has {', '.join(_public(defs.signature_def)) or 'none'}); "
                "set MLREG_TFSERVING_SIGNATURE"
            )
        return defs.signature_def[self.signature_name]

    def unready_reason(self) -> str | None:
        """None while TF Serving reports the version AVAILABLE; else why not."""
        request = get_model_status_pb2.GetModelStatusRequest()
        # GetModelStatus ignores version labels: with one, any available version will do.
        self._spec(request.model_spec, signature=False)
        request.model_spec.ClearField("version_label")
        try:
            response = self._call(
                "GetModelStatus", self._status, request, min(self.timeout, PROBE_SECONDS)
            )
        except MlregError as e:
            return e.message
        states = {s.version: s.state for s in response.model_version_status}
        if any(state == AVAILABLE for state in states.values()):
            return None
        found = ", ".join(f"version {v} {STATE_NAMES(s)}" for v, s in sorted(states.items()))
        return f"{self.servable} is not available: {found or 'no versions'}"

    def _call(self, method: str, stub: Callable[..., Any], request: Any, timeout: float) -> Any:
        try:
            response = stub(request, timeout=timeout)
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else grpc.StatusCode.UNKNOWN
            self._metrics.backend_call(method, code.name)
            raise self._error(code, e.details() if isinstance(e, grpc.Call) else str(e))
        self._metrics.backend_call(method, "OK")
        return response

    def _error(self, code: grpc.StatusCode, detail: str | None) -> MlregError:
        detail = (detail or "").strip() or code.name
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidInput(f"TensorFlow Serving refused the request: {detail}")
        if code == grpc.StatusCode.NOT_FOUND:
            return ModelNotFound(f"{self.servable} is not loaded: {detail}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return Timeout(
                f"{self.servable} did not answer within {self.timeout * 1000:g} ms "
                "(MLREG_TFSERVING_TIMEOUT_MS)"
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return BackendUnavailable(
                f"TensorFlow Serving at {self.target} is unreachable (UNAVAILABLE: {detail})"
            )
        return BackendError(f"TensorFlow Serving at {self.target} failed: {code.name}: {detail}")

    def close(self) -> None:
        self._channel.close()


class TFServingPredictor:
    """The pyfunc predictor whose computation happens in TF Serving."""

    def __init__(self, client: TFServingClient, io: TensorIO) -> None:
        self.client = client
        self._io = io

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        outputs = self.client.predict(self._io.feed(data))
        missing = [p.tf_name for p in self._io.outputs if p.tf_name not in outputs]
        if missing:
            raise BackendError(
                f"{self.client.servable} answered without output {', '.join(missing)}"
            )
        return self._io.result(data, outputs)


class TFServingModel(PyFuncModel):
    """A PyFuncModel (MLmodel metadata, signature enforcement) computed by TF Serving."""

    remote = True

    def __init__(self, predictor: TFServingPredictor, metadata: Model, source: ResolvedModel):
        super().__init__(predictor, metadata, source)
        self.client = predictor.client

    def unready_reason(self) -> str | None:
        """None while TF Serving reports the version AVAILABLE; else why not."""
        return self.client.unready_reason()


def connect(
    settings: ServingSettings, source: ResolvedModel | None, metrics: Metrics
) -> TFServingModel:
    """Connect, wait until TF Serving serves the model, and check it serves this signature."""
    source = model_source(settings, source)
    metadata = Model.load(source.path)
    name = settings.tfserving_model_name or source.name or "model"
    client = TFServingClient(settings, name, metrics.of(version_of(source)))
    try:
        served = _served_signature(client)
        inputs, outputs = match_signature(metadata, served, client.servable)
    except BaseException:
        client.close()
        raise
    logger.info("forwarding predictions to %s", client.servable)
    return TFServingModel(TFServingPredictor(client, TensorIO(inputs, outputs)), metadata, source)


def _public(names: Any) -> list[str]:
    """Signature names a caller can use (not TensorFlow's own ``__saved_model_init_op``)."""
    return sorted(n for n in names if not n.startswith("__"))


def _served_signature(client: TFServingClient) -> Any:
    """The served SignatureDef; BackendUnavailable (the server retries the load, and answers
    with this reason meanwhile) while TF Serving is down or still loading the model."""
    try:
        return client.signature()
    except (ModelNotFound, Timeout) as e:
        raise BackendUnavailable(e.message) from None


def match_signature(
    metadata: Model, served: Any, servable: str
) -> tuple[list[TensorPort], list[TensorPort]]:
    """The ports to feed and read, or MLmodelError naming every mismatch in one line."""
    export = ServingExport.of(metadata) or ServingExport()
    problems: list[str] = []
    # No names recorded (MLflow saved the model): the MLmodel uses the signature's names.
    in_map = dict(export.inputs) or {alias: alias for alias in served.inputs}
    out_map = dict(export.outputs) or {alias: alias for alias in served.outputs}
    specs = _tensor_specs(metadata.signature)
    inputs = _ports("input", in_map, served.inputs, specs, problems)
    outputs = _ports("output", out_map, served.outputs, {}, problems)
    extra = sorted(set(served.inputs) - set(in_map.values()))
    if extra:
        problems.append(f"it also requires input {', '.join(extra)}, which the MLmodel lacks")
    if problems:
        raise MLmodelError(
            f"the model does not match what {servable} serves: {'; '.join(problems)}"
        )
    return inputs, outputs


def _tensor_specs(signature: ModelSignature | None) -> dict[str | None, TensorSpec]:
    if signature is None or not signature.inputs.is_tensor_spec():
        return {}
    return {s.name: s for s in signature.inputs.inputs if isinstance(s, TensorSpec)}


def _ports(
    kind: str,
    names: Mapping[str, str],
    served: Mapping[str, Any],
    specs: Mapping[str | None, TensorSpec],
    problems: list[str],
) -> list[TensorPort]:
    ports = []
    for public, tf_name in names.items():
        info = served.get(tf_name)
        if info is None:
            problems.append(
                f"{kind} {public!r} (SavedModel name {tf_name!r}) is not in the served "
                f"signature, which has {', '.join(sorted(served)) or 'none'}"
            )
            continue
        try:
            dtype = np.dtype(str) if info.dtype == types_pb2.DT_STRING else numpy_dtype(info.dtype)
        except ValueError as e:
            problems.append(f"{kind} {public!r}: {e}")
            continue
        dims = info.tensor_shape.dim
        spec = specs.get(public) or (specs.get(None) if len(specs) == 1 else None)
        shape = tuple(int(d.size) for d in dims)
        if info.tensor_shape.unknown_rank:
            shape = spec.shape if spec is not None else (-1,)
        if spec is not None:
            problems.extend(_spec_problems(kind, public, spec, dtype, shape))
        ports.append(TensorPort(public, tf_name, dtype, shape))
    return ports


def _spec_problems(
    kind: str, public: str, spec: TensorSpec, dtype: np.dtype, shape: tuple[int, ...]
) -> list[str]:
    problems = []
    same_kind = spec.dtype.kind in "USO" and dtype.kind in "USO"
    if spec.dtype != dtype and not same_kind:
        problems.append(
            f"{kind} {public!r} is {spec.dtype_name} in the MLmodel but "
            f"{dtype_name_of(dtype)} in TF Serving"
        )
    fits = len(spec.shape) == len(shape) and all(
        a == b or -1 in (a, b) for a, b in zip(spec.shape, shape, strict=True)
    )
    if not fits:
        problems.append(
            f"{kind} {public!r} has shape {list(spec.shape)} in the MLmodel but "
            f"{list(shape)} in TF Serving"
        )
    return problems


def dtype_name_of(dtype: np.dtype) -> str:
    return "string" if dtype.kind in "USO" else dtype.name


__all__ = [
    "TFServingClient",
    "TFServingModel",
    "TFServingPredictor",
    "connect",
    "match_signature",
]
