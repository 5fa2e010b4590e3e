"""Input examples saved with a model, and the ready-to-POST serving body made from them.

Files and ``saved_input_example_info`` keys follow MLflow: ``input_example.json`` holds the
example (a nested list, a dict of lists, or a DataFrame in ``split`` orient) and
``serving_input_example.json`` the body for ``POST /invocations``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mlreg.errors import InvalidInput, MLmodelError

EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _label(name: str) -> str:
    return f"input example {name}" if name else "input example"


def _check_finite(name: str, arr: np.ndarray) -> None:
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{_label(name)}: contains NaN or Infinity, which JSON cannot hold")


def _check_json_finite(value: Any) -> None:
    """Refuse NaN / Infinity anywhere in plain JSON values (orjson would write null)."""
    if isinstance(value, float) and not np.isfinite(value):
        raise InvalidInput("input example contains NaN or Infinity, which JSON cannot hold")
    if isinstance(value, Mapping):
        for v in value.values():
            _check_json_finite(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_json_finite(v)


def _jsonable_array(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError:
        raise InvalidInput(
            f"{_label(name)}: ragged nested list; rows must have equal lengths"
        ) from None
    if arr.dtype.kind == "O" and any(isinstance(v, list | tuple) for v in arr.ravel()):
        raise InvalidInput(f"{_label(name)}: ragged nested list; rows must have equal lengths")
    if arr.dtype.kind in "OUS":
        return arr  # strings and mixed values go through .tolist()
    _check_finite(name, arr)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def _encode(data: Any) -> Any:
    if isinstance(data, np.ndarray) and data.dtype.kind in "OUS":
        return data.tolist()
    return data


def _frame_split(df: pd.DataFrame) -> dict[str, Any]:
    for col in df.columns:
        if df[col].dtype.kind == "f":
            _check_finite(f"column {col!r}", df[col].to_numpy())
    split = orjson.loads(df.to_json(orient="split", index=False, date_format="iso"))
    return {"columns": split["columns"], "data": split["data"]}


def save_input_example(model_dir: str | os.PathLike[str], example: Any) -> dict[str, Any]:
    """Write the example and its serving body; return ``saved_input_example_info``."""
    root = Path(model_dir)
    info: dict[str, Any] = {
        "artifact_path": EXAMPLE_FILE,
        "serving_input_path": SERVING_EXAMPLE_FILE,
    }
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        data: Any = _frame_split(example)
        serving: Any = {"dataframe_split": data}
        info.update(type="dataframe", pandas_orient="split")
    elif isinstance(example, np.ndarray) or (
        isinstance(example, list) and example and not isinstance(example[0], Mapping)
    ):
        data = _encode(_jsonable_array("", example))
        serving = {"inputs": data}
        info["type"] = "ndarray"
    elif isinstance(example, Mapping) and all(
        isinstance(v, np.ndarray | list | tuple) for v in example.values()
    ):
        data = {str(k): _encode(_jsonable_array(repr(k), v)) for k, v in example.items()}
        serving = {"inputs": data}
        info["type"] = "ndarray"
    elif isinstance(example, Mapping | list):
        _check_json_finite(example)
        try:
            orjson.dumps(example)
        except TypeError as e:
            raise InvalidInput(f"input example cannot be stored as JSON: {e}") from None
        data = example
        serving = {"inputs": example}
        info["type"] = "json_object"
    else:
        raise InvalidInput(
            f"unsupported input example type {type(example).__name__}: expected a numpy array, "
            "a dict of arrays, a pandas DataFrame, or a list / dict of JSON values"
        )
    try:
        (root / EXAMPLE_FILE).write_bytes(orjson.dumps(data, option=_OPTS))
        (root / SERVING_EXAMPLE_FILE).write_bytes(
            orjson.dumps(serving, option=_OPTS | orjson.OPT_INDENT_2)
        )
    except (TypeError, orjson.JSONEncodeError) as e:
        raise InvalidInput(f"input example cannot be stored as JSON: {e}") from None
    return info


def _read(model_dir: Path, rel: str) -> bytes:
    root = model_dir.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise MLmodelError(f"input example path {rel!r} points outside the model directory")
    if not path.is_file():
        raise MLmodelError(f"input example file {path} is missing")
    return path.read_bytes()


def load_input_example(model_dir: str | os.PathLike[str], info: Mapping[str, Any]) -> Any:
    """Read the example back as the kind of object it was saved from."""
    try:
        data = orjson.loads(_read(Path(model_dir), info["artifact_path"]))
    except orjson.JSONDecodeError as e:
        raise MLmodelError(f"input example in {model_dir} is not valid JSON: {e}") from None
    kind = info.get("type")
    if kind == "dataframe":
        return pd.DataFrame(data["data"], columns=data["columns"])
    if kind == "ndarray":
        if isinstance(data, dict):
            return {k: np.asarray(v) for k, v in data.items()}
        return np.asarray(data)
    return data


def load_serving_input_example(
    model_dir: str | os.PathLike[str], info: Mapping[str, Any]
) -> str | None:
    """Return the ready-to-POST JSON body, or None when the model has none."""
    rel = info.get("serving_input_path")
    return _read(Path(model_dir), rel).decode() if rel else None
