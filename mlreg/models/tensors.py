"""Named tensors in and out of a tensor function, with no TensorFlow import.

A model whose computation takes named tensors (a SavedModel signature, in-process or in
TensorFlow Serving) is fed from enforced input (an array, a dict of arrays or a DataFrame)
and answers in the same shape of result; this module does both conversions on numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlreg.errors import SchemaError
from mlreg.models.enforce import enforce_tensor
from mlreg.models.signature import TensorSpec


@dataclass(frozen=True)
class TensorPort:
    """One input or output of the function: its public name and its TF name."""

    name: str
    tf_name: str
    dtype: np.dtype
    shape: tuple[int, ...]


class TensorIO:
    """Build the function's named input arrays from model input, and the result from its outputs."""

    def __init__(self, inputs: list[TensorPort], outputs: list[TensorPort]) -> None:
        self.inputs = inputs
        self.outputs = outputs

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """The input arrays by TF name."""
        if isinstance(data, pd.DataFrame):
            return self._feed_frame(data)
        if isinstance(data, Mapping):
            if len(self.inputs) == 1 and len(data) == 1:
                return {self.inputs[0].tf_name: self._array(next(iter(data.values())), 0)}
            by_name = {p.name: i for i, p in enumerate(self.inputs)}
            missing = [p.name for p in self.inputs if p.name not in data]
            if missing:
                raise SchemaError(
                    f"missing input {', '.join(map(repr, missing))}; the model takes "
                    f"{', '.join(repr(p.name) for p in self.inputs)}"
                )
            return {
                self.inputs[by_name[k]].tf_name: self._array(v, by_name[k])
                for k, v in data.items()
                if k in by_name
            }
        if len(self.inputs) != 1:
            raise SchemaError(
                f"the model takes {len(self.inputs)} named inputs "
                f"({', '.join(repr(p.name) for p in self.inputs)}); send a dict of tensors"
            )
        return {self.inputs[0].tf_name: self._array(data, 0)}

    def result(self, data: Any, outputs: Mapping[str, np.ndarray]) -> Any:
        """The prediction from the output arrays by TF name, shaped like ``data``."""
        if len(self.outputs) == 1:
            port = self.outputs[0]
            out = outputs[port.tf_name]
            if not isinstance(data, pd.DataFrame):
                return out
            if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
                # One value per row: a column named after the output, not pandas' 0, so a
                # client reads {"score": 0.7} rather than {"0": 0.7}.
                return pd.DataFrame({port.name: out.reshape(len(out))})
            return pd.DataFrame(out)
        arrays = {p.name: outputs[p.tf_name] for p in self.outputs}
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in arrays.items()})
        return arrays

    def _feed_frame(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            port = self.inputs[0]
            values = df.to_numpy()
            if values.dtype == object:
                values = np.asarray(values.tolist())
            if len(port.shape) == 1 and values.shape[1] == 1:
                values = values[:, 0]
            return {port.tf_name: self._array(values, 0)}
        feed = {}
        for i, port in enumerate(self.inputs):
            if port.name not in df.columns:
                raise SchemaError(f"missing column '{port.name}' for the model input of that name")
            col = df[port.name].to_numpy()
            if len(port.shape) == 2 and port.shape[1] in (1, -1):
                col = col.reshape(-1, 1)
            feed[port.tf_name] = self._array(col, i)
        return feed

    def _array(self, value: Any, index: int) -> np.ndarray:
        port = self.inputs[index]
        if isinstance(value, np.ndarray) and value.dtype == port.dtype and _fits(value, port):
            return value
        # Converts what can be, and says what cannot: the function is called by its flat
        # inputs (mlreg.tensorflow.calls), so no shape reaches it unchecked.
        return enforce_tensor(value, TensorSpec(port.dtype, port.shape, port.name))


def _fits(value: np.ndarray, port: TensorPort) -> bool:
    return len(value.shape) == len(port.shape) and all(
        want in (-1, got) for got, want in zip(value.shape, port.shape, strict=True)
    )


__all__ = ["TensorIO", "TensorPort"]
