"""Whether a new model version can replace the served one without breaking its clients.

A client that works against the served signature must keep working: every input it sends
must still be accepted (same names, types, and shapes at least as wide), no new input may be
required, the outputs it reads must keep their names, types and shapes, and the params it
may pass must still exist with their types.
"""

from __future__ import annotations

from mlreg.models.signature import (
    ColSpec,
    ModelSignature,
    ParamSchema,
    Schema,
    TensorSpec,
    format_shape,
)

Spec = TensorSpec | ColSpec


def signature_changes(served: ModelSignature | None, new: ModelSignature | None) -> list[str]:
    """What in ``new`` would break a client of ``served``; empty when it is compatible."""
    if served is None and new is None:
        return []
    if served is None:
        return ["the served version has no signature; the new one adds one"]
    if new is None:
        return ["the new version has no signature"]
    problems = _inputs(served.inputs, new.inputs)
    problems += _outputs(served.outputs, new.outputs)
    problems += _params(served.params, new.params)
    return problems


def _keyed(schema: Schema) -> dict[str, Spec]:
    """Specs by name, or by position (``#0``) when the schema is unnamed."""
    return {
        spec.name if spec.name is not None else f"#{i}": spec
        for i, spec in enumerate(schema.inputs)
    }


def _label(kind: str, key: str) -> str:
    return f"{kind} {key}" if key.startswith("#") else f"{kind} '{key}'"


def _describe(spec: Spec) -> str:
    if isinstance(spec, TensorSpec):
        return f"{spec.dtype_name} {format_shape(spec.shape)}"
    return spec.type


def _accepts(new: Spec, old: Spec) -> bool:
    """Does ``new`` accept everything ``old`` accepted?"""
    if isinstance(new, TensorSpec) and isinstance(old, TensorSpec):
        return (
            new.dtype == old.dtype
            and len(new.shape) == len(old.shape)
            and all(n in (-1, o) for n, o in zip(new.shape, old.shape, strict=True))
        )
    if isinstance(new, ColSpec) and isinstance(old, ColSpec):
        return new.type == old.type
    return False


def _same(new: Spec, old: Spec) -> bool:
    if isinstance(new, TensorSpec) and isinstance(old, TensorSpec):
        return new.dtype == old.dtype and new.shape == old.shape
    if isinstance(new, ColSpec) and isinstance(old, ColSpec):
        return new.type == old.type
    return False


def _inputs(served: Schema, new: Schema) -> list[str]:
    old_specs, new_specs = _keyed(served), _keyed(new)
    problems = []
    for key, old in old_specs.items():
        spec = new_specs.get(key)
        if spec is None:
            problems.append(f"{_label('input', key)} is gone")
        elif not _accepts(spec, old):
            problems.append(f"{_label('input', key)}: {_describe(old)} -> {_describe(spec)}")
    for key, spec in new_specs.items():
        required = not isinstance(spec, ColSpec) or spec.required
        if key not in old_specs and required:
            problems.append(f"new required {_label('input', key)} ({_describe(spec)})")
    return problems


def _outputs(served: Schema | None, new: Schema | None) -> list[str]:
    if served is None:
        return []
    if new is None:
        return ["the new version does not declare its outputs"]
    old_specs, new_specs = _keyed(served), _keyed(new)
    problems = []
    for key, old in old_specs.items():
        spec = new_specs.get(key)
        if spec is None:
            problems.append(f"{_label('output', key)} is gone")
        elif not _same(spec, old):
            problems.append(f"{_label('output', key)}: {_describe(old)} -> {_describe(spec)}")
    return problems


def _params(served: ParamSchema | None, new: ParamSchema | None) -> list[str]:
    if served is None:
        return []
    by_name = {p.name: p for p in new.params} if new is not None else {}
    problems = []
    for param in served.params:
        got = by_name.get(param.name)
        if got is None:
            problems.append(f"param '{param.name}' is gone")
        elif (got.dtype, got.shape) != (param.dtype, param.shape):
            problems.append(f"param '{param.name}': {param.dtype} -> {got.dtype}")
    return problems


__all__ = ["signature_changes"]
