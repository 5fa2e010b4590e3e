"""MLServer's fair peer in bench/serve.py: a custom runtime (an MLModel subclass, copied into the
model folder) that calls the SavedModel's serving_default signature directly, as mlreg does.

MLServer's MLflow runtime goes through Keras ``predict()`` (tens of milliseconds a call); this
one costs what MLServer's protocol handling costs plus the TensorFlow call.
"""

from __future__ import annotations

import tensorflow as tf
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class SavedModelRuntime(MLModel):
    async def load(self) -> bool:
        self._loaded = tf.saved_model.load(await get_model_uri(self.settings))
        self._fn = self._loaded.signatures["serving_default"]
        self._input = next(iter(self._fn.structured_input_signature[1]))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        out = self._fn(**{self._input: tf.constant(x)})
        outputs = [NumpyCodec.encode_output(name, t.numpy()) for name, t in out.items()]
        return InferenceResponse(model_name=self.name, outputs=outputs)
