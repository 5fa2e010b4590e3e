"""The ``tensorflow`` flavor: save and load Keras 3 models and ``tf.Module`` objects.

The layout is MLflow's, so either tool opens the other's models:

- Keras: ``data/model.keras`` with ``data/keras_module.txt`` and ``data/save_format.txt``,
  flavor ``model_type: keras``.
- tf.Module: a SavedModel directory named by ``saved_model_dir``, ``model_type: tf2-module``.

mlreg adds a SavedModel export in TensorFlow Serving's versioned layout
(``tfserving/1/saved_model.pb``), described by the flavor's ``serving`` key: its
signature name and how the MLmodel's input/output names map onto the signature's.
The same export is what pyfunc calls in-process, so both paths run the same graph.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mlreg.errors import AlreadyExists, InvalidInput, MLmodelError, SchemaError
from mlreg.models.enforce import enforce_schema
from mlreg.models.env import default_tensorflow_requirements, resolve_requirements, write_env_files
from mlreg.models.example import save_input_example
from mlreg.models.infer import infer_signature
from mlreg.models.model import Model
from mlreg.models.serving_export import (
    DEFAULT_SIGNATURE,
    EXPORT_DIR,
    EXPORT_VERSION,
    FLAVOR,
    ServingExport,
)
from mlreg.models.signature import ModelSignature
from mlreg.pyfunc import PyFuncModel
from mlreg.pyfunc import load_model as load_pyfunc
from mlreg.tensorflow.calls import flat_call, keyword_order
from mlreg.tensorflow.predictor import Predictor, ports_from_specs
from mlreg.uris import resolve_model_uri

FLAVOR_NAME = FLAVOR
#: What the ``python_function`` flavor names as its loader. MLflow's own TensorFlow loader
#: opens our layout (it is MLflow's), so ``mlflow.pyfunc.load_model`` and ``mlflow models
#: predict|serve`` work where mlreg is not installed; mlreg's pyfunc maps the name back to
#: this flavor (mlreg.pyfunc.LOADERS). Older mlreg models name ``mlreg.tensorflow``, which
#: MLflow reaches through :func:`_load_pyfunc`.
LOADER_MODULE = "mlflow.tensorflow"
DATA_DIR = "data"
KERAS_FILE = "model.keras"

_OUTPUT_N = re.compile(r"^output_(\d+)$")
logger = logging.getLogger(__name__)


def save_model(
    model: keras.Model | tf.Module,
    path: str | os.PathLike[str],
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Save ``model`` as an MLmodel directory at ``path`` (which must not exist yet).

    The directory appears whole or not at all: everything is written to a sibling
    temporary directory that is renamed into place at the end.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise AlreadyExists(f"model path '{path}' already exists and is not empty")
    requirements = resolve_requirements(
        default_tensorflow_requirements(), pip_requirements, extra_pip_requirements
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        mlmodel = _save_into(tmp, model, signature, input_example, metadata, requirements)
        if path.exists():
            path.rmdir()
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return mlmodel


@dataclass(frozen=True)
class _Native:
    """What saving one kind of model wrote besides the export: its keys in the two flavors,
    and the output names Keras declares (the public names of the signature's outputs)."""

    flavor: dict[str, Any]
    pyfunc: dict[str, Any]
    output_names: list[str] | None


def _save_into(
    root: Path,
    model: Any,
    signature: ModelSignature | None,
    input_example: Any,
    metadata: dict[str, Any] | None,
    requirements: list[str],
) -> Model:
    mlmodel = Model(metadata=metadata)
    export_dir = root / EXPORT_DIR / str(EXPORT_VERSION)
    if isinstance(model, keras.Model):
        native = _save_keras(root, model, input_example, export_dir)
    elif isinstance(model, tf.Module):
        native = _save_module(model, export_dir)
    else:
        raise InvalidInput(
            f"cannot save a {type(model).__module__}.{type(model).__name__}: expected a Keras "
            "model (keras.Model) or a tf.Module with a serving signature"
        )
    signature, export = _describe_export(
        export_dir, model, signature, input_example, native.output_names
    )
    mlmodel.add_flavor(FLAVOR, **native.flavor, serving=export.to_dict())
    python_version = ".".join(map(str, sys.version_info[:3]))
    mlmodel.add_flavor(
        "python_function",
        loader_module=LOADER_MODULE,
        python_version=python_version,
        env={"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        **native.pyfunc,
    )
    mlmodel.signature = signature
    if input_example is not None:
        mlmodel.saved_input_example_info = save_input_example(root, input_example)
    write_env_files(root, requirements, python_version=python_version)
    mlmodel.model_size_bytes = _dir_size(root)
    mlmodel.save(root)
    return mlmodel


def _save_keras(root: Path, model: keras.Model, input_example: Any, export_dir: Path) -> _Native:
    """MLflow's Keras layout under ``data/``, plus the SavedModel export."""
    _ensure_built(model, input_example)
    (root / DATA_DIR).mkdir()
    model.save(root / DATA_DIR / KERAS_FILE)
    (root / DATA_DIR / "keras_module.txt").write_text("keras")
    (root / DATA_DIR / "save_format.txt").write_text("keras")
    model.export(str(export_dir), format="tf_saved_model", verbose=False)
    flavor = {
        "code": None,
        "data": DATA_DIR,
        "keras_version": keras.__version__,
        "model_type": "keras",
        "save_format": "keras",
    }
    return _Native(flavor, {"data": DATA_DIR}, _keras_output_names(model))


def _save_module(model: tf.Module, export_dir: Path) -> _Native:
    """A tf.Module is its own SavedModel: the export is the model (MLflow's tf2-module)."""
    tf.saved_model.save(model, str(export_dir))
    flavor = {
        "code": None,
        "model_type": "tf2-module",
        "saved_model_dir": f"{EXPORT_DIR}/{EXPORT_VERSION}",
    }
    return _Native(flavor, {}, None)


def _describe_export(
    export_dir: Path,
    model: Any,
    signature: ModelSignature | None,
    input_example: Any,
    output_names: list[str] | None,
) -> tuple[ModelSignature | None, ServingExport]:
    """Load the export back: the signature (given, or inferred from the example) and names."""
    loaded = tf.saved_model.load(str(export_dir))
    if DEFAULT_SIGNATURE not in loaded.signatures:
        raise InvalidInput(
            "the tf.Module has no serving signature: decorate its __call__ with "
            "@tf.function(input_signature=[...])"
        )
    fn = loaded.signatures[DEFAULT_SIGNATURE]
    in_specs = fn.structured_input_signature[1]
    out_specs = fn.structured_outputs
    if signature is None and input_example is not None:
        provisional = _predictor(
            loaded,
            fn,
            _input_map(in_specs, None, model),
            _output_map(out_specs, None, output_names),
        )
        example_input = _example_input(input_example)
        signature = infer_signature(example_input, provisional.predict(example_input))
    input_map = _input_map(in_specs, signature, model)
    output_map = _output_map(out_specs, signature, output_names)
    if signature is not None:
        _check_signature_fits(signature, in_specs, input_map)
    if signature is not None and input_example is not None:
        try:
            enforce_schema(_example_input(input_example), signature.inputs)
        except SchemaError as e:
            raise InvalidInput(f"input_example does not match the signature: {e.message}") from None
    return signature, ServingExport(inputs=input_map, outputs=output_map)


def _example_input(example: Any) -> Any:
    if isinstance(example, list) and example and isinstance(example[0], list | float | int):
        return np.asarray(example)
    return example


def _ensure_built(model: keras.Model, input_example: Any) -> None:
    if model.built and getattr(model, "inputs", None) is not None:
        return
    if input_example is None:
        if model.built:
            return
        raise InvalidInput(
            "the Keras model has not been built yet: call it once on data, or pass input_example"
        )
    model(_example_input(input_example))


def _keras_output_names(model: keras.Model) -> list[str] | None:
    names = getattr(model, "output_names", None)
    return list(names) if names else None


def _input_map(
    in_specs: dict[str, tf.TensorSpec], signature: ModelSignature | None, model: Any
) -> dict[str, str]:
    """Map the MLmodel's input names onto the serving signature's argument names."""
    tf_names = list(in_specs)
    if signature is None or not signature.inputs.is_tensor_spec():
        if len(tf_names) == 1 or signature is None:
            return {n: n for n in _ordered_inputs(tf_names, model)}
        names = signature.inputs.input_names()
        if set(names) >= set(tf_names):
            return {n: n for n in tf_names}
        return {n: n for n in _ordered_inputs(tf_names, model)}
    if not signature.inputs.has_input_names():
        if len(tf_names) != 1:
            raise InvalidInput(
                f"the signature has one unnamed input but the model takes {len(tf_names)}: "
                f"{', '.join(tf_names)}; name the signature's inputs"
            )
        return {tf_names[0]: tf_names[0]}
    names = signature.inputs.input_names()
    if len(names) != len(tf_names):
        raise InvalidInput(
            f"the signature names {len(names)} inputs ({', '.join(names)}) but the model takes "
            f"{len(tf_names)} ({', '.join(tf_names)})"
        )
    if set(names) == set(tf_names):
        return {n: n for n in names}
    return dict(zip(names, _ordered_inputs(tf_names, model), strict=True))


def _ordered_inputs(tf_names: list[str], model: Any) -> list[str]:
    """Order the signature's arguments as the model declares its inputs, when it says."""
    declared = [getattr(t, "name", None) for t in (getattr(model, "inputs", None) or [])]
    if sorted(n for n in declared if n) == sorted(tf_names):
        return [n for n in declared if n]
    return sorted(tf_names)


def _output_map(
    out_specs: dict[str, tf.TensorSpec],
    signature: ModelSignature | None,
    keras_names: list[str] | None,
) -> dict[str, str]:
    """Map public output names (signature's, else Keras's) onto the signature's outputs."""
    tf_names = list(out_specs)
    if all(_OUTPUT_N.match(n) for n in tf_names):
        tf_names.sort(key=lambda n: int(_OUTPUT_N.match(n).group(1)))  # type: ignore[union-attr]
    else:
        tf_names.sort()
    public: list[str] | None = None
    if (
        signature is not None
        and signature.outputs is not None
        and signature.outputs.has_input_names()
        and len(signature.outputs.inputs) == len(tf_names)
    ):
        public = signature.outputs.input_names()
    elif keras_names and len(keras_names) == len(tf_names) and len(tf_names) > 1:
        public = keras_names if set(keras_names) != set(tf_names) else tf_names
    if public is None or set(public) == set(tf_names):
        return {n: n for n in tf_names}
    return dict(zip(public, tf_names, strict=True))


def _check_signature_fits(
    signature: ModelSignature, in_specs: dict[str, tf.TensorSpec], input_map: dict[str, str]
) -> None:
    if not signature.inputs.is_tensor_spec():
        return
    specs = {s.name or next(iter(input_map)): s for s in signature.inputs.inputs}
    for public, tf_name in input_map.items():
        spec = specs.get(public)
        if spec is None:
            continue
        model_shape = in_specs[tf_name].shape
        if model_shape.rank is not None and model_shape.rank != len(spec.shape):
            raise InvalidInput(
                f"signature input '{public}' has shape {list(spec.shape)} but the model expects "
                f"rank {model_shape.rank} ({model_shape.as_list()})"
            )


def _dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- loading -----------------------------------------------------------------------------


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load the native object: a Keras model, or the restored tf.Module."""
    resolved = resolve_model_uri(str(model_uri))
    mlmodel = Model.load(resolved.path)
    conf = mlmodel.flavor(FLAVOR_NAME)
    model_type = conf.get("model_type", "keras")
    if model_type == "keras":
        return _load_keras(resolved.path, conf)
    if model_type == "tf2-module":
        return tf.saved_model.load(str(_inside(resolved.path, conf["saved_model_dir"])))
    raise MLmodelError(f"unsupported tensorflow model_type {model_type!r}")


def _inside(root: Path, rel: str) -> Path:
    """Join a path from an MLmodel file to the model root, refusing to leave it."""
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        raise MLmodelError(f"path {rel!r} in MLmodel points outside the model directory")
    return target


def _load_keras(root: Path, conf: dict[str, Any]) -> keras.Model:
    data = _inside(root, conf.get("data", DATA_DIR))
    for candidate in (data / KERAS_FILE, data / "model.h5", data):
        if candidate.is_file():
            return keras.saving.load_model(candidate, compile=False)
    raise MLmodelError(
        f"no Keras model file in {data}: expected {KERAS_FILE} (models saved with TensorFlow's "
        "legacy SavedModel format cannot be loaded by Keras 3)"
    )


def load_predictor(root: Path, mlmodel: Model, *, xla_max_batch: int = 0) -> Predictor:
    """Build the fast in-process predictor for a model directory; with ``xla_max_batch``,
    batches of 1..N rows run XLA-compiled where that is as exact and faster (logged)."""
    predictor = _load_predictor(root, mlmodel)
    if xla_max_batch > 0:
        logger.info("%s: %s", root, predictor.compile_small_batches(xla_max_batch))
    return predictor


def _load_predictor(root: Path, mlmodel: Model) -> Predictor:
    conf = mlmodel.flavor(FLAVOR_NAME)
    export = ServingExport.from_flavor(conf)
    signature = mlmodel.signature
    if export is not None:
        loaded = tf.saved_model.load(str(_inside(root, export.saved_model_dir)))
        if export.signature_name not in loaded.signatures:
            raise MLmodelError(
                f"the export in {export.saved_model_dir} has no signature "
                f"{export.signature_name!r} (it has {', '.join(sorted(loaded.signatures))})"
            )
        fn = loaded.signatures[export.signature_name]
        return _predictor(loaded, fn, dict(export.inputs), dict(export.outputs))
    model_type = conf.get("model_type", "keras")
    if model_type == "tf2-module":
        loaded = tf.saved_model.load(str(_inside(root, conf["saved_model_dir"])))
        if DEFAULT_SIGNATURE not in loaded.signatures:
            raise MLmodelError("the saved tf.Module has no serving_default signature to call")
        fn = loaded.signatures[DEFAULT_SIGNATURE]
        in_specs = fn.structured_input_signature[1]
        return _predictor(
            loaded,
            fn,
            _input_map(in_specs, signature, None),
            _output_map(fn.structured_outputs, signature, None),
        )
    if model_type == "keras":
        return _traced_keras(_load_keras(root, conf), signature)
    raise MLmodelError(f"unsupported tensorflow model_type {model_type!r}")


def _load_pyfunc(path: str) -> PyFuncModel:
    """MLflow's pyfunc entry point (``loader_module: mlreg.tensorflow``, older mlreg models).

    ``path`` is the model directory, or its ``data`` directory when the flavor names one;
    the returned model predicts through mlreg's signature enforcement.
    """
    root = Path(path)
    if not (root / "MLmodel").is_file() and (root.parent / "MLmodel").is_file():
        root = root.parent
    return load_pyfunc(root)


def _predictor(
    keepalive: Any, fn: Any, input_map: dict[str, str], output_map: dict[str, str]
) -> Predictor:
    in_specs = fn.structured_input_signature[1]
    return Predictor(
        flat_call(fn, keyword_order(fn)),
        ports_from_specs(in_specs, input_map),
        ports_from_specs(fn.structured_outputs, output_map),
        keepalive=keepalive,
    )


def _traced_keras(model: keras.Model, signature: ModelSignature | None) -> Predictor:
    """Trace a Keras model (e.g. one MLflow saved) once, with a batch-size-free signature."""
    if getattr(model, "inputs", None) is None:
        raise MLmodelError(
            "cannot serve this Keras model: it declares no inputs (a subclassed model saved "
            "without being built); save it with mlreg.tensorflow.save_model instead"
        )
    structure = model.inputs[0] if len(model.inputs) == 1 else model.input
    inputs = keras.tree.flatten(structure)
    specs = [tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=t.name) for t in inputs]
    names = [t.name for t in inputs]

    @tf.function(input_signature=specs)
    def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model(keras.tree.pack_sequence_as(structure, list(args)), training=False)
        if isinstance(out, dict):
            return out
        if isinstance(out, list | tuple):
            return {f"output_{i}": t for i, t in enumerate(out)}
        return {"output_0": out}

    concrete = serve.get_concrete_function()
    in_specs = dict(zip(names, specs, strict=True))
    return Predictor(
        flat_call(concrete, names),  # positional inputs: in the order of the specs
        ports_from_specs(in_specs, _input_map(in_specs, signature, model)),
        ports_from_specs(
            concrete.structured_outputs,
            _output_map(concrete.structured_outputs, signature, _keras_output_names(model)),
        ),
        keepalive=model,
    )
