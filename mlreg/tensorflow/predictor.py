"""The fast prediction path: a traced TensorFlow function called with numpy arrays.

Keras ``Model.predict()`` builds a data pipeline on every call (tens of milliseconds);
calling a concrete function with a fixed ``[None, ...]`` input signature costs a fraction
of a millisecond and never retraces for a new batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from mlreg.errors import SchemaError
from mlreg.models.enforce import enforce_tensor
from mlreg.models.signature import TensorSpec


@dataclass(frozen=True)
class TensorPort:
    """One input or output of the traced function: its public name and its TF name."""

    name: str
    tf_name: str
    dtype: np.dtype
    shape: tuple[int, ...]


class Predictor:
    """Call a concrete function (named tensors in, named tensors out) on numpy data."""

    def __init__(
        self,
        fn: Callable[..., Mapping[str, tf.Tensor]],
        inputs: list[TensorPort],
        outputs: list[TensorPort],
        keepalive: Any = None,
    ) -> None:
        self._fn = fn
        self.inputs = inputs
        self.outputs = outputs
        # The concrete function only holds weak references to its variables.
        self._keepalive = keepalive

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        feed = self._feed(data)
        result = self._fn(**feed)
        if len(self.outputs) == 1:
            out = result[self.outputs[0].tf_name].numpy()
            return pd.DataFrame(out) if isinstance(data, pd.DataFrame) else out
        arrays = {p.name: result[p.tf_name].numpy() for p in self.outputs}
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in arrays.items()})
        return arrays

    def _feed(self, data: Any) -> dict[str, tf.Tensor]:
        if isinstance(data, pd.DataFrame):
            return self._feed_frame(data)
        if isinstance(data, Mapping):
            if len(self.inputs) == 1 and len(data) == 1:
                return {self.inputs[0].tf_name: self._tensor(next(iter(data.values())), 0)}
            by_name = {p.name: i for i, p in enumerate(self.inputs)}
            missing = [p.name for p in self.inputs if p.name not in data]
            if missing:
                raise SchemaError(
                    f"missing input {', '.join(map(repr, missing))}; the model takes "
                    f"{', '.join(repr(p.name) for p in self.inputs)}"
                )
            return {
                self.inputs[by_name[k]].tf_name: self._tensor(v, by_name[k])
                for k, v in data.items()
                if k in by_name
            }
        if len(self.inputs) != 1:
            raise SchemaError(
                f"the model takes {len(self.inputs)} named inputs "
                f"({', '.join(repr(p.name) for p in self.inputs)}); send a dict of tensors"
            )
        return {self.inputs[0].tf_name: self._tensor(data, 0)}

    def _feed_frame(self, df: pd.DataFrame) -> dict[str, tf.Tensor]:
        if len(self.inputs) == 1:
            port = self.inputs[0]
            values = df.to_numpy()
            if values.dtype == object:
                values = np.asarray(values.tolist())
            if len(port.shape) == 1 and values.shape[1] == 1:
                values = values[:, 0]
            return {port.tf_name: self._tensor(values, 0)}
        feed = {}
        for i, port in enumerate(self.inputs):
            if port.name not in df.columns:
                raise SchemaError(f"missing column '{port.name}' for the model input of that name")
            col = df[port.name].to_numpy()
            if len(port.shape) == 2 and port.shape[1] in (1, -1):
                col = col.reshape(-1, 1)
            feed[port.tf_name] = self._tensor(col, i)
        return feed

    def _tensor(self, value: Any, index: int) -> tf.Tensor:
        port = self.inputs[index]
        arr = value if isinstance(value, np.ndarray) and value.dtype == port.dtype else None
        if arr is None:
            arr = enforce_tensor(value, TensorSpec(port.dtype, port.shape, port.name))
        return tf.constant(arr)


def ports_from_specs(
    specs: Mapping[str, tf.TensorSpec], names: Mapping[str, str] | None = None
) -> list[TensorPort]:
    """Describe a concrete function's inputs or outputs; ``names`` maps public → TF names."""
    public = names or {k: k for k in specs}
    ports = []
    for name, tf_name in public.items():
        spec = specs[tf_name]
        shape = tuple(-1 if d is None else int(d) for d in spec.shape.as_list())
        ports.append(TensorPort(name, tf_name, np.dtype(spec.dtype.as_numpy_dtype), shape))
    return ports
