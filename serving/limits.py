"""What a request to the served model can need: the body limit, and how densely a JSON body may
nest lists and objects, both read from the signature.

JSON costs far more memory parsed than sent: ``[],`` is 3 bytes and a 64-byte Python list, so
140 MB of it took a worker from 0.7 to 4.4 GB before enforcement could refuse it. Two bounds
stop that before anything is parsed:

- the default body limit (``MLREG_MAX_REQUEST_BYTES`` unset) is what :data:`LIMIT_ROWS` rows of
  the signature take as JSON when every input's shape is fixed but for the batch, between 1 MiB
  and 100 MiB; 16 MiB when a row has no fixed size (strings, variable dimensions), as such
  bodies are parsed into Python objects (mlreg.serving.tensor_json reads fixed numeric ones);
- a body may hold no more lists and objects than its values could need in this model's
  tensors (a 28x28x3 image needs 813 lists for 2352 numbers), nor more than a few empty ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlreg.errors import InvalidInput
from mlreg.models.signature import ColSpec, ModelSignature, TensorSpec

#: Rows the derived body limit makes room for (larger batches: several requests, or V2 binary
#: data at 4 bytes a float instead of up to 26).
LIMIT_ROWS = 256
#: The most bytes one number takes in JSON: "-1.2345678901234567e-308, ".
JSON_BYTES_PER_VALUE = 26
MIN_LIMIT = 1 << 20
MAX_LIMIT = 100 << 20
#: The limit when the signature does not fix the size of a row (or there is none).
UNSIZED_LIMIT = 16 << 20
#: Room for the envelope: keys, names, params, V2 tensor descriptions.
ENVELOPE_BYTES = 64 << 10
#: Lists and objects allowed beyond what the values need (wrappers, params, V2 descriptions).
SPARE_CONTAINERS = 64
MAX_EMPTY_CONTAINERS = 64


@dataclass(frozen=True)
class Limits:
    """The request bounds for one served signature."""

    #: The body limit when MLREG_MAX_REQUEST_BYTES is not set.
    body_bytes: int
    #: The most lists and objects a value of this model's inputs can need (nested form).
    containers_per_value: float

    def check_json(self, body: bytes) -> None:
        """Refuse a JSON body whose lists and objects are out of all proportion to its values,
        by counting bytes (no parsing): InvalidInput naming what was found and what fits."""
        containers = body.count(b"[") + body.count(b"{")
        if containers <= min(MAX_EMPTY_CONTAINERS, SPARE_CONTAINERS):
            # Within both bounds whatever the rest holds (an empty one is a container too):
            # a V2 body's flat data lists end here, a third of the time of counting it all.
            return
        empty = body.count(b"[]") + body.count(b"{}")
        if empty > MAX_EMPTY_CONTAINERS:
            raise InvalidInput(
                f"the JSON body has {empty} empty lists or objects; a request to this model needs "
                f"at most {MAX_EMPTY_CONTAINERS}"
            )
        values = body.count(b",") + 1
        allowed = math.ceil(values * self.containers_per_value * 1.25) + SPARE_CONTAINERS
        if containers > allowed:
            raise InvalidInput(
                f"the JSON body has {containers} lists and objects for no more than {values} "
                f"values; this model's inputs need at most {allowed} for that many: send each "
                "tensor as one nested list shaped like the signature"
            )


def limits_for(signature: ModelSignature | None) -> Limits:
    """The bounds of requests to a model with ``signature`` (None: no signature)."""
    if signature is None:
        return Limits(UNSIZED_LIMIT, 1.0)
    per_row = 0
    ratio = 0.0
    specs = signature.inputs.inputs
    for spec in specs:
        if isinstance(spec, TensorSpec):
            dims = spec.shape[1:]
            if spec.dtype.kind in "USO" or any(d < 0 for d in dims):
                return Limits(UNSIZED_LIMIT, 1.0)
            values = math.prod(dims)
            lists = sum(math.prod(dims[:i]) for i in range(len(dims)))  # nested lists of a row
            per_row += values * JSON_BYTES_PER_VALUE + 2 * lists
            # +1: the row's own object in TF Serving's row form, or the column's list.
            ratio = max(ratio, (lists + 1) / max(values, 1))
        elif isinstance(spec, ColSpec):
            if spec.type in ("string", "binary"):
                return Limits(UNSIZED_LIMIT, 1.0)
            per_row += JSON_BYTES_PER_VALUE + len(spec.name or "") + 4  # "name": value,
    if specs and isinstance(specs[0], ColSpec):
        ratio = max(ratio, 1 / len(specs))  # a list or an object per row
    body = min(max(LIMIT_ROWS * per_row + ENVELOPE_BYTES, MIN_LIMIT), MAX_LIMIT)
    return Limits(body, min(max(ratio, 1 / 64), 1.0))


__all__ = ["LIMIT_ROWS", "MAX_LIMIT", "MIN_LIMIT", "UNSIZED_LIMIT", "Limits", "limits_for"]
