"""Backends computed with numpy: the server's whole request path, without TensorFlow.

Each stands for one model of tests/serving/models.py, with the same MLmodel (signature,
input example, the tensorflow flavor's serving section), so a request is decoded, checked
and answered exactly as for the real one; only the arithmetic differs. The HTTP tests run
their assertions against both (the real ones in the slow selection), which keeps these honest.
As MLServer's tests do with their ``SumModel``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlreg.errors import ModelExecutionError
from mlreg.models.enforce import enforce_params, enforce_schema
from mlreg.models.example import load_serving_input_example, save_input_example
from mlreg.models.model import Model
from mlreg.models.serving_export import FLAVOR, ServingExport
from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
from mlreg.models.tensors import TensorIO, TensorPort
from mlreg.uris import ResolvedModel
from tests.serving.data import columns_example, images, multi_example

Tensors = dict[str, np.ndarray]


class NumpyModel:
    """A Backend (mlreg.serving.backends) whose model is a numpy function of named tensors."""

    remote = False

    def __init__(
        self,
        root: Path,
        metadata: Model,
        fn: Callable[[Tensors], Tensors],
        inputs: list[TensorPort],
        outputs: list[TensorPort],
    ) -> None:
        self.metadata = metadata
        self.source = ResolvedModel(path=root, uri=str(root))
        self._fn = fn
        # The same conversions as the in-process and TF Serving predictors.
        self._io = TensorIO(inputs, outputs)

    @classmethod
    def save(
        cls,
        root: Path,
        signature: ModelSignature,
        fn: Callable[[Tensors], Tensors],
        inputs: list[TensorPort],
        outputs: list[TensorPort],
        example: Any,
    ) -> NumpyModel:
        """Write the model's MLmodel and input example into ``root``, as save_model would."""
        root.mkdir(parents=True)
        export = ServingExport(
            inputs={p.name: p.tf_name for p in inputs},
            outputs={p.name: p.tf_name for p in outputs},
        )
        metadata = Model(
            flavors={
                FLAVOR: {"model_type": "keras", "serving": export.to_dict()},
                "python_function": {"loader_module": "mlreg.tensorflow"},
            },
            signature=signature,
            saved_input_example_info=save_input_example(root, example),
        )
        metadata.save(root)
        return cls(root, Model.load(root), fn, inputs, outputs)

    @property
    def signature(self) -> ModelSignature | None:
        return self.metadata.signature

    @property
    def serving_input_example(self) -> str | None:
        info = self.metadata.saved_input_example_info
        return load_serving_input_example(self.source.path, info) if info else None

    def enforce(self, data: Any, params: dict[str, Any] | None = None) -> tuple[Any, dict]:
        assert self.signature is not None
        return (
            enforce_schema(data, self.signature.inputs),
            enforce_params(params, self.signature.params),
        )

    def predict_unchecked(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self._io.result(data, self._fn(self._io.feed(data)))

    def unready_reason(self) -> str | None:
        return None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """What the server should answer for ``data`` (PyFuncModel.predict's contract)."""
        return self.predict_unchecked(*self.enforce(data, params))


def _port(name: str, shape: tuple[int, ...]) -> TensorPort:
    return TensorPort(name, name, np.dtype(np.float32), shape)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _tensor(shape: tuple[int, ...], name: str | None = None) -> TensorSpec:
    return TensorSpec(np.dtype(np.float32), shape, name)


def cnn(root: Path, cls: type[NumpyModel] = NumpyModel) -> NumpyModel:
    """Like models.save_cnn: 28x28x3 images in, two class probabilities out."""

    def fn(t: Tensors) -> Tensors:
        x = t["image"]
        logits = np.stack([x.mean(axis=(1, 2, 3)), x.std(axis=(1, 2, 3))], axis=-1)
        return {"probs": _softmax(logits)}

    signature = ModelSignature(Schema([_tensor((-1, 28, 28, 3))]), Schema([_tensor((-1, 2))]))
    return cls.save(
        root,
        signature,
        fn,
        [_port("image", (-1, 28, 28, 3))],
        [_port("probs", (-1, 2))],
        images(2),
    )


def columns(root: Path) -> NumpyModel:
    """Like models.save_columns: columns a, b (double) and c (long) in, one value out."""

    def fn(t: Tensors) -> Tensors:
        weights = np.array([[0.5], [-1.0], [2.0]], np.float32)
        return {"y": t["x"] @ weights + np.float32(0.25)}

    signature = ModelSignature(
        Schema([ColSpec("double", "a"), ColSpec("double", "b"), ColSpec("long", "c")]),
        Schema([_tensor((-1, 1))]),
    )
    return NumpyModel.save(
        root, signature, fn, [_port("x", (-1, 3))], [_port("y", (-1, 1))], columns_example()
    )


def sleepy(root: Path) -> NumpyModel:
    """Like models.save_trouble: two floats in, ``x + 1`` out, after sleeping x[0, 0] seconds.

    Stands for a model that keeps a request thread busy (probes, timeouts, draining).
    """

    def fn(t: Tensors) -> Tensors:
        x = t["x"]
        time.sleep(float(x[0, 0]))
        return {"y": x + np.float32(1.0)}

    signature = ModelSignature(Schema([_tensor((-1, 2))]), Schema([_tensor((-1, 2))]))
    example = np.zeros((1, 2), np.float32)
    return NumpyModel.save(
        root, signature, fn, [_port("x", (-1, 2))], [_port("y", (-1, 2))], example
    )


def shifted(root: Path, shift: float, width: int = 2, broken: bool = False) -> NumpyModel:
    """Versions of one model that answer differently: ``width`` floats in, ``x + shift`` out.

    The model directory says what it is (``fake.json``), so a copy of it (registered, then
    resolved from the registry) opens again with :func:`open_model`. A ``broken`` one fails
    its warm-up, as a model whose graph cannot run would.
    """
    model = NumpyModel.save(
        root,
        ModelSignature(Schema([_tensor((-1, width))]), Schema([_tensor((-1, width))])),
        _shift(shift, broken),
        [_port("x", (-1, width))],
        [_port("y", (-1, width))],
        np.zeros((1, width), np.float32),
    )
    (root / "fake.json").write_text(json.dumps({"shift": shift, "width": width, "broken": broken}))
    return model


def _shift(shift: float, broken: bool) -> Callable[[Tensors], Tensors]:
    def fn(t: Tensors) -> Tensors:
        if broken:
            raise ModelExecutionError("the model failed: the graph cannot run")
        return {"y": t["x"] + np.float32(shift)}

    return fn


def open_model(source: ResolvedModel) -> NumpyModel:
    """A :func:`shifted` model from its directory (a registry's copy of it), keeping what the
    registry said of it (name, version, digest), as the local backend's loader does."""
    spec = json.loads((source.path / "fake.json").read_text())
    width = spec["width"]
    model = NumpyModel(
        source.path,
        Model.load(source.path),
        _shift(spec["shift"], spec["broken"]),
        [_port("x", (-1, width))],
        [_port("y", (-1, width))],
    )
    model.source = source
    return model


def multi(root: Path) -> NumpyModel:
    """Like models.save_multi: named inputs a and b in, named outputs score and probs out."""

    def fn(t: Tensors) -> Tensors:
        a, b = t["a"], t["b"]
        score = a.sum(axis=1, keepdims=True) - b.sum(axis=1, keepdims=True)
        means = np.concatenate([a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)], 1)
        return {"score": score, "probs": _softmax(means)}

    signature = ModelSignature(
        Schema([_tensor((-1, 3), "a"), _tensor((-1, 2), "b")]),
        Schema([_tensor((-1, 2), "probs"), _tensor((-1, 1), "score")]),
    )
    return NumpyModel.save(
        root,
        signature,
        fn,
        [_port("a", (-1, 3)), _port("b", (-1, 2))],
        [_port("probs", (-1, 2)), _port("score", (-1, 1))],
        multi_example(),
    )


__all__ = ["NumpyModel", "cnn", "columns", "multi", "open_model", "shifted", "sleepy"]
