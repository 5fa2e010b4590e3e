"""``spark_udf``: a model as a Spark UDF (an Arrow-based, iterator-style pandas UDF).

The driver resolves the model URI once (``models:/``, ``runs:/``, a path), so every executor
scores the same version even if a stage moves while the job runs, and ships the directory
once per digest with ``SparkContext.addFile``. Each Python worker unpacks it once, checks the
digest, limits TensorFlow to the task's cores (``spark.task.cpus``) so tasks on one machine
do not fight over them, and loads the model once for all the batches of its tasks.

A batch is enforced with the same rules and messages as the server; a mistake fails the
Spark task with mlreg's one-line error in the message.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd
from pyspark import SparkFiles
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from mlreg.batch.features import fit_row_shape
from mlreg.batch.ship import pack, unpack
from mlreg.errors import InvalidInput, SchemaError
from mlreg.models.model import Model
from mlreg.models.signature import ModelSignature, Schema, TensorSpec
from mlreg.pyfunc import PyFuncModel, load_model
from mlreg.registry.artifacts import dir_digest
from mlreg.uris import ResolvedModel, resolve_model_uri

ENV_MANAGERS = ("local",)

_ship_lock = threading.Lock()
_shipped: dict[tuple[str, str], str] = {}
_archive_dir: Path | None = None

#: Models loaded in this (worker) process, by digest.
_loaded: dict[str, PyFuncModel] = {}
_load_lock = threading.Lock()


class ModelUdf:
    """The UDF for one model version: call it with columns (none: the signature's names)."""

    def __init__(self, udf: Any, source: ResolvedModel, digest: str, names: list[str]) -> None:
        self._udf = udf
        self.source = source
        self.digest = digest
        self.input_names = names
        self.returnType = udf.returnType

    def __call__(self, *cols: Column | str) -> Column:
        if not cols:
            if not self.input_names:
                raise InvalidInput(
                    "the model's signature names no inputs; call the UDF with the columns"
                )
            cols = tuple(F.col(n) for n in self.input_names)
        return self._udf(*cols)

    def __repr__(self) -> str:
        return f"ModelUdf(uri={self.source.uri!r}, digest={self.digest[:12]}, {self.returnType})"


def spark_udf(
    spark: SparkSession,
    model_uri: str,
    result_type: str | T.DataType | None = None,
    env_manager: str = "local",
    params: dict[str, Any] | None = None,
) -> ModelUdf:
    """A Spark UDF that scores rows with the model at ``model_uri``.

    ``result_type`` is a Spark type or DDL string (``"double"``, ``"array<float>"``,
    ``"struct<score: float, probs: array<float>>"``); by default it follows the output
    signature. ``env_manager="local"`` runs the model in the executors' Python, which must
    have mlreg and the model's requirements (ship them as an archive; see the README).
    """
    if env_manager not in ENV_MANAGERS:
        raise InvalidInput(
            f"env_manager {env_manager!r} is not supported; use 'local' and ship the "
            "environment to the executors as an archive (spark-submit --archives)"
        )
    source = resolve_model_uri(str(model_uri))
    digest = source.digest or dir_digest(source.path)
    signature = Model.load(source.path).signature
    rtype = _result_type(spark, result_type, signature)
    name = _ship(spark, source.path, digest)
    threads = int(spark.conf.get("spark.task.cpus", "1") or 1)
    schema = signature.inputs if signature is not None else None
    scalar = not isinstance(rtype, T.StructType)

    def predict(
        batches: Iterator[tuple[Union[pd.Series, pd.DataFrame], ...]],  # noqa: UP007
    ) -> Iterator[pd.Series]:
        model = _worker_model(name, digest, threads)
        for batch in batches:
            args = batch if isinstance(batch, tuple) else (batch,)
            result = model.predict(model_input(args, schema), params)
            yield to_spark(result, rtype)

    def predict_struct(
        batches: Iterator[tuple[Union[pd.Series, pd.DataFrame], ...]],  # noqa: UP007
    ) -> Iterator[pd.DataFrame]:
        yield from predict(batches)  # type: ignore[misc]

    udf = pandas_udf(predict if scalar else predict_struct, returnType=rtype)  # type: ignore[call-overload]
    names = schema.input_names() if schema is not None else []
    return ModelUdf(udf, source, digest, names)


# --- the driver: ship once per digest ----------------------------------------------------------


def _ship(spark: SparkSession, model_dir: Path, digest: str) -> str:
    global _archive_dir
    context = spark.sparkContext
    key = (context.applicationId, digest)
    with _ship_lock:
        if key in _shipped:
            return _shipped[key]
        if _archive_dir is None:
            _archive_dir = Path(tempfile.mkdtemp(prefix="mlreg-spark-"))
            atexit.register(shutil.rmtree, _archive_dir, True)
        archive = pack(model_dir, digest, _archive_dir)
        context.addFile(str(archive))
        _shipped[key] = archive.name
        return archive.name


def _result_type(
    spark: SparkSession, given: str | T.DataType | None, signature: ModelSignature | None
) -> T.DataType:
    if isinstance(given, T.DataType):
        return given
    if isinstance(given, str):
        try:
            return T._parse_datatype_string(given)
        except Exception as e:  # pyspark raises its own parse errors
            raise InvalidInput(f"result_type {given!r} is not a Spark type: {e}") from None
    outputs = signature.outputs if signature is not None else None
    if outputs is None or not outputs.is_tensor_spec():
        return T.DoubleType()
    specs: list[TensorSpec] = list(outputs.inputs)  # type: ignore[arg-type]
    if len(specs) == 1:
        return _tensor_type(specs[0])
    return T.StructType([T.StructField(str(s.name), _tensor_type(s)) for s in specs])


def _tensor_type(spec: TensorSpec) -> T.DataType:
    kind = spec.dtype.kind
    if kind == "f":
        element: T.DataType = T.FloatType() if spec.dtype.itemsize <= 4 else T.DoubleType()
    elif kind in "iu":
        element = T.LongType()
    elif kind == "b":
        element = T.BooleanType()
    else:
        element = T.StringType()
    row = list(spec.shape[1:])
    if row in ([], [1]):
        return element
    for _ in row:
        element = T.ArrayType(element)
    return element


# --- the workers: load once, convert batches ---------------------------------------------------


def _worker_model(name: str, digest: str, threads: int) -> PyFuncModel:
    with _load_lock:
        model = _loaded.get(digest)
        if model is None:
            root = Path(SparkFiles.getRootDirectory()) / "mlreg-models"
            path = unpack(Path(SparkFiles.get(name)), digest, root)
            _limit_threads(threads)
            model = _loaded[digest] = load_model(path)
        return model


def _limit_threads(threads: int) -> None:
    """Give TensorFlow the task's cores, not the machine's (before its runtime starts)."""
    tf = importlib.import_module("tensorflow")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # this worker already ran TensorFlow (another model): keep its settings


def model_input(args: tuple[pd.Series | pd.DataFrame, ...], schema: Schema | None) -> Any:
    """The UDF's arguments as the model takes them: a DataFrame, a tensor or named tensors."""
    if schema is None or not schema.is_tensor_spec():
        if len(args) == 1 and isinstance(args[0], pd.DataFrame):
            return args[0]
        names = schema.input_names() if schema is not None and schema.has_input_names() else []
        if names and len(names) != len(args):
            raise SchemaError(
                f"expected {len(names)} columns ({', '.join(map(repr, names))}), got {len(args)}"
            )
        keys = names or list(range(len(args)))
        return pd.DataFrame({k: _series(a) for k, a in zip(keys, args, strict=True)})
    specs: list[TensorSpec] = list(schema.inputs)  # type: ignore[arg-type]
    if not schema.has_input_names():
        spec = specs[0]
        if len(args) == 1 and isinstance(args[0], pd.Series):
            return rows_to_tensor(args[0], spec)
        columns = args[0] if len(args) == 1 else pd.concat([_series(a) for a in args], axis=1)
        stacked = np.column_stack([_series(columns[c]) for c in columns.columns])
        return fit_row_shape(stacked, spec.shape[1:])
    if len(args) == 1 and isinstance(args[0], pd.DataFrame):
        frame = args[0]
        return {str(c): rows_to_tensor(frame[c], _spec_named(specs, str(c))) for c in frame.columns}
    if len(args) != len(specs):
        names = ", ".join(repr(s.name) for s in specs)
        raise SchemaError(f"expected {len(specs)} columns (inputs {names}), got {len(args)}")
    return {str(s.name): rows_to_tensor(_series(a), s) for s, a in zip(specs, args, strict=True)}


def _series(value: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(value, pd.DataFrame):
        raise SchemaError("a struct column can only be the UDF's single argument")
    return value.reset_index(drop=True)


def _spec_named(specs: list[TensorSpec], name: str) -> TensorSpec | None:
    for s in specs:
        if s.name == name:
            return s
    return None  # an unexpected input: enforcement names it


def rows_to_tensor(column: pd.Series, spec: TensorSpec | None) -> np.ndarray:
    """A column of arrays (Spark ``array<...>``, nested or flat) or raw bytes as one tensor."""
    row_shape = spec.shape[1:] if spec is not None else None
    values = column.to_numpy()
    if values.dtype != object:
        return values  # scalars
    if any(v is None for v in values):
        raise SchemaError("input: missing values (null rows); expected a tensor per row")
    if len(values) and isinstance(values[0], bytes | bytearray) and spec is not None:
        return _from_bytes(values, spec)
    dims = []
    while values.dtype == object:
        lengths = np.fromiter((len(v) for v in values), np.int64, len(values))
        if len(lengths) and lengths.min() != lengths.max():
            raise SchemaError(
                f"input: rows of different lengths ({lengths.min()} to {lengths.max()} values "
                f"at depth {len(dims) + 1}); expected a rectangular tensor"
            )
        dims.append(int(lengths[0]) if len(lengths) else 0)
        values = np.concatenate(values) if len(values) else np.empty(0)
    return fit_row_shape(values.reshape(len(column), *dims), row_shape)


def _from_bytes(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    row_shape = spec.shape[1:]
    width = int(np.prod(row_shape)) * spec.dtype.itemsize
    sizes = {len(v) for v in values}
    if -1 in row_shape or sizes != {width}:
        raise SchemaError(
            f"input: expected {width} bytes per row (a {spec.describe()}, raw "
            f"{spec.dtype_name}), got {', '.join(map(str, sorted(sizes)))}"
        )
    flat = np.frombuffer(b"".join(values), spec.dtype.newbyteorder("<"))
    return flat.reshape(len(values), *row_shape).astype(spec.dtype, copy=False)


def to_spark(result: Any, rtype: T.DataType) -> pd.Series | pd.DataFrame:
    """The model's answer as the pandas value Spark expects for ``rtype``."""
    if isinstance(rtype, T.StructType):
        named = _named(result)
        missing = [f.name for f in rtype.fields if f.name not in named]
        if missing:
            raise InvalidInput(
                f"result_type names field {', '.join(map(repr, missing))}, which the model does "
                f"not return; its outputs: {', '.join(map(repr, named))}"
            )
        return pd.DataFrame({f.name: _values(named[f.name], f.dataType) for f in rtype.fields})
    if isinstance(result, dict):
        if len(result) != 1:
            raise InvalidInput(
                f"the model returns {len(result)} outputs ({', '.join(map(repr, result))}); "
                "ask for them with a struct result_type"
            )
        result = next(iter(result.values()))
    if isinstance(result, pd.DataFrame):
        result = result.iloc[:, 0] if result.shape[1] == 1 else result.to_numpy()
    return _values(result, rtype)


def _named(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    if isinstance(result, pd.DataFrame):
        return {str(c): result[c] for c in result.columns}
    raise InvalidInput("a struct result_type needs a model with named outputs")


def _values(values: Any, rtype: T.DataType) -> pd.Series:
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if isinstance(rtype, T.ArrayType):
        if array.ndim == 1 and array.dtype != object:
            array = array.reshape(-1, 1)
        rows = list(array) if array.ndim == 2 else [row.tolist() for row in array]
        return pd.Series(rows)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInput(
            f"result_type {rtype.simpleString()} holds one value per row, but the model returns "
            f"{array.shape[1:]} values per row; use an array result_type such as 'array<float>'"
        )
    return pd.Series(array)


__all__ = ["ModelUdf", "model_input", "rows_to_tensor", "spark_udf", "to_spark"]
