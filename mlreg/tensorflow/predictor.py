"""The fast prediction path: a traced TensorFlow function called with numpy arrays.

Keras ``Model.predict()`` builds a data pipeline on every call (tens of milliseconds);
calling a concrete function with a fixed ``[None, ...]`` input signature costs a fraction
of a millisecond and never retraces for a new batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from mlreg.models.tensors import TensorIO, TensorPort


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
        self._io = TensorIO(inputs, outputs)
        self.inputs = inputs
        self.outputs = outputs
        # The concrete function only holds weak references to its variables.
        self._keepalive = keepalive
        #: XLA-compiled functions by batch size (mlreg.tensorflow.xla); empty unless asked.
        self._by_batch: dict[int, Callable[..., Mapping[str, tf.Tensor]]] = {}

    def compile_small_batches(self, max_batch: int) -> str:
        """Run batches of 1..``max_batch`` rows through XLA where that is as exact and faster;
        returns one line saying which sizes do and why the others do not."""
        from mlreg.tensorflow import xla

        self._by_batch, outcomes = xla.compile_small_batches(self._fn, self.inputs, max_batch)
        return xla.describe(outcomes)

    @property
    def compiled_batch_sizes(self) -> tuple[int, ...]:
        """The batch sizes that run XLA-compiled (none unless compile_small_batches kept some)."""
        return tuple(sorted(self._by_batch))

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        arrays = self._io.feed(data)  # shaped as the ports say: a batch dimension when compiled
        fn = self._fn
        if self._by_batch:
            rows = {a.shape[0] for a in arrays.values()}
            if len(rows) == 1:
                fn = self._by_batch.get(rows.pop(), fn)
        result = fn(**{k: tf.constant(v) for k, v in arrays.items()})
        return self._io.result(data, {p.tf_name: result[p.tf_name].numpy() for p in self.outputs})


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
