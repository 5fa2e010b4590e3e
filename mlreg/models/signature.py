"""Model signatures: what a model takes and returns, in MLflow's JSON form.

A signature is a pair of schemas (inputs, outputs) plus optional inference
params. A schema is either a list of tensor specs (``{"type": "tensor",
"tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}``) or a list of
column specs (``{"type": "double", "name": "x", "required": true}``), never a
mix. ``-1`` in a shape is a wildcard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlreg.errors import InvalidInput, MLmodelError, MlregError

#: MLflow's column types and the numpy dtype each one is held in.
COLUMN_TYPES: dict[str, np.dtype] = {
    "boolean": np.dtype(bool),
    "integer": np.dtype(np.int32),
    "long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "string": np.dtype(object),
    "binary": np.dtype(object),
    "datetime": np.dtype("datetime64[ns]"),
}

#: Tensor dtypes a signature may name (numpy's names, as MLflow writes them).
TENSOR_DTYPES = frozenset(
    [
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "str",
        "bytes",
        "object",
    ]
)

PARAM_TYPES = frozenset(["boolean", "integer", "long", "float", "double", "string", "datetime"])


@dataclass(frozen=True)
class TensorSpec:
    """A tensor input or output: dtype, shape (-1 = any size) and an optional name."""

    dtype: np.dtype
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            raise InvalidInput(f"unsupported tensor dtype {self.dtype!r}") from None
        if dtype.name not in TENSOR_DTYPES and dtype.kind not in "US":
            raise InvalidInput(f"unsupported tensor dtype {dtype.name!r}")
        if dtype.kind in "US":
            # A string tensor's width is data, not schema: '<U7' and '<U3' are both "str".
            dtype = np.dtype(str if dtype.kind == "U" else bytes)
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"tensor shape must be a list of integers, got {self.shape!r}"
            ) from None
        if any(d < -1 for d in shape):
            raise InvalidInput(f"tensor shape dimensions must be >= -1, got {list(shape)}")
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", shape)

    @property
    def dtype_name(self) -> str:
        if self.dtype.kind == "U":
            return "str"
        if self.dtype.kind == "S":
            return "bytes"
        return self.dtype.name

    def to_dict(self) -> dict[str, Any]:
        # Key order as MLflow writes it, so the MLmodel text is byte-identical.
        spec: dict[str, Any] = {} if self.name is None else {"name": self.name}
        spec["type"] = "tensor"
        spec["tensor-spec"] = {"dtype": self.dtype_name, "shape": list(self.shape)}
        return spec

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        ts = d["tensor-spec"]
        return cls(dtype=np.dtype(ts["dtype"]), shape=tuple(ts["shape"]), name=d.get("name"))

    def describe(self) -> str:
        return f"{self.dtype_name} tensor of shape {format_shape(self.shape)}"


@dataclass(frozen=True)
class ColSpec:
    """A named (or positional) column of a given MLflow type."""

    type: str
    name: str | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise InvalidInput(
                f"unsupported column type {self.type!r}; expected one of {sorted(COLUMN_TYPES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            spec["name"] = self.name
        spec["required"] = self.required
        return spec

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColSpec:
        return cls(type=d["type"], name=d.get("name"), required=d.get("required", True))


def format_shape(shape: tuple[int, ...] | list[int]) -> str:
    """Write a shape the way error messages show it: ``(-1, 28, 28, 3)``."""
    dims = [int(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(map(str, dims)) + ")"


@dataclass(frozen=True)
class Schema:
    """An ordered list of specs, all tensors or all columns."""

    inputs: tuple[TensorSpec | ColSpec, ...]

    def __init__(self, inputs: list[TensorSpec | ColSpec] | tuple[TensorSpec | ColSpec, ...]):
        specs = tuple(inputs)
        if not specs:
            raise InvalidInput("a schema needs at least one input")
        kinds = {type(s) for s in specs}
        if len(kinds) > 1:
            raise InvalidInput("a schema cannot mix tensor specs and column specs")
        names = [s.name for s in specs]
        named = [n for n in names if n is not None]
        if named and len(named) != len(names):
            raise InvalidInput("either every spec in a schema has a name or none has")
        if len(set(named)) != len(named):
            raise InvalidInput(f"duplicate names in schema: {names}")
        if isinstance(specs[0], TensorSpec) and not named and len(specs) > 1:
            raise InvalidInput("a schema with several tensors must name each of them")
        object.__setattr__(self, "inputs", specs)

    def is_tensor_spec(self) -> bool:
        return isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return self.inputs[0].name is not None

    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs if s.name is not None]

    def required_input_names(self) -> list[str]:
        return [s.name for s in self.inputs if s.name is not None and getattr(s, "required", True)]

    def to_dict(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, specs: list[dict[str, Any]]) -> Schema:
        return cls([_spec_from_dict(s) for s in specs])

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.from_dict(json.loads(text))


def _spec_from_dict(d: dict[str, Any]) -> TensorSpec | ColSpec:
    if not isinstance(d, dict) or "type" not in d:
        raise MLmodelError(f"a schema entry must be an object with a 'type', got {d!r}")
    if d["type"] == "tensor":
        return TensorSpec.from_dict(d)
    return ColSpec.from_dict(d)


@dataclass(frozen=True)
class ParamSpec:
    """An inference parameter with a type, a default and an optional shape (None or (-1,))."""

    name: str
    dtype: str
    default: Any
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in PARAM_TYPES:
            raise InvalidInput(
                f"param {self.name!r}: unsupported type {self.dtype!r}; "
                f"expected one of {sorted(PARAM_TYPES)}"
            )
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": self.default,
            "shape": list(self.shape) if self.shape is not None else None,
            "type": self.dtype,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParamSpec:
        shape = d.get("shape")
        return cls(
            name=d["name"],
            dtype=d["type"],
            default=d.get("default"),
            shape=tuple(shape) if shape is not None else None,
        )


@dataclass(frozen=True)
class ParamSchema:
    params: tuple[ParamSpec, ...]

    def __init__(self, params: list[ParamSpec] | tuple[ParamSpec, ...]):
        specs = tuple(params)
        names = [p.name for p in specs]
        if len(set(names)) != len(names):
            raise InvalidInput(f"duplicate param names: {names}")
        object.__setattr__(self, "params", specs)

    def to_dict(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, params: list[dict[str, Any]]) -> ParamSchema:
        return cls([ParamSpec.from_dict(p) for p in params])


@dataclass(frozen=True)
class ModelSignature:
    """Inputs, outputs and params of a model, stored in MLmodel as JSON strings."""

    inputs: Schema
    outputs: Schema | None = None
    params: ParamSchema | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The MLmodel ``signature`` section: each part a JSON string, as MLflow writes it."""
        return {
            "inputs": self.inputs.to_json(),
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        def parse(key: str) -> Any:
            raw = d.get(key)
            if raw is None:
                return None
            try:
                return json.loads(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError as e:
                raise MLmodelError(f"signature.{key} is not valid JSON: {e}") from None
            except RecursionError:
                raise MLmodelError(f"signature.{key} is nested too deeply to be a schema") from None

        def build(key: str, factory: Any, raw: Any) -> Any:
            try:
                return factory(raw)
            except RecursionError:
                raise MLmodelError(f"signature.{key} is nested too deeply to be a schema") from None
            except (KeyError, TypeError, ValueError, InvalidInput, MLmodelError) as e:
                detail = e.message if isinstance(e, MlregError) else str(e)
                raise MLmodelError(
                    f"signature is malformed: {detail} (in signature.{key})"
                ) from None

        inputs = parse("inputs")
        if inputs is None:
            raise MLmodelError("signature.inputs is missing")
        outputs = parse("outputs")
        params = parse("params")
        return cls(
            inputs=build("inputs", Schema.from_dict, inputs),
            # MLflow writes "[]" or null for a signature without outputs or params.
            outputs=build("outputs", Schema.from_dict, outputs) if outputs else None,
            params=build("params", ParamSchema.from_dict, params) if params else None,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The signature as plain JSON objects (for APIs and labels, not for MLmodel)."""
        return {
            "inputs": self.inputs.to_dict(),
            "outputs": self.outputs.to_dict() if self.outputs is not None else None,
            "params": self.params.to_dict() if self.params is not None else None,
        }


__all__ = [
    "COLUMN_TYPES",
    "ColSpec",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "format_shape",
]
